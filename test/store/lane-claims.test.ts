import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLAIM_LANES, claimLanes, type ClaimOptions } from '../../src/delivery/claim-lanes.js';
import { ACCEPT_USER_MESSAGES } from '../../src/handover/accept-user-messages.js';
import { RECORD_COMPLETIONS } from '../../src/delivery/completions.js';
import { createTestDb, dbKinds, type DbKind, type TestDb } from '../support/test-db.js';
import { genericPlan } from '../support/plans.js';

/**
 * How claims find the lanes owed one (src/delivery/claim-lanes.ts), and why they find them that way:
 * through the index of pending outbox items, a bounded number of lanes at a time, so that no index of
 * the lanes changes with every message and the lanes' two updates a message stay heap-only
 * (migration 023).
 */
describe.each<DbKind>(dbKinds)('lane claims (%s)', (kind) => {
  let db: TestDb;
  beforeEach(async () => {
    db = await createTestDb(kind);
  });
  afterEach(async () => {
    await db.dropAndClose();
  });

  /** A lane with `items` pending items; `lane` options set its lease, its due time and its connector. */
  async function lane(name: string, items: number, o: { lockedBy?: string; dueInMs?: number; connectorId?: string; state?: string } = {}) {
    await db.query(
      `insert into outbox_lanes (lane, tenant_id, target, connector_id, last_seq, pending, next_attempt_at, locked_by, locked_until)
       values ($1, 't', 'agent', $2, $3::bigint, $3::int, now() + $4 * interval '1 millisecond', $5, case when $5::text is null then null else now() + interval '30 seconds' end)`,
      [name, o.connectorId ?? 'con_a', items, o.dueInMs ?? 0, o.lockedBy ?? null],
    );
    for (let seq = 1; seq <= items; seq++) {
      await db.query(
        `insert into outbox (tenant_id, lane, seq, handover_id, target, connector_id, kind, payload, max_attempts, state)
         values ('t', $1, $2, 'h', 'agent', $3, 'message.created', '{}', 3, $4)`,
        [name, seq, o.connectorId ?? 'con_a', o.state ?? 'pending'],
      );
    }
  }

  const options = (after: string, o: Partial<ClaimOptions> = {}): ClaimOptions => ({
    instanceId: 'me',
    leaseMs: 30_000,
    limit: 10,
    blocked: [],
    remaining: { connectorIds: [], slots: [] },
    maxPerConnector: 10,
    after,
    walkLanes: 2,
    ...o,
  });
  const names = (claim: { lanes: Array<{ lane: string }> }) => claim.lanes.map((l) => l.lane).sort();

  it('looks at a bounded number of lanes with pending items, and the next claim goes on from the last one', async () => {
    await lane('l0', 1, { lockedBy: 'other' });
    await lane('l1', 2);
    await lane('l2', 1);
    await lane('l3', 1, { connectorId: 'con_blocked' });
    await lane('l4', 1, { dueInMs: 60_000 });
    await lane('l5', 1);
    // Pending in its count but with no pending item (given up): never walked, never claimed.
    await lane('l6', 1, { state: 'dead' });

    const first = await claimLanes(db, options(''));
    expect({ claimed: names(first), walkedTo: first.walkedTo }).toEqual({ claimed: ['l1'], walkedTo: 'l1' });
    expect(first.lanes[0]!.items.map((i) => Number(i.seq))).toEqual([1, 2]);

    const second = await claimLanes(db, options('l1', { blocked: ['con_blocked'] }));
    expect({ claimed: names(second), walkedTo: second.walkedTo }).toEqual({ claimed: ['l2'], walkedTo: 'l3' });

    // The walk's bound reached at the last lane: the next claim finds that nothing is left after it.
    const third = await claimLanes(db, options('l3'));
    expect({ claimed: names(third), walkedTo: third.walkedTo }).toEqual({ claimed: ['l5'], walkedTo: 'l5' });
    const fourth = await claimLanes(db, options('l5'));
    expect({ claimed: names(fourth), walkedTo: fourth.walkedTo }).toEqual({ claimed: [], walkedTo: null });

    // From the start again, with room for every lane: the one that was blocked, and nothing held or not due.
    const again = await claimLanes(db, options('', { walkLanes: 100 }));
    expect({ claimed: names(again), walkedTo: again.walkedTo }).toEqual({ claimed: ['l3'], walkedTo: null });
    const leases = await db.query<{ lane: string; locked_by: string | null }>('select lane, locked_by from outbox_lanes order by lane');
    expect(leases.rows).toEqual([
      { lane: 'l0', locked_by: 'other' },
      { lane: 'l1', locked_by: 'me' },
      { lane: 'l2', locked_by: 'me' },
      { lane: 'l3', locked_by: 'me' },
      { lane: 'l4', locked_by: null },
      { lane: 'l5', locked_by: 'me' },
      { lane: 'l6', locked_by: null },
    ]);
  });

  it('walks the index of pending items, and reads no table whole', async () => {
    await lane('l1', 3);
    const nodes = await genericPlan(db, CLAIM_LANES.text, [`'me'`, '30000', '10', `'{}'`, `'{}'`, `'{}'`, '10', `''`, '2000']);
    const seqScans = nodes.filter((n) => n['Node Type'] === 'Seq Scan').map((n) => n['Relation Name']);
    expect(seqScans).toEqual([]);
    expect(nodes.filter((n) => n['Index Name'] === 'outbox_lane_pending').length).toBeGreaterThanOrEqual(2);
  });

  it('an item has one index beside its id: the index of pending items, which keeps their sequence numbers unique (migration 024)', async () => {
    const { rows } = await db.query<{ indexname: string; indexdef: string }>(
      `select indexname, indexdef from pg_indexes where tablename = 'outbox' and schemaname = current_schema() order by indexname`,
    );
    expect(rows.map((r) => r.indexname)).toEqual(['outbox_lane_pending', 'outbox_pkey']);
    expect(rows[0]!.indexdef).toMatch(/^CREATE UNIQUE INDEX outbox_lane_pending ON .*outbox USING btree \(lane, seq\) WHERE \(state = 'pending'::text\)$/);
    await lane('l1', 2);
    const again = db.query(
      `insert into outbox (tenant_id, lane, seq, handover_id, target, connector_id, kind, payload, max_attempts) values ('t', 'l1', 2, 'h', 'agent', 'con_a', 'message.created', '{}', 3)`,
    );
    await expect(again).rejects.toMatchObject({ code: '23505' });
  });

  it("a message's two updates of its lane are heap-only: no index of the lanes changes with them", async () => {
    await db.query(`insert into tenants (id, name, webhook_secret) values ('t', 't', 's')`);
    await db.query(`insert into connectors (id, tenant_id, type, name, config) values ('con_a', 't', 'webhook', 'c', '{}')`);
    await db.query(`insert into queues (id, tenant_id, name, connector_id) values ('q', 't', 'q', 'con_a')`);
    await db.query(
      `insert into handovers (id, tenant_id, conversation_id, queue_id, connector_id, state, user_info) values ('ho_1', 't', 'conv', 'q', 'con_a', 'active', '{"id":"u"}')`,
    );
    // In one transaction, so that the counts of this transaction's updates can be read on its connection.
    const counts = await db.transaction(async (q) => {
      for (let i = 1; i <= 8; i++) {
        const { rows } = await q.query<{ outbox_id: string }>(ACCEPT_USER_MESSAGES, [
          ['ho_1'],
          ['t'],
          [`client_${i}`],
          [`msg_${i}`],
          ['hello'],
          ['[]'],
          [`evt_${i}`],
          [null],
          [new Date().toISOString()],
          5,
          'me',
          30_000,
          [],
          ['ho_1'],
        ]);
        expect(rows[0]!.outbox_id).not.toBeNull();
        // Delivered at its first attempt, and the lane given back "if empty", as a lane run ends.
        await q.query(RECORD_COMPLETIONS, [[], [], ['ho_1:agent'], [], [], 'me', ['ho_1:agent'], ['ho_1:agent'], [rows[0]!.outbox_id]]);
      }
      const { rows } = await q.query<{ updated: string; hot: string }>(
        `select pg_stat_get_xact_tuples_updated('outbox_lanes'::regclass) as updated, pg_stat_get_xact_tuples_hot_updated('outbox_lanes'::regclass) as hot`,
      );
      return { updated: Number(rows[0]!.updated), hot: Number(rows[0]!.hot) };
    });
    // The first message inserts the lane; each later one updates it, and every completion does.
    expect(counts.updated).toBe(15);
    expect(counts.hot).toBe(counts.updated);
    const lane = await db.query<{ pending: number; locked_by: string | null; last_seq: number }>('select pending, locked_by, last_seq from outbox_lanes');
    expect(lane.rows).toEqual([{ pending: 0, locked_by: null, last_seq: 8 }]);
  });
});
