import type { OutboxRow } from './outbox.js';

/**
 * The short way from "accepted" to "being delivered" on one instance.
 *
 * The statement that accepts a message may also take its lane's lease for this instance — only when
 * the lane was idle (nothing pending, no lease) or is already held here — and the accepted items then
 * go straight to this instance's delivery worker, in memory: no wake-up, no claim query, no read of
 * the items just written. They are still in the outbox, committed, under a lease: if this process
 * dies, the lease runs out and any instance delivers them, exactly as for a claimed lane.
 *
 * The worker attaches itself when it starts and detaches when it stops; while none is attached (or it
 * has no room), the accept statement claims nothing and the items wait for an ordinary claim.
 */
export interface HandedLane {
  lane: string;
  connectorId: string | null;
  /** Items of the lane, in seq order, all committed and leased to this instance. */
  items: OutboxRow[];
  /** True when the lane had nothing pending before these items: nothing older is in the outbox. */
  wasIdle: boolean;
}

export interface HandoffSink {
  /** Whether the worker takes more lanes now (its bound on lanes in flight). */
  hasRoom(): boolean;
  /** Connectors whose lanes must not be taken here now (circuit open, bulkhead full). */
  blocked(): string[];
  take(lanes: HandedLane[]): void;
}

export class LaneHandoff {
  private sink: HandoffSink | null = null;

  constructor(
    readonly instanceId: string,
    readonly leaseMs: number,
  ) {}

  attach(sink: HandoffSink): void {
    this.sink = sink;
  }

  detach(sink: HandoffSink): void {
    if (this.sink === sink) this.sink = null;
  }

  /** What the accept statement needs to take leases for this instance; null: take none. */
  claim(): { instanceId: string; leaseMs: number; blocked: string[] } | null {
    const sink = this.sink;
    if (!sink || !sink.hasRoom()) return null;
    return { instanceId: this.instanceId, leaseMs: this.leaseMs, blocked: sink.blocked() };
  }

  /**
   * Gives leased lanes to the worker. Answers false when no worker is attached any more (it stopped
   * between the statement and now): the caller then wakes the ordinary claim, and the lease runs out.
   */
  hand(lanes: HandedLane[]): boolean {
    if (lanes.length === 0) return true;
    if (!this.sink) return false;
    this.sink.take(lanes);
    return true;
  }
}
