import { shortOfCpu } from './loop-cause.js';

/**
 * A cap on how many requests per second busy callers are admitted while the event loop has no time to
 * spare. It is what drains a backlog the admission limit cannot see.
 *
 * Under heavy overload the loop can spend all of its time answering: admitted requests at the rate the
 * store takes them, and refusals for the rest. Then no turn is late by much (each is short), the
 * admitted requests' own latency stays near the target, and yet the loop never gets ahead. Requests
 * queued in the kernel and at the clients, before the service could read them, stay queued, and every
 * answer comes seconds after it was asked for. The service cannot measure that wait. It can measure
 * that its loop was busy all of the last window (event-loop utilization), and that is the signal.
 *
 * The control moves by ratios both ways, so it settles within a few windows:
 * - A second window in a row at or above `limit` (0.99 busy, say; the cap is off by default, a limit
 *   of 1) caps busy callers at 85 % of what was admitted in it, and each further one by 15 % more, down
 *   to half of what was admitted when the cap engaged.
 *   The time this frees answers the queued requests (a refusal costs a fraction of an admission), and
 *   the backlog drains.
 * - A window below the limit raises a cap that refused requests by 10 %, and removes one that refused
 *   none. So does a window in which the loop's thread waited for a core a fifth of it or more: such a
 *   loop is kept waiting by other threads and processes, not by its own work (docs/overload.md, "Busy,
 *   or short of CPU").
 *
 * Callers with nothing in flight are never refused by the cap (they count against it), so a flood from
 * one caller cannot starve a quiet one, as with the admission line.
 */
export interface LoopWindow {
  /** Increases by one with each finished window. */
  seq: number;
  /** Share of the window the loop was busy, 0..1. */
  utilization: number;
  /**
   * Share of the window the loop's thread ran on a CPU, 0..1, from the OS's accounting; undefined
   * where the OS does not say. Below `utilization` when the loop was busy but its thread waited for a
   * core (other processes or threads on the same cores, a container's CPU quota).
   */
  cpuShare?: number;
}

const DECREASE = 0.85;
const INCREASE = 1.1;
/**
 * The cap never goes below this share of what was admitted when it engaged: when refusals alone keep
 * the loop busy, admitting fewer frees nothing more, and goodput would fall for no gain.
 */
const FLOOR_SHARE = 0.5;
/** Nor below this many admissions per second. */
const MIN_RATE = 10;
/** Admissions a burst may take at once, in seconds of the rate. */
const BURST_SECONDS = 0.02;

export class LoopShareCap {
  /** Admissions per second allowed to busy callers; Infinity: no cap. */
  private rate = Infinity;
  private floor = MIN_RATE;
  private tokens = 0;
  private refilledAt: number;
  private admitted = 0;
  private refused = 0;
  private countingSince: number;
  private lastSeq = -1;
  private lastUtilization = 0;
  private lastCpuShare: number | undefined;
  private lastBusy = false;

  constructor(
    /** Utilization at or above which the cap engages; 1 or more: never. */
    private readonly limit: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.refilledAt = this.countingSince = this.now();
  }

  /** The cap in admissions per second, or undefined when there is none. */
  get current(): number | undefined {
    return this.rate === Infinity ? undefined : this.rate;
  }

  /** The loop's utilization in the last window read. */
  get utilization(): number {
    return this.lastUtilization;
  }

  /** The share of the last window read that the loop's thread ran on a CPU, where known. */
  get cpuShare(): number | undefined {
    return this.lastCpuShare;
  }

  /** Adjusts the cap once per finished window of the loop's utilization (a window seen before is ignored). */
  observe(window: LoopWindow): void {
    if (window.seq === this.lastSeq) return;
    this.lastSeq = window.seq;
    this.lastUtilization = window.utilization;
    this.lastCpuShare = window.cpuShare;
    const now = this.now();
    const seconds = (now - this.countingSince) / 1000;
    const admittedRate = seconds > 0 ? this.admitted / seconds : 0;
    const refused = this.refused;
    this.admitted = this.refused = 0;
    this.countingSince = now;
    if (this.limit >= 1) return;
    // A loop whose thread waited for a core much of the window is short of CPU, not busy with its own
    // work: what keeps it waiting is other threads and processes (the database, the delivery thread,
    // other pods on the node), and refusing more here frees little of that. Clients that retry at
    // once even turn such refusals into more work for the loop.
    const busy = window.utilization >= this.limit && !shortOfCpu(window.utilization, window.cpuShare);
    const busyBefore = this.lastBusy;
    this.lastBusy = busy;
    // A single busy window (a burst of work, a long collection) is not taken for saturation.
    if (busy && this.rate === Infinity && !busyBefore) return;
    if (busy) {
      if (this.rate === Infinity) {
        // Engaging: an empty bucket, filling from now, and a floor at half of what was admitted.
        this.tokens = 0;
        this.refilledAt = now;
        this.floor = Math.max(MIN_RATE, admittedRate * FLOOR_SHARE);
      }
      this.rate = Math.max(this.floor, Math.min(this.rate, admittedRate) * DECREASE);
      this.tokens = Math.min(this.tokens, this.burst());
    } else if (this.rate !== Infinity) {
      // Room again: a cap that refused nothing goes; one that did rises.
      this.rate = refused === 0 ? Infinity : this.rate * INCREASE;
    }
  }

  /**
   * Counts an admission; false when a busy caller must be refused instead. A caller that is not busy is
   * admitted whatever is left, and its admission counts against the cap.
   */
  take(busy: boolean): boolean {
    if (this.rate === Infinity) {
      this.admitted++;
      return true;
    }
    this.refill();
    if (this.tokens < 1 && busy) {
      this.refused++;
      return false;
    }
    // A quiet caller may take the bucket below zero, down to one burst.
    this.tokens = Math.max(this.tokens - 1, -this.burst());
    this.admitted++;
    return true;
  }

  private burst(): number {
    return Math.max(1, this.rate * BURST_SECONDS);
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst(), this.tokens + ((now - this.refilledAt) / 1000) * this.rate);
    this.refilledAt = now;
  }
}
