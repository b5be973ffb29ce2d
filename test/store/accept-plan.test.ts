import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ACCEPT_USER_MESSAGES } from '../../src/handover/accept-user-messages.js';
import { createTestDb, dbKinds, type DbKind, type TestDb } from '../support/test-db.js';

/**
 * The accept statement's plan, as the service runs it (prepared: a generic plan), while its tables are
 * empty and once they hold long conversations: the check for a repeated client id must probe the
 * client-id index once per message. Read whole into a hash table, or matched as two arrays, its cost
 * grows with every message ever stored in the batch's conversations.
 */
describe.each<DbKind>(dbKinds)('accept statement plan (%s)', (kind) => {
  let db: TestDb;
  beforeEach(async () => {
    db = await createTestDb(kind);
  });
  afterEach(async () => {
    await db.dropAndClose();
  });

  /** The generic plan, in one transaction so every step runs on one connection. */
  async function plan(): Promise<string> {
    return db.transaction(async (q) => {
      await q.query(`set local plan_cache_mode = force_generic_plan`);
      await q.query(`prepare accept_plan as ${ACCEPT_USER_MESSAGES.text}`);
      const array = `'{}'`;
      const params = [array, array, array, array, array, array, array, array, array, '5', 'null', '0', array, array];
      const explained = await q.query<{ 'QUERY PLAN': unknown }>(`explain (format json) execute accept_plan(${params.join(', ')})`);
      await q.query(`deallocate accept_plan`);
      return JSON.stringify(explained.rows[0]!['QUERY PLAN']);
    });
  }

  function repeatCheck(json: string): { seqScanOfMessages: boolean; hashed: boolean; probes: boolean } {
    const nodes: Array<Record<string, unknown>> = [];
    const walk = (node: Record<string, unknown>) => {
      nodes.push(node);
      for (const child of (node.Plans as Array<Record<string, unknown>> | undefined) ?? []) walk(child);
    };
    for (const top of JSON.parse(json) as Array<{ Plan: Record<string, unknown> }>) walk(top.Plan);
    return {
      seqScanOfMessages: nodes.some((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'messages'),
      hashed: nodes.some((n) => typeof n['Subplan Name'] === 'string' && (n['Subplan Name'] as string).startsWith('hashed')),
      probes: nodes.some(
        (n) =>
          (n['Node Type'] === 'Index Only Scan' || n['Node Type'] === 'Index Scan') &&
          n['Index Name'] === 'messages_client_id' &&
          typeof n['Index Cond'] === 'string' &&
          !(n['Index Cond'] as string).includes('ANY'),
      ),
    };
  }

  it('probes the client-id index once per message, on empty tables and on long conversations', async () => {
    expect(repeatCheck(await plan())).toEqual({ seqScanOfMessages: false, hashed: false, probes: true });
    // Only the messages matter to the plan: their conversations' rows are left out (no foreign-key check).
    await db.query(`set session_replication_role = replica`);
    await db.query(
      `insert into messages (id, tenant_id, handover_id, seq, direction, client_id, sender, text)
       select 'msg_' || h || '_' || s, 'ten_plan', 'ho_plan_' || h, s, 'to_agent', 'cli_' || h || '_' || s, '{}', 'x'
       from generate_series(1, 20) h, generate_series(1, 500) s`,
    );
    await db.query(`set session_replication_role = default`);
    await db.query('analyze messages');
    expect(repeatCheck(await plan())).toEqual({ seqScanOfMessages: false, hashed: false, probes: true });
  });
});
