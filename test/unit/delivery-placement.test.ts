import { describe, expect, it } from 'vitest';
import { deliveryInThread } from '../../src/service/start-steps.js';
import type { PgConnection } from '../../src/store/db.js';

/** Where the delivery worker runs (HANDOVER_DELIVERY_THREAD), on each store and machine size. */
describe('the delivery worker’s place', () => {
  const postgres: PgConnection = { url: 'postgres://db/handover', poolTimeoutMs: 1000, statementTimeoutMs: 1000, idleInTransactionTimeoutMs: 1000 };

  it('is a thread with its own pool on PostgreSQL, unless turned off', () => {
    expect(deliveryInThread('auto', postgres, 2)).toEqual({ connection: postgres });
    expect(deliveryInThread('on', postgres, 2)).toEqual({ connection: postgres });
    expect(deliveryInThread('off', postgres, 8)).toBeNull();
  });

  it('on the embedded store, is a thread using the HTTP thread’s connection where there is a core for it, or when asked', () => {
    expect(deliveryInThread('auto', undefined, 2)).toBeNull();
    expect(deliveryInThread('auto', undefined, 3)).toEqual({ connection: null });
    expect(deliveryInThread('on', undefined, 2)).toEqual({ connection: null });
    expect(deliveryInThread('off', undefined, 16)).toBeNull();
  });
});
