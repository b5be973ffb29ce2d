import { describe, expect, it } from 'vitest';
import { AdmissionController, type AdmissionOptions, type Permit } from '../../src/resilience/admission.js';
import type { LoadSignals } from '../../src/resilience/load-signals.js';

const signals: LoadSignals = { eventLoopDelayMs: () => 0, eventLoopUtilization: () => 0, heap: () => ({ usedBytes: 1, limitBytes: 1000 }), stop: () => {} };

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
  warmupMs: 0,
  heapUsedLimitRatio: 0.9,
};

/** The controller's side of "a slot comes back exactly once"; the HTTP side is in test/e2e/admission-slots*.test.ts. */
describe('admission slots: waiting clients that leave, releases that count once', () => {
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
});
