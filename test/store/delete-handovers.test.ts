import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deleteHandovers } from '../../src/privacy/user-data.js';
import { createTestDb, dbKinds, type DbKind, type TestDb } from '../support/test-db.js';

/**
 * deleteHandovers (src/privacy/user-data.ts) is the one place conversations are deleted (erasure,
 * retention, tenant deletion). Messages and delivery attempts have no foreign key to cascade from
 * (migration 021, for the hot path), so it deletes them itself: nothing of a deleted conversation is
 * left, and nothing of another one goes with it.
 */
describe.each<DbKind>(dbKinds)('deleting handovers (%s)', (kind) => {
  let db: TestDb;
  beforeEach(async () => {
    db = await createTestDb(kind);
    await db.query(`insert into tenants (id, name, webhook_secret) values ('t1', 't', 's')`);
    await db.query(`insert into queues (id, tenant_id, name) values ('q1', 't1', 'support')`);
  });
  afterEach(async () => {
    await db.dropAndClose();
  });

  /** A conversation with a message, and an agent-side item that failed once (an attempt row) and is still pending. */
  async function conversation(id: string, state: 'ended' | 'active'): Promise<void> {
    await db.query(
      `insert into handovers (id, tenant_id, conversation_id, queue_id, state, user_info, last_seq) values ($1, 't1', $1, 'q1', $2, '{"id":"u"}', 1)`,
      [id, state],
    );
    await db.query(
      `insert into messages (id, tenant_id, handover_id, seq, direction, sender, text) values ($1, 't1', $2, 1, 'to_agent', '{"type":"user"}', 'hello')`,
      [`msg-${id}`, id],
    );
    await db.query(`insert into outbox_lanes (lane, tenant_id, target, last_seq, pending) values ($1, 't1', 'agent', 1, 1)`, [`${id}:agent`]);
    const { rows } = await db.query<{ id: string }>(
      `insert into outbox (tenant_id, lane, seq, handover_id, target, kind, payload, max_attempts, attempts) values ('t1', $1, 1, $2, 'agent', 'message.created', '{}', 5, 1) returning id`,
      [`${id}:agent`, id],
    );
    await db.query(
      `insert into delivery_attempts (outbox_id, attempt, started_at, duration_ms, outcome, status_code, error) values ($1, 1, now(), 5, 'retry', 503, 'busy')`,
      [rows[0]!.id],
    );
  }

  const left = async (handoverId: string) => {
    const count = async (sql: string) => (await db.query<{ n: number }>(sql, [handoverId])).rows[0]!.n;
    return {
      handovers: await count('select count(*)::int as n from handovers where id = $1'),
      messages: await count('select count(*)::int as n from messages where handover_id = $1'),
      outbox: await count('select count(*)::int as n from outbox where handover_id = $1'),
      attempts: await count('select count(*)::int as n from delivery_attempts a join outbox o on o.id = a.outbox_id where o.handover_id = $1'),
      orphanAttempts: (
        await db.query<{ n: number }>('select count(*)::int as n from delivery_attempts a where not exists (select 1 from outbox o where o.id = a.outbox_id)')
      ).rows[0]!.n,
      lanes: await count(`select count(*)::int as n from outbox_lanes where lane = $1 || ':agent'`),
    };
  };

  it('deletes an ended conversation with its messages, queued items, their attempts and its lanes; leaves the others', async () => {
    await conversation('h-gone', 'ended');
    await conversation('h-other', 'ended');
    await conversation('h-live', 'active');

    const deleted = await db.transaction((q) => deleteHandovers(q, 't1', ['h-gone']));
    expect(deleted).toMatchObject({ handovers: 1, messages: 1 });
    expect(await left('h-gone')).toEqual({ handovers: 0, messages: 0, outbox: 0, attempts: 0, orphanAttempts: 0, lanes: 0 });
    for (const kept of ['h-other', 'h-live'])
      expect(await left(kept)).toEqual({ handovers: 1, messages: 1, outbox: 1, attempts: 1, orphanAttempts: 0, lanes: 1 });
  });

  it("leaves a live conversation in the list, and another tenant's, whole", async () => {
    await conversation('h-mine', 'ended');
    await conversation('h-live', 'active');
    await db.query(`insert into tenants (id, name, webhook_secret) values ('t2', 't', 's')`);
    expect(await db.transaction((q) => deleteHandovers(q, 't2', ['h-mine']))).toMatchObject({ handovers: 0, messages: 0 });
    expect(await db.transaction((q) => deleteHandovers(q, 't1', ['h-live']))).toMatchObject({ handovers: 0, messages: 0 });
    for (const kept of ['h-mine', 'h-live'])
      expect(await left(kept)).toEqual({ handovers: 1, messages: 1, outbox: 1, attempts: 1, orphanAttempts: 0, lanes: 1 });
  });
});
