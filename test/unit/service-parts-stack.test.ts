import { describe, expect, it } from 'vitest';
import { PART_GRACE_FLOOR_MS, Parts, type StopOptions } from '../../src/service/parts.js';
import { ServiceEvents } from '../../src/service/events.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { captureLogs } from '../support/log-capture.js';

const log = createLogger('silent');

/** Three parts that record their starts and releases in `trail`. */
async function startThree(parts: Parts, trail: string[], failAt?: string): Promise<void> {
  for (const name of ['store', 'bus', 'worker']) {
    await parts.start(
      name,
      () => {
        if (name === failAt) throw new Error(`${name} failed`);
        trail.push(`start ${name}`);
        return name;
      },
      (part, options: StopOptions) => {
        // What is left of the grace period, to 100 ms (the releases run within a few of each other).
        trail.push(`release ${part} ${Math.ceil(options.graceMs / 100) * 100} ${options.release}`);
      },
    );
  }
}

describe('the release stack of the service parts', () => {
  it('stop() releases every part newest first, with the options it was given, and only once', async () => {
    const trail: string[] = [];
    const parts = new Parts(log);
    await parts.build(() => startThree(parts, trail));
    expect(parts.names()).toEqual(['store', 'bus', 'worker']);
    await Promise.all([parts.stop({ graceMs: 500, release: false }), parts.stop({ graceMs: 500, release: false })]);
    expect(trail).toEqual(['start store', 'start bus', 'start worker', 'release worker 500 false', 'release bus 500 false', 'release store 500 false']);
    await parts.stop({ graceMs: 0, release: true });
    expect(trail).toHaveLength(6);
  });

  it('one grace period for the whole stop: a part that takes time leaves the next ones what is left of it, and at least a floor', async () => {
    const parts = new Parts(log);
    const given: number[] = [];
    await parts.start(
      'store',
      () => 'store',
      (_part, options) => void given.push(options.graceMs),
    );
    await parts.start(
      'worker',
      () => 'worker',
      (_part, options) => void given.push(options.graceMs),
    );
    // Stopped first, it uses 300 ms of the grace period.
    await parts.start(
      'http',
      () => 'http',
      async (_part, options) => {
        given.push(options.graceMs);
        await new Promise((resolve) => setTimeout(resolve, 300));
      },
    );
    const grace = PART_GRACE_FLOOR_MS + 500;
    await parts.stop({ graceMs: grace, release: true });
    expect(given[0]).toBeGreaterThan(grace - 10);
    expect(given[1]).toBeLessThanOrEqual(grace - 290);
    expect(given[1]).toBeGreaterThanOrEqual(PART_GRACE_FLOOR_MS);
    expect(given[2]).toBeLessThanOrEqual(given[1]!);

    // One that outlasts it leaves the others the floor (PART_GRACE_FLOOR_MS, or the grace period when
    // shorter), to finish what they hold in hand.
    const after: number[] = [];
    for (const graceMs of [50, PART_GRACE_FLOOR_MS + 50]) {
      const late = new Parts(log);
      await late.start(
        'worker',
        () => 'worker',
        (_part, options) => void after.push(options.graceMs),
      );
      await late.start(
        'http',
        () => 'http',
        () => new Promise((resolve) => setTimeout(resolve, 100)),
      );
      await late.stop({ graceMs, release: true });
    }
    expect(after).toEqual([50, PART_GRACE_FLOOR_MS]);
  });

  it('a start that fails releases what started before it, at once and giving leases back, and throws its own error', async () => {
    const trail: string[] = [];
    const parts = new Parts(log);
    await expect(parts.build(() => startThree(parts, trail, 'worker'))).rejects.toThrow('worker failed');
    expect(trail).toEqual(['start store', 'start bus', 'release bus 0 true', 'release store 0 true']);
    expect(parts.names()).toEqual([]);
  });

  it('the hook runs before each start and fails it there', async () => {
    const trail: string[] = [];
    const seen: string[] = [];
    const parts = new Parts(log, {
      beforeStart(name) {
        seen.push(name);
        if (name === 'bus') throw new Error('injected');
      },
    });
    await expect(parts.build(() => startThree(parts, trail))).rejects.toThrow('injected');
    expect(seen).toEqual(['store', 'bus']);
    expect(trail).toEqual(['start store', 'release store 0 true']);
  });

  it('a release that fails is logged, the others still run, and stop() throws the first failure', async () => {
    const logs = captureLogs();
    const parts = new Parts(createLogger('info', logs.stream));
    const trail: string[] = [];
    await parts.start(
      'store',
      () => 'store',
      () => void trail.push('store'),
    );
    await parts.start(
      'bus',
      () => 'bus',
      () => Promise.reject(new Error('bus would not close')),
    );
    await parts.start(
      'worker',
      () => 'worker',
      () => {
        throw new Error('worker would not stop');
      },
    );
    await expect(parts.stop({ graceMs: 0, release: true })).rejects.toThrow('worker would not stop');
    expect(trail).toEqual(['store']);
    expect(
      logs
        .lines()
        .filter((l) => String(l.msg).startsWith('stopping'))
        .map((l) => l.part),
    ).toEqual(['worker', 'bus']);
  });

  it('the background group can start again once stopped', async () => {
    const trail: string[] = [];
    const parts = new Parts(log);
    await parts.build(() => startThree(parts, trail));
    await parts.stop({ graceMs: 0, release: false });
    await parts.build(() => startThree(parts, trail));
    expect(parts.names()).toEqual(['store', 'bus', 'worker']);
  });
});

describe('service events', () => {
  it('calls each listener; one that throws is logged and the others still run', () => {
    const logs = captureLogs();
    const events = new ServiceEvents(createLogger('info', logs.stream));
    const gone: string[] = [];
    events.on('check:gone', () => {
      throw new Error('listener bug');
    });
    const off = events.on('check:gone', ({ connectorId }) => gone.push(connectorId));
    events.emit('check:gone', { connectorId: 'c1' });
    off();
    events.emit('check:gone', { connectorId: 'c2' });
    expect(gone).toEqual(['c1']);
    expect(logs.lines().filter((l) => l.event === 'check:gone')).toHaveLength(2);
  });
});
