import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeliveryError } from '../../src/connectors/connector.js';
import { startDeliveryWorker, type DeliveryWorker, type OutboxRow } from '../../src/delivery/worker.js';
import { deleteHandovers } from '../../src/privacy/user-data.js';
import { ConnectorHealth } from '../../src/resilience/circuit-breaker.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createTestDb, dbKinds, type DbKind, type TestDb } from '../support/test-db.js';

/**
 * A delivery that fails after its item was removed — its conversation erased while the call was out —
 * records nothing: no attempt row (attempts have no foreign key to refuse one: migration 021) and no
 * second lowering of its lane's count. Driven by the deliverer itself, not by timing.
 */
describe.each<DbKind>(dbKinds)('a failure recorded for a removed item (%s)', (kind) => {
  let db: TestDb;
  let worker: DeliveryWorker | undefined;
  let givenUp: OutboxRow[] = [];
  beforeEach(async () => {
    givenUp = [];
    db = await createTestDb(kind);
    await db.query(`insert into tenants (id, name, webhook_secret) values ('t1', 't', 's')`);
    await db.query(`insert into queues (id, tenant_id, name) values ('q1', 't1', 'support')`);
  });
  afterEach(async () => {
    await worker?.stop({ graceMs: 1000 });
    worker = undefined;
    await db.dropAndClose();
  });

  async function conversationWithPendingItem(id: string): Promise<void> {
    await db.query(`insert into handovers (id, tenant_id, conversation_id, queue_id, state, user_info) values ($1, 't1', $1, 'q1', 'ended', '{"id":"u"}')`, [
      id,
    ]);
    await db.query(`insert into outbox_lanes (lane, tenant_id, target, last_seq, pending) values ($1, 't1', 'bot', 1, 1)`, [`${id}:bot`]);
    await db.query(
      `insert into outbox (tenant_id, lane, seq, handover_id, target, kind, payload, max_attempts) values ('t1', $1, 1, $2, 'bot', 'handover.ended', '{}', 5)`,
      [`${id}:bot`, id],
    );
  }

  function start(fail: (row: OutboxRow) => Promise<never>): Promise<OutboxRow> {
    return new Promise((resolve) => {
      const unused = async () => {
        throw new Error('not this side');
      };
      worker = startDeliveryWorker({
        db,
        bus: { subscribe: () => () => {} },
        log: createLogger('silent'),
        instanceId: 'test',
        concurrency: 2,
        leaseMs: 30_000,
        timeoutMs: 5000,
        pollIntervalMs: 20,
        retryBaseMs: 60_000,
        retryMaxMs: 60_000,
        deliverers: {
          bot: {
            deliver: (row) => fail(row),
            onGiveUp: async (row) => void givenUp.push(row),
          },
          agent: { deliver: unused, onGiveUp: unused },
        },
        health: new ConnectorHealth({ failureThreshold: 5, cooldownMs: 1000, maxInflightPerConnector: 4 }),
        quoteAnswers: false,
        observer: { attempted: (row, outcome) => outcome !== 'ok' && resolve(row) },
      });
    });
  }

  const attemptRows = async () => (await db.query<{ n: number }>('select count(*)::int as n from delivery_attempts')).rows[0]!.n;

  it('a final failure: no attempt row, nothing given up', async () => {
    await conversationWithPendingItem('h-erased');
    const failed = await start(async (row) => {
      await db.transaction((q) => deleteHandovers(q, 't1', [row.handover_id]));
      throw new DeliveryError('the receiver refused it', { retryable: false, statusCode: 400 });
    });
    expect(failed.handover_id).toBe('h-erased');
    await worker!.stop({ graceMs: 1000 });
    worker = undefined;
    expect(await attemptRows()).toBe(0);
    expect(givenUp).toEqual([]);
    expect((await db.query('select 1 from outbox_lanes')).rowCount).toBe(0);
  });

  it('a failure to retry: no attempt row', async () => {
    await conversationWithPendingItem('h-erased-later');
    await start(async (row) => {
      await db.transaction((q) => deleteHandovers(q, 't1', [row.handover_id]));
      throw new DeliveryError('the receiver is busy', { retryable: true, statusCode: 503 });
    });
    await worker!.stop({ graceMs: 1000 });
    worker = undefined;
    expect(await attemptRows()).toBe(0);
  });

  it('an item still there gets its attempt row, as before', async () => {
    await conversationWithPendingItem('h-kept');
    await start(async () => {
      throw new DeliveryError('the receiver is busy', { retryable: true, statusCode: 503 });
    });
    await worker!.stop({ graceMs: 1000 });
    worker = undefined;
    expect(await attemptRows()).toBe(1);
    expect((await db.query<{ attempts: number }>('select attempts from outbox')).rows[0]!.attempts).toBe(1);
  });
});
