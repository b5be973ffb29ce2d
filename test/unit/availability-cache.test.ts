import { describe, expect, it } from 'vitest';
import { AvailabilityCache } from '../../src/connectors/availability-cache.js';
import type { Connector } from '../../src/connectors/connector.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { eventually } from '../support/test-service.js';

const log = createLogger('silent');

/** A connector whose availability answers are handed out by the test, one per call. */
function scriptedConnector() {
  const calls: Array<{ signal: AbortSignal; answer(n: number): void; fail(err: Error): void }> = [];
  const connector: Connector = {
    async open() {},
    async sendMessage() {},
    async end() {},
    availability: (signal) =>
      new Promise((resolve, reject) => {
        calls.push({ signal, answer: (n) => resolve({ agentsOnline: n }), fail: reject });
        signal.addEventListener('abort', () => reject(signal.reason as Error));
      }),
  };
  return { connector, calls };
}

describe('availability cache', () => {
  it('answers from memory at once, refreshes in the background at most once per interval, and drops stale answers', async () => {
    let now = 1_000_000;
    const { connector, calls } = scriptedConnector();
    const cache = new AvailabilityCache(
      async () => connector,
      { refreshMs: 1000, maxAgeMs: 5000, timeoutMs: 60_000, maxEntries: 10 },
      log,
      () => now,
    );

    expect(cache.peek('c1')).toBeNull();
    await eventually(async () => calls.length === 1, 'the first fetch');
    expect(cache.peek('c1')).toBeNull(); // still under way: unknown, and no second fetch
    expect(calls).toHaveLength(1);
    calls[0]!.answer(0);
    await eventually(async () => cache.peek('c1')?.agentsOnline === 0, 'the answer in memory');

    now += 500; // not due yet
    expect(cache.peek('c1')).toEqual({ agentsOnline: 0 });
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toHaveLength(1);

    now += 600; // due: the old answer is still served while the new one is fetched
    expect(cache.peek('c1')).toEqual({ agentsOnline: 0 });
    await eventually(async () => calls.length === 2, 'the second fetch');
    calls[1]!.fail(new Error('helpdesk down'));

    now += 4000; // the last answer is now older than maxAge: unknown
    expect(cache.peek('c1')).toBeNull();
    cache.stop();
  });

  it('gives up a fetch that hangs at its deadline and remembers a bounded number of connectors', async () => {
    const { connector, calls } = scriptedConnector();
    const cache = new AvailabilityCache(async () => connector, { refreshMs: 1, maxAgeMs: 60_000, timeoutMs: 50, maxEntries: 2 }, log);
    expect(cache.peek('hangs')).toBeNull();
    await eventually(async () => calls[0]?.signal.aborted, 'the hanging fetch aborted at its deadline');
    for (const id of ['a', 'b', 'c']) cache.peek(id);
    expect(cache.size).toBe(2);
    cache.stop();
  });
});
