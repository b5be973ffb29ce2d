import { describe, expect, it } from 'vitest';
import { CircuitMirror, ConnectorHealth } from '../../src/resilience/circuit-breaker.js';

/**
 * The HTTP thread's mirror of the delivery thread's circuits: what routing and the handoff read. It must
 * say what the circuits there say, including the open → half-open turn that happens by time alone (no
 * call, so no report).
 */
describe('CircuitMirror', () => {
  it('follows the reported states and turns an open circuit half-open after the cooldown, as the circuit does', () => {
    const mirror = new CircuitMirror(1000);
    expect(mirror.state('c-1', 0)).toBe('closed');
    mirror.record('c-1', 'open', 10_000);
    expect(mirror.state('c-1', 10_500)).toBe('open');
    expect(mirror.blocked(10_500)).toEqual(['c-1']);
    expect(mirror.state('c-1', 11_000)).toBe('half_open');
    expect(mirror.blocked(11_000)).toEqual([]);
    mirror.record('c-1', 'closed', 11_200);
    expect(mirror.state('c-1', 11_200)).toBe('closed');
  });

  it('blocks connectors whose bulkheads the thread reported full, until it reports otherwise', () => {
    const mirror = new CircuitMirror(1000);
    mirror.bulkheads(['c-2']);
    mirror.record('c-3', 'open', 0);
    expect(mirror.blocked(10).sort()).toEqual(['c-2', 'c-3']);
    mirror.bulkheads([]);
    expect(mirror.blocked(10)).toEqual(['c-3']);
    mirror.clear();
    expect(mirror.blocked(10)).toEqual([]);
    expect(mirror.state('c-3', 10)).toBe('closed');
  });

  it('reports what a ConnectorHealth reports when fed its changes and bulkheads', () => {
    const mirror = new CircuitMirror(60_000);
    const health = new ConnectorHealth({ failureThreshold: 2, cooldownMs: 60_000, maxInflightPerConnector: 1 }, (id, state) => mirror.record(id, state));
    health.laneStarted('c-4');
    mirror.bulkheads(health.bulkheadFull());
    health.callEnded('c-5', 'failure');
    health.callEnded('c-5', 'failure');
    expect(mirror.state('c-5')).toBe(health.state('c-5'));
    expect(mirror.blocked().sort()).toEqual(health.blocked().sort());
    health.laneEnded('c-4');
    mirror.bulkheads(health.bulkheadFull());
    expect(mirror.blocked()).toEqual(health.blocked());
  });
});
