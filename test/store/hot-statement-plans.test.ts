import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ACCEPT_USER_MESSAGES } from '../../src/handover/accept-user-messages.js';
import { RECORD_COMPLETIONS } from '../../src/delivery/completions.js';
import { RECORD_FAILED_ATTEMPT } from '../../src/delivery/worker.js';
import { EXPLAIN_UNWRITTEN } from '../../src/handover/messages.js';
import { LOCK_HANDOVER } from '../../src/handover/handover-lock.js';
import { createTestDb, dbKinds, testDatabaseUrl, type DbKind, type TestDb } from '../support/test-db.js';
import { checkDurabilitySettings, checkPlannerSettings } from '../../src/service/start-steps.js';
import { createPgDb } from '../../src/store/pg-db.js';
import { createPgliteDb } from '../../src/store/pglite-db.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { captureLogs } from '../support/log-capture.js';
import { genericPlan as plan, type PlanNode } from '../support/plans.js';

/**
 * The hot statements' plans as the service runs them (prepared: a generic plan), on empty tables and
 * on big ones. A lookup whose cost grows with what the table holds (every message of a conversation,
 * every pending item) makes the hot path slower the longer the service runs, or the bigger a backlog
 * it has to recover from.
 */
describe.each<DbKind>(dbKinds)('hot statement plans (%s)', (kind) => {
  let db: TestDb;
  beforeEach(async () => {
    db = await createTestDb(kind);
  });
  afterEach(async () => {
    await db.dropAndClose();
  });

  const array = `'{}'`;
  /** The accept statement's parameters, as a plan sees them: empty batches, 5 attempts, no lane handed. */
  const acceptParams = [array, array, array, array, array, array, array, array, array, '5', 'null', '0', array, array];

  const genericPlan = (text: string, params: string[]) => plan(db, text, params);

  async function repeatCheck(): Promise<{ seqScanOfMessages: boolean; hashed: boolean; probes: boolean }> {
    const nodes = await genericPlan(ACCEPT_USER_MESSAGES.text, acceptParams);
    return {
      seqScanOfMessages: nodes.some((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'messages'),
      hashed: nodes.some((n) => typeof n['Subplan Name'] === 'string' && n['Subplan Name'].startsWith('hashed')),
      probes: nodes.some(
        (n) =>
          (n['Node Type'] === 'Index Only Scan' || n['Node Type'] === 'Index Scan') &&
          n['Index Name'] === 'messages_client_key' &&
          typeof n['Index Cond'] === 'string' &&
          !n['Index Cond'].includes('ANY'),
      ),
    };
  }

  it('accepting messages probes the client-id index once per message, on empty tables and on long conversations', async () => {
    expect(await repeatCheck()).toEqual({ seqScanOfMessages: false, hashed: false, probes: true });
    // A new instance's first seconds: the table growing, never analysed, and each connection keeping
    // the plan it made at one of these sizes. Matched column by column, the probe could also use the
    // index of (conversation, sequence), and at 160 messages it did (a tie in the planner's costs):
    // each probe then read every message of its conversation.
    let written = 0;
    for (const size of [10, 40, 80, 160, 320, 640]) {
      await db.query(
        `insert into messages (id, tenant_id, handover_id, seq, direction, client_id, sender, text)
         select 'msg_s' || s, 'ten_plan', 'ho_ladder_' || (s % 64), s, 'to_agent', 'client_msg_0_' || s, '{"type":"user","id":"u1"}', 'hello, I need help'
         from generate_series(${written + 1}, ${size}) s`,
      );
      written = size;
      expect({ size, ...(await repeatCheck()) }).toEqual({ size, seqScanOfMessages: false, hashed: false, probes: true });
    }
    // Only the messages matter to the plan: their conversations' rows are left out (no foreign-key check).
    await db.query(`set session_replication_role = replica`);
    await db.query(
      `insert into messages (id, tenant_id, handover_id, seq, direction, client_id, sender, text)
       select 'msg_' || h || '_' || s, 'ten_plan', 'ho_plan_' || h, s, 'to_agent', 'cli_' || h || '_' || s, '{}', 'x'
       from generate_series(1, 20) h, generate_series(1, 500) s`,
    );
    await db.query(`set session_replication_role = default`);
    await db.query('analyze messages');
    expect(await repeatCheck()).toEqual({ seqScanOfMessages: false, hashed: false, probes: true });
  });

  it('on tables as small as a new instance has, both statements still read by index: the plan made then is kept as they grow', async () => {
    // A prepared statement keeps the generic plan made after its fifth run until the statistics of its
    // tables change. Made on tables this small, a plan without the sessions' planner settings
    // (PLANNER_SETTINGS) reads the outbox, the lanes and the conversations whole, and went on doing so
    // while the outbox grew to thousands of pages of deleted items between two vacuums.
    const hot = ['outbox', 'outbox_lanes', 'handovers', 'messages'];
    const accept = await genericPlan(ACCEPT_USER_MESSAGES.text, acceptParams);
    const complete = await genericPlan(RECORD_COMPLETIONS.text, [array, array, array, array, array, `'instance'`, array, array, array]);
    const scans = (nodes: PlanNode[]) =>
      nodes.filter((n) => n['Node Type'] === 'Seq Scan' && hot.includes(n['Relation Name'] as string)).map((n) => n['Relation Name']);
    expect(scans(accept)).toEqual([]);
    expect(scans(complete)).toEqual([]);
    // Nor through the index of every pending item, which a backlog makes as long as itself.
    expect(complete.some((n) => n['Index Name'] === 'outbox_lane_pending')).toBe(false);
  });

  it('a prepared statement is planned once per connection, whatever its first runs were', async () => {
    // Batches of one message, as under light load: PostgreSQL's default planned each run for its values
    // (their plans looked cheaper than the generic one) and went on planning every batch afresh.
    const counts = await db.transaction(async (q) => {
      for (let i = 0; i < 8; i++) {
        await q.query(ACCEPT_USER_MESSAGES, [
          ['ho_none'],
          ['ten_none'],
          [`cli_${i}`],
          [`msg_none_${i}`],
          ['hello'],
          ['[]'],
          [`evt_none_${i}`],
          [null],
          [new Date().toISOString()],
          5,
          null,
          0,
          [],
          ['ho_none'],
        ]);
      }
      const { rows } = await q.query<{ generic_plans: string; custom_plans: string }>(
        `select generic_plans, custom_plans from pg_prepared_statements where name = $1`,
        [ACCEPT_USER_MESSAGES.name],
      );
      return rows.map((r) => ({ generic: Number(r.generic_plans), custom: Number(r.custom_plans) }));
    });
    expect(counts).toEqual([{ generic: 8, custom: 0 }]);
  });

  it('a conversation and an outbox item are found by their keys, on tables of every size, mostly ended or pending', async () => {
    // Matched as columns, a tenant also fits the indexes that start with it, and "state = 'pending'"
    // the index of pending items; on tables not analysed yet their costs tied with the keys' at some
    // sizes, and a kept plan read every live conversation of the tenant, or every pending item.
    /** The indexes of a table a plan reads (a bitmap scan names its index on a node of its own), and any scan of the table itself. */
    const reads = (nodes: PlanNode[], table: string) =>
      nodes
        .filter(
          (n) =>
            (typeof n['Index Name'] === 'string' && n['Index Name'].startsWith(table + '_')) || (n['Node Type'] === 'Seq Scan' && n['Relation Name'] === table),
        )
        .map((n) => (n['Node Type'] === 'Seq Scan' ? 'seq scan' : n['Index Name']));
    const handoverScans = async (text: string, params: string[]) => reads(await genericPlan(text, params), 'handovers');
    await db.query(`insert into tenants (id, name, webhook_secret) values ('ten_k', 'k', 's')`);
    await db.query(`insert into connectors (id, tenant_id, type, name, config) values ('con', 'ten_k', 'webhook', 'c', '{}')`);
    await db.query(`insert into queues (id, tenant_id, name, connector_id) values ('q', 'ten_k', 'q', 'con')`);
    let written = 0;
    for (const size of [40, 160, 640, 1280]) {
      // 64 live conversations, the rest ended: a tenant's history.
      await db.query(
        `insert into handovers (id, tenant_id, conversation_id, queue_id, connector_id, state, user_info)
         select 'ho_k' || s, 'ten_k', 'conv_' || s, 'q', 'con', case when s < 64 then 'active' else 'ended' end, ('{"id":"u' || s || '"}')::jsonb
         from generate_series(${written}, ${size - 1}) s`,
      );
      await db.query(
        `insert into outbox (tenant_id, lane, seq, handover_id, target, kind, payload, max_attempts)
         select 'ten_k', 'ho_k' || (s % 64) || ':agent', s, 'ho_k' || (s % 64), 'agent', 'message.created', '{}', 5
         from generate_series(${written}, ${size - 1}) s`,
      );
      written = size;
      const accept = await handoverScans(ACCEPT_USER_MESSAGES.text, acceptParams);
      expect({ size, accept }).toEqual({ size, accept: ['handovers_pkey'] });
      expect({ size, unwritten: await handoverScans(EXPLAIN_UNWRITTEN.text, [`'ho_k1'`, `'ten_k'`, `'c'`]) }).toEqual({ size, unwritten: ['handovers_pkey'] });
      expect({ size, lock: await handoverScans(LOCK_HANDOVER, [`'ho_k1'`, `'ten_k'`]) }).toEqual({ size, lock: ['handovers_pkey'] });
      const failed = reads(await genericPlan(RECORD_FAILED_ATTEMPT, ['1', '2', `'e'`, 'false']), 'outbox');
      expect({ size, failed }).toEqual({ size, failed: ['outbox_pkey'] });
    }
  });

  it('a statement with no index to use still scans, and is not compiled first', async () => {
    // enable_seqscan = off leaves the scan as the last choice by a huge cost; with JIT on, that cost
    // had PostgreSQL compile the plan of a count of a few rows (100-200 ms). The embedded store has no JIT.
    const explained = await db.query<{ 'QUERY PLAN': unknown }>(`explain (format json) select count(*) from messages where tenant_id = 'ten_none'`);
    const [top] = explained.rows[0]!['QUERY PLAN'] as Array<{ Plan: { Plans?: Array<Record<string, unknown>> }; JIT?: unknown }>;
    expect(top!.Plan.Plans?.[0]?.['Node Type']).toBe('Seq Scan');
    expect(top!.JIT).toBeUndefined();
  });

  it('recording completions deletes by the primary key, straight, whatever the backlog', async () => {
    await db.query(
      `insert into outbox (tenant_id, lane, seq, handover_id, target, kind, payload, max_attempts)
       select 't', 'lane-' || (i % 200), i, 'h', 'agent', 'message.created', '{}', 5 from generate_series(1, 20000) i`,
    );
    await db.query('analyze outbox');
    const nodes = await genericPlan(RECORD_COMPLETIONS.text, [array, array, array, array, array, `'instance'`, array, array, array]);
    // Not through the index of every pending item (a backlog's worth), not in a join that probes the
    // key once per pair of ids: the delete reads the outbox by its key itself.
    const scans = nodes.filter((n) => n['Relation Name'] === 'outbox' && n.parent === 'ModifyTable' && String(n['Node Type']).includes('Scan'));
    expect(scans.map((n) => n['Index Name'])).toContain('outbox_pkey');
    expect(nodes.some((n) => n['Index Name'] === 'outbox_lane_pending')).toBe(false);
  });
});

/** One session of the test database, with `options` of an operator's own in its URL when given. */
function sessionWith(options?: string) {
  const url = new URL(testDatabaseUrl());
  if (options) url.searchParams.set('options', options);
  return createPgDb({ url: url.href, poolSize: 1, poolTimeoutMs: 5000, statementTimeoutMs: 5000, idleInTransactionTimeoutMs: 0 });
}

describe('the durability settings at start', () => {
  it('are checked: sessions that commit without waiting for the disk are logged as a warning', async () => {
    const logs = captureLogs();
    const log = createLogger('info', logs.stream);
    const durable = sessionWith();
    const asynchronous = sessionWith('-c synchronous_commit=off');
    const embedded = await createPgliteDb();
    try {
      expect(await checkDurabilitySettings(durable, log)).toEqual([]);
      expect(logs.lines()).toEqual([]);
      expect(await checkDurabilitySettings(asynchronous, log)).toEqual(['synchronous_commit = off']);
      expect(logs.lines().map((l) => [l.level, l.settings])).toEqual([['warn', ['synchronous_commit = off']]]);
      // In memory the embedded store has nothing to sync, and says so.
      expect(await checkDurabilitySettings(embedded, log)).toEqual(['fsync = off']);
    } finally {
      await durable.close();
      await asynchronous.close();
      await embedded.close();
    }
  });
});

describe('the planner settings at start', () => {
  it('are checked: sessions without them (an operator’s options, a pooler dropping them) are logged as a warning', async () => {
    const logs = captureLogs();
    const log = createLogger('info', logs.stream);
    const withThem = sessionWith();
    const without = sessionWith('-c enable_seqscan=on');
    try {
      expect(await checkPlannerSettings(withThem, log)).toEqual([]);
      expect(logs.lines()).toEqual([]);
      expect(await checkPlannerSettings(without, log)).toEqual(['enable_seqscan = on']);
      expect(logs.lines().map((l) => [l.level, l.settings])).toEqual([['warn', ['enable_seqscan = on']]]);
    } finally {
      await withThem.close();
      await without.close();
    }
  });
});
