import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CompletionRecorder } from '../../src/delivery/completions.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createTestDb, dbKinds, type DbKind, type TestDb } from '../support/test-db.js';

/**
 * The batched completions of the delivery worker (src/delivery/completions.ts), on both stores: items
 * recorded as delivered (deleted, or marked done when they had failed before) and lanes given back in one statement, and the release "if empty" a worker asks for when
 * its lane ran out of known items — given back when nothing is pending, kept (still leased here) when
 * something is.
 */
describe.each<DbKind>(dbKinds)('completions (%s)', (kind) => {
  let db: TestDb;
  let recorder: CompletionRecorder;
  const me = 'instance-a';

  beforeEach(async () => {
    db = await createTestDb(kind);
    recorder = new CompletionRecorder(db, me, createLogger('silent'));
  });
  afterEach(async () => {
    await db.dropAndClose();
  });

  /** A lane leased to `holder` with `items` pending items (seq 1..n); answers their outbox ids. */
  async function lane(name: string, items: number, holder = me): Promise<number[]> {
    await db.query(
      `insert into outbox_lanes (lane, tenant_id, target, last_seq, pending, locked_by, locked_until) values ($1, 't', 'bot', $2::bigint, $2::int, $3, now() + interval '30 seconds')`,
      [name, items, holder],
    );
    const ids: number[] = [];
    for (let seq = 1; seq <= items; seq++) {
      const { rows } = await db.query<{ id: string }>(
        `insert into outbox (tenant_id, lane, seq, handover_id, target, kind, payload, max_attempts) values ('t', $1, $2, 'h', 'bot', 'message.created', '{}', 3) returning id`,
        [name, seq],
      );
      ids.push(Number(rows[0]!.id));
    }
    return ids;
  }

  const laneRow = async (name: string) =>
    (await db.query<{ pending: number; locked_by: string | null }>('select pending, locked_by from outbox_lanes where lane = $1', [name])).rows[0];

  it('gives a lane back "if empty" when its last items are recorded in the same statement', async () => {
    const ids = await lane('l1', 2);
    for (const id of ids) recorder.delivered({ id, attempt: 1, lane: 'l1' });
    expect(await recorder.release('l1', { ifEmpty: true })).toBe(true);
    expect(await laneRow('l1')).toEqual({ pending: 0, locked_by: null });
    // Delivered at their first attempt: nothing of them is left in the outbox.
    const { rows } = await db.query<{ state: string }>('select state from outbox where lane = $1 order by seq', ['l1']);
    expect(rows).toEqual([]);
  });

  it('deletes an item delivered at its first attempt, and keeps one that failed before as done beside its failed attempts', async () => {
    const [first, retried] = await lane('l3', 2);
    await db.query(
      `insert into delivery_attempts (outbox_id, attempt, started_at, duration_ms, outcome, status_code, error) values ($1, 1, now(), 5, 'retry', 503, 'busy')`,
      [retried],
    );
    recorder.delivered({ id: first!, attempt: 1, lane: 'l3' });
    recorder.delivered({ id: retried!, attempt: 2, lane: 'l3' });
    expect(await recorder.release('l3', { ifEmpty: true })).toBe(true);
    const { rows } = await db.query<{ id: string; state: string; attempts: number; done: boolean }>(
      'select id, state, attempts, done_at is not null as done from outbox where lane = $1',
      ['l3'],
    );
    expect(rows).toEqual([{ id: retried, state: 'done', attempts: 2, done: true }]);
    const attempts = await db.query<{ n: number }>('select count(*)::int as n from delivery_attempts where outbox_id = $1', [retried]);
    expect(attempts.rows[0]!.n).toBe(1);
    expect(await laneRow('l3')).toEqual({ pending: 0, locked_by: null });
  });

  it('keeps a lane "if empty" while items are pending, and gives it back when asked without the condition', async () => {
    const ids = await lane('l2', 3);
    recorder.delivered({ id: ids[0]!, attempt: 1, lane: 'l2' });
    expect(await recorder.release('l2', { ifEmpty: true })).toBe(false);
    expect(await laneRow('l2')).toEqual({ pending: 2, locked_by: me });
    expect(await recorder.release('l2')).toBe(true);
    expect(await laneRow('l2')).toEqual({ pending: 2, locked_by: null });
  });

  it('answers each lane of one batch for itself, and never releases a lane another instance holds', async () => {
    const done = await lane('l3', 1);
    const more = await lane('l4', 2);
    await lane('l5', 0, 'instance-b');
    recorder.delivered({ id: done[0]!, attempt: 1, lane: 'l3' });
    recorder.delivered({ id: more[0]!, attempt: 1, lane: 'l4' });
    const answers = await Promise.all([
      recorder.release('l3', { ifEmpty: true }),
      recorder.release('l4', { ifEmpty: true }),
      recorder.release('l5', { ifEmpty: true }),
    ]);
    // l5 is not this instance's: nothing to keep here.
    expect(answers).toEqual([true, false, true]);
    expect(await laneRow('l3')).toEqual({ pending: 0, locked_by: null });
    expect(await laneRow('l4')).toEqual({ pending: 1, locked_by: me });
    expect(await laneRow('l5')).toEqual({ pending: 0, locked_by: 'instance-b' });
  });

  it('makes a release unconditional when one of its askers asked without the condition', async () => {
    await lane('l6', 1);
    const [conditional, plain] = await Promise.all([recorder.release('l6', { ifEmpty: true }), recorder.release('l6')]);
    expect([conditional, plain]).toEqual([true, true]);
    expect(await laneRow('l6')).toEqual({ pending: 1, locked_by: null });
  });
});
