import { describe, expect, it } from 'vitest';
import { AdmissionController, type AdmissionOptions, type Permit } from '../../src/resilience/admission.js';
import type { LoadSignals } from '../../src/resilience/load-signals.js';

const signals: LoadSignals = {
  eventLoopDelayMs: () => 0,
  eventLoopUtilization: () => 0,
  eventLoopCpuShare: () => undefined,
  eventLoopWindow: () => ({ seq: 0, utilization: 0 }),
  heap: () => ({ usedBytes: 1, limitBytes: 1000 }),
  stop: () => {},
};

const options: AdmissionOptions = {
  enabled: true,
  adaptive: false,
  initialLimit: 2,
  minLimit: 1,
  maxLimit: 100,
  latencyTargetMs: 50,
  queueTimeoutMs: 5_000,
  codelTargetMs: 5,
  codelIntervalMs: 60_000,
  maxQueueLength: 100,
  eventLoopDelayLimitMs: 200,
  eventLoopUtilizationLimit: 1,
  warmupMs: 0,
  heapUsedLimitRatio: 0.9,
};

/** The controller's side of "a slot comes back exactly once"; the HTTP side is in test/e2e/admission-slots*.test.ts. */
describe('admission slots: waiting clients that leave, releases that count once, health', () => {
  it('a waiter whose client leaves is out of the line at once, and the freed slot goes to the next', async () => {
    const admission = new AdmissionController(options, signals);
    const held = [await admission.acquire('a'), await admission.acquire('a')];
    const gone = new AbortController();
    const leaving = admission.acquire('b', true, { signal: gone.signal }) as Promise<Permit>;
    const staying = admission.acquire('c') as Promise<Permit>;
    expect(admission.snapshot().waiting).toBe(2);
    gone.abort(new Error('client gone'));
    await expect(leaving).rejects.toThrow('client gone');
    expect(admission.snapshot().waiting).toBe(1);
    held[0]!.release();
    const next = await staying;
    expect(admission.snapshot()).toMatchObject({ inflight: 2, waiting: 0 });
    for (const p of [held[1]!, next]) p.release();
    expect(admission.snapshot()).toMatchObject({ inflight: 0, waiting: 0 });
  });

  it('a client already gone is not admitted at all', async () => {
    const admission = new AdmissionController(options, signals);
    const gone = new AbortController();
    gone.abort(new Error('client gone'));
    expect(() => admission.acquire('a', true, { signal: gone.signal })).toThrow('client gone');
    expect(admission.snapshot().inflight).toBe(0);
  });

  it('a permit released twice gives back one slot', async () => {
    const admission = new AdmissionController(options, signals);
    const a = await admission.acquire('a');
    const b = await admission.acquire('a');
    a.release();
    a.release();
    expect(admission.snapshot().inflight).toBe(1);
    b.release();
    expect(admission.snapshot().inflight).toBe(0);
  });

  it('health: a slot held for a gone client counts once it has been gone past a moment', async () => {
    const admission = new AdmissionController(options, signals);
    let live = true;
    const permit = await admission.acquire('a', true, { live: () => live });
    const t0 = Date.now();
    expect(admission.health({ stuckMs: 30_000 }, t0).ok).toBe(true);
    live = false;
    expect(admission.health({ stuckMs: 30_000 }, t0).orphaned).toBe(0);
    const later = admission.health({ stuckMs: 30_000 }, t0 + 1_500);
    expect(later).toMatchObject({ ok: false, orphaned: 1 });
    expect(later.problems).toEqual(['1 admission slot(s) are held for requests whose client has gone.']);
    permit.release();
    expect(admission.health({ stuckMs: 30_000 }, t0 + 1_600).ok).toBe(true);
  });

  it('health: a full house is stuck only when none has come back for the bound', async () => {
    const admission = new AdmissionController(options, signals);
    const permits = [await admission.acquire('a'), await admission.acquire('a')];
    const t0 = Date.now();
    expect(admission.health({ stuckMs: 30_000 }, t0 + 29_000).ok).toBe(true);
    const stuck = admission.health({ stuckMs: 30_000 }, t0 + 31_000);
    expect(stuck).toMatchObject({ ok: false, limit: 2, floor: 2 });
    expect(stuck.problems[0]).toMatch(/^All 2 admission slots \(the limit is at its floor of 2\) have been in use for 3\d s with none given back\.$/);
    // A slot given back and taken again at once is progress: the count starts over.
    permits[0]!.release();
    permits[0] = await admission.acquire('a');
    expect(admission.health({ stuckMs: 30_000 }, Date.now() + 29_000).ok).toBe(true);
    permits.forEach((p) => p.release());
  });
});
