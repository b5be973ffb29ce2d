import { describe, expect, it } from 'vitest';
import { ConnectorLatency } from '../../src/resilience/connector-latency.js';

const defaults = { callP99Ms: 1000, lagP99Ms: 10_000, offerWhileSlow: false, windowMs: 30_000, minCalls: 5 };

function tracker() {
  let now = 1_000_000;
  const latency = new ConnectorLatency(defaults, () => now);
  return { latency, advance: (ms: number) => (now += ms) };
}

describe('connector latency', () => {
  it('says nothing from fewer calls than the minimum, however slow', () => {
    const { latency } = tracker();
    for (let i = 0; i < 4; i++) latency.call('c', 9000);
    expect(latency.verdict('c')).toMatchObject({ slow: false, calls: 4 });
  });

  it('turns slow when the window p99 breaches the objective, names what breached, and keeps what is normal', () => {
    const { latency, advance } = tracker();
    for (let i = 0; i < 50; i++) latency.call('c', 90);
    const healthy = latency.verdict('c');
    expect(healthy.slow).toBe(false);
    expect(healthy.callP99Ms).toBeGreaterThanOrEqual(90);
    expect(healthy.callP99Ms).toBeLessThan(100);
    advance(36_000);
    for (let i = 0; i < 10; i++) {
      latency.call('c', 5000);
      latency.delivered('c', 48_000);
    }
    const slow = latency.verdict('c');
    expect(slow).toMatchObject({ slow: true, breached: ['calls', 'lag'], calls: 10, deliveries: 10 });
    expect(slow.callP99Ms).toBeGreaterThanOrEqual(5000);
    expect(slow.callP99Ms).toBeLessThan(5500);
    // "Normally" is what the healthy window measured, not the slowdown.
    expect(slow.normalCallP99Ms).toBeGreaterThanOrEqual(90);
    expect(slow.normalCallP99Ms).toBeLessThan(100);
    // Other connectors are judged on their own calls.
    expect(latency.verdict('other')).toMatchObject({ slow: false, calls: 0 });
  });

  it('does not flap at the objective: back to normal only under 80 % of it', () => {
    const { latency, advance } = tracker();
    for (let i = 0; i < 10; i++) latency.call('c', 1500);
    expect(latency.verdict('c').slow).toBe(true);
    advance(36_000);
    for (let i = 0; i < 10; i++) latency.call('c', 900);
    expect(latency.verdict('c').slow).toBe(true);
    advance(36_000);
    for (let i = 0; i < 10; i++) latency.call('c', 500);
    expect(latency.verdict('c').slow).toBe(false);
  });

  it('forgets calls older than the window: no evidence, not slow', () => {
    const { latency, advance } = tracker();
    for (let i = 0; i < 10; i++) latency.call('c', 5000);
    expect(latency.verdict('c').slow).toBe(true);
    advance(40_000);
    expect(latency.verdict('c')).toMatchObject({ slow: false, calls: 0, callP99Ms: null });
  });

  it('takes a connector’s own objective over the defaults', () => {
    const { latency } = tracker();
    latency.configure('c', { callP99Ms: 100, offerWhileSlow: true });
    for (let i = 0; i < 10; i++) latency.call('c', 300);
    expect(latency.verdict('c')).toMatchObject({ slow: true, objective: { callP99Ms: 100, lagP99Ms: 10_000, offerWhileSlow: true } });
  });
});
