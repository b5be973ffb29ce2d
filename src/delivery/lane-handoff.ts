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
 * has no room), the accept statement claims nothing and the items wait for an ordinary claim. A
 * statement that began while the worker was attached may end after it detached: the leases it took
 * then go back to the worker that stopped, which gives them back in the database rather than leave
 * that conversation waiting for them to run out.
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
  /**
   * Lanes leased for this worker after it detached (a statement under way as it began to stop): it
   * releases their leases, once no run of its own holds them any more.
   */
  giveBack(lanes: HandedLane[]): void;
}

export class LaneHandoff {
  private sink: HandoffSink | null = null;
  /** The worker that detached last, for leases taken for it as it stopped. */
  private detached: HandoffSink | null = null;

  constructor(
    readonly instanceId: string,
    readonly leaseMs: number,
  ) {}

  attach(sink: HandoffSink): void {
    this.sink = sink;
    this.detached = null;
  }

  detach(sink: HandoffSink): void {
    if (this.sink !== sink) return;
    this.sink = null;
    this.detached = sink;
  }

  /** What the accept statement needs to take leases for this instance; null: take none. */
  claim(): { instanceId: string; leaseMs: number; blocked: string[] } | null {
    const sink = this.sink;
    if (!sink || !sink.hasRoom()) return null;
    return { instanceId: this.instanceId, leaseMs: this.leaseMs, blocked: sink.blocked() };
  }

  /**
   * Gives leased lanes to the worker. Answers false when no worker is attached any more (it stopped
   * between the statement and now): the worker that stopped gives the leases back (unless it has
   * finished stopping: then they run out), and the caller wakes the ordinary claim.
   */
  hand(lanes: HandedLane[]): boolean {
    if (lanes.length === 0) return true;
    if (!this.sink) {
      this.detached?.giveBack(lanes);
      return false;
    }
    this.sink.take(lanes);
    return true;
  }
}
