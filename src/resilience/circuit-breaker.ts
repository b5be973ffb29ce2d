/**
 * One circuit breaker per external system. After `failureThreshold` consecutive transient failures
 * (timeouts, refused connections, 5xx, 429) the circuit opens: no calls for `cooldownMs`, and bots are
 * told the agent side is degraded instead of being handed into a black hole. Then one trial call
 * (half-open) decides: success closes it, failure opens it again.
 */
export type CircuitState = 'closed' | 'half_open' | 'open';

export interface CircuitOptions {
  failureThreshold: number;
  cooldownMs: number;
}

export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private current: CircuitState = 'closed';
  private trialInFlight = false;

  constructor(private readonly options: CircuitOptions) {}

  state(now = Date.now()): CircuitState {
    if (this.current === 'open' && now - this.openedAt >= this.options.cooldownMs) {
      this.current = 'half_open';
      this.trialInFlight = false;
    }
    return this.current;
  }

  /** May a call go out now? In half-open state, only one trial at a time. */
  tryCall(now = Date.now()): boolean {
    const state = this.state(now);
    if (state === 'closed') return true;
    if (state === 'open' || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  onSuccess(): void {
    this.failures = 0;
    this.current = 'closed';
    this.trialInFlight = false;
  }

  onFailure(now = Date.now()): void {
    this.failures++;
    this.trialInFlight = false;
    if (this.current === 'half_open' || this.failures >= this.options.failureThreshold) {
      this.current = 'open';
      this.openedAt = now;
    }
  }

  /** The call ended without saying anything about the remote side (e.g. a 4xx about our request). */
  onNeutral(): void {
    this.trialInFlight = false;
  }
}

/**
 * The circuits of all connectors this instance calls, plus a bulkhead: at most `maxInflightPerConnector`
 * lanes of one connector are worked on at once, so a slow system holds only its own share of the
 * delivery workers and never the whole pool.
 */
export class ConnectorHealth {
  private readonly circuits = new Map<string, CircuitBreaker>();
  private readonly active = new Map<string, number>();

  constructor(
    private readonly options: CircuitOptions & { maxInflightPerConnector: number },
    private readonly onStateChange: (connectorId: string, state: CircuitState) => void = () => {},
  ) {}

  get maxPerConnector(): number {
    return this.options.maxInflightPerConnector;
  }

  circuit(connectorId: string): CircuitBreaker {
    let circuit = this.circuits.get(connectorId);
    if (!circuit) {
      circuit = new CircuitBreaker(this.options);
      this.circuits.set(connectorId, circuit);
    }
    return circuit;
  }

  state(connectorId: string): CircuitState {
    return this.circuits.get(connectorId)?.state() ?? 'closed';
  }

  /** Connectors whose lanes must not be claimed now: circuit open, or every bulkhead slot taken. */
  blocked(): string[] {
    const ids = new Set(this.bulkheadFull());
    for (const [id, circuit] of this.circuits) if (circuit.state() === 'open') ids.add(id);
    return [...ids];
  }

  /** Connectors every bulkhead slot of which is taken. */
  bulkheadFull(): string[] {
    const ids: string[] = [];
    for (const [id, n] of this.active) if (n >= this.options.maxInflightPerConnector) ids.push(id);
    return ids;
  }

  /** Free bulkhead slots of the connectors that have lanes in work here (others have them all). */
  remaining(): { connectorIds: string[]; slots: number[] } {
    const connectorIds: string[] = [];
    const slots: number[] = [];
    for (const [id, n] of this.active) {
      connectorIds.push(id);
      slots.push(Math.max(0, this.options.maxInflightPerConnector - n));
    }
    return { connectorIds, slots };
  }

  /** Whether one more lane of the connector may be worked on here now. */
  hasRoom(connectorId: string): boolean {
    return (this.active.get(connectorId) ?? 0) < this.options.maxInflightPerConnector;
  }

  laneStarted(connectorId: string): void {
    this.active.set(connectorId, (this.active.get(connectorId) ?? 0) + 1);
  }

  laneEnded(connectorId: string): void {
    const n = (this.active.get(connectorId) ?? 1) - 1;
    if (n <= 0) this.active.delete(connectorId);
    else this.active.set(connectorId, n);
  }

  /** Asks the circuit whether a call may go out now (one trial at a time when half-open). */
  tryCall(connectorId: string): boolean {
    return this.circuit(connectorId).tryCall();
  }

  callEnded(connectorId: string, outcome: 'success' | 'failure' | 'neutral'): void {
    const circuit = this.circuit(connectorId);
    const before = circuit.state();
    if (outcome === 'success') circuit.onSuccess();
    else if (outcome === 'failure') circuit.onFailure();
    else circuit.onNeutral();
    const after = circuit.state();
    if (after !== before) this.onStateChange(connectorId, after);
  }
}

/**
 * The circuits and full bulkheads of a delivery worker that runs in another thread, as that thread
 * reported them: what routing, the status page and the accept path's handoff read on the HTTP thread.
 * An open circuit turns half-open here after the same cooldown as there, without waiting for a report.
 */
export class CircuitMirror {
  private readonly circuits = new Map<string, { state: CircuitState; at: number }>();
  private full: string[] = [];

  constructor(private readonly cooldownMs: number) {}

  record(connectorId: string, state: CircuitState, now = Date.now()): void {
    if (state === 'closed') this.circuits.delete(connectorId);
    else this.circuits.set(connectorId, { state, at: now });
  }

  bulkheads(full: string[]): void {
    this.full = full;
  }

  state(connectorId: string, now = Date.now()): CircuitState {
    const circuit = this.circuits.get(connectorId);
    if (!circuit) return 'closed';
    if (circuit.state === 'open' && now - circuit.at >= this.cooldownMs) return 'half_open';
    return circuit.state;
  }

  blocked(now = Date.now()): string[] {
    const ids = new Set(this.full);
    for (const id of this.circuits.keys()) if (this.state(id, now) === 'open') ids.add(id);
    return [...ids];
  }

  /** The thread is gone: what it reported no longer holds (a new thread starts with closed circuits). */
  clear(): void {
    this.circuits.clear();
    this.full = [];
  }
}
