import { describe, expect, it } from 'vitest';
import { getPriority } from 'node:os';
import { deliveryInThread } from '../../src/service/start-steps.js';
import { canLowerThreadPriority } from '../../src/service/thread-priority.js';
import type { PgConnection } from '../../src/store/db.js';

/** Where the delivery worker runs (HANDOVER_DELIVERY_THREAD), on each store and machine size. */
describe('the delivery worker’s place', () => {
  const postgres: PgConnection = { url: 'postgres://db/handover', poolTimeoutMs: 1000, statementTimeoutMs: 1000, idleInTransactionTimeoutMs: 1000 };

  const machine = (cores: number, lowerPriority = true) => ({ cores, lowerPriority });

  it('is a thread with its own pool on PostgreSQL, unless turned off', () => {
    expect(deliveryInThread('auto', postgres, machine(2))).toEqual({ connection: postgres });
    expect(deliveryInThread('auto', postgres, machine(1, false))).toEqual({ connection: postgres });
    expect(deliveryInThread('on', postgres, machine(2))).toEqual({ connection: postgres });
    expect(deliveryInThread('off', postgres, machine(8))).toBeNull();
  });

  it('on the embedded store, is a thread using the HTTP thread’s connection where there is a core for it, or when asked', () => {
    // Two cores are enough when the thread runs below the HTTP thread's priority; three otherwise.
    expect(deliveryInThread('auto', undefined, machine(2))).toEqual({ connection: null });
    expect(deliveryInThread('auto', undefined, machine(2, false))).toBeNull();
    expect(deliveryInThread('auto', undefined, machine(3, false))).toEqual({ connection: null });
    expect(deliveryInThread('auto', undefined, machine(1))).toBeNull();
    expect(deliveryInThread('on', undefined, machine(1, false))).toEqual({ connection: null });
    expect(deliveryInThread('off', undefined, machine(16))).toBeNull();
  });

  it('counts on a lower priority only where one thread can be given one', () => {
    expect(canLowerThreadPriority(0)).toBe(false);
    if (process.platform === 'linux' && getPriority() < 19) expect(canLowerThreadPriority(10)).toBe(true);
    else expect(canLowerThreadPriority(10)).toBe(false);
  });
});
