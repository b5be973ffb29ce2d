/**
 * How fast each agent-side system answers, measured where it hurts: the duration of every call to it
 * and the lag of every delivery (accepted → delivered). A system that keeps answering, but slowly, is
 * a state of its own — `slow` — distinct from `failing` (its circuit open): bots are told the agent
 * side is degraded, the status page and the doctor name the system with its figures.
 *
 * Cheap on the hot path: recording is two array increments (a log-scale histogram per 5-second slot);
 * the verdict merges the slots of the window when asked (availability, status), never per message.
 *
 * Each instance judges the calls it makes itself. In a fleet every instance that delivers to a slow
 * system sees it slow; one that delivers nothing to it has no evidence and says nothing.
 */

export interface LatencyObjective {
  /** Calls slower than this at p99, over the window, make the system slow. */
  callP99Ms: number;
  /** Deliveries later than this at p99 (accepted → delivered), over the window, make it slow too. */
  lagP99Ms: number;
  /** Keep offering handovers to it while it is slow (availability stays true; the status still says so). */
  offerWhileSlow: boolean;
}

export interface LatencyOptions extends LatencyObjective {
  /** The window judged: calls older than this do not count. */
  windowMs: number;
  /** Fewer calls than this in the window say nothing (a single slow call is not a state). */
  minCalls: number;
}

export interface LatencyVerdict {
  slow: boolean;
  /** What breached: the calls, the deliveries, or both. */
  breached: Array<'calls' | 'lag'>;
  calls: number;
  callP99Ms: number | null;
  /** p99 of calls in the windows judged healthy before (an exponential average); null until known. */
  normalCallP99Ms: number | null;
  deliveries: number;
  lagP99Ms: number | null;
  objective: LatencyObjective;
}

const SLOT_MS = 5000;
/** Bucket upper bounds in ms: 1 ms … ~10 min, ×1.1 each step (~10 % resolution). */
const BOUNDS: number[] = (() => {
  const out: number[] = [];
  for (let b = 1; b < 600_000; b *= 1.1) out.push(b);
  out.push(Infinity);
  return out;
})();

function bucketOf(ms: number): number {
  // Binary search over ~60 bounds.
  let lo = 0;
  let hi = BOUNDS.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ms <= BOUNDS[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

interface Slot {
  start: number;
  calls: Uint32Array;
  lags: Uint32Array;
}

interface ConnectorTrack {
  slots: Slot[];
  objective: Partial<LatencyObjective>;
  slow: boolean;
  normalCallP99Ms: number | null;
  lastJudgedSlot: number;
}

export class ConnectorLatency {
  private readonly tracks = new Map<string, ConnectorTrack>();

  constructor(
    private readonly options: LatencyOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** A per-connector objective (from the connector's config); fields left out take the defaults. */
  configure(connectorId: string, objective: Partial<LatencyObjective> | undefined): void {
    this.track(connectorId).objective = objective ?? {};
  }

  /** One call to the system, whatever its outcome (a timeout counts with its duration). */
  call(connectorId: string, ms: number): void {
    this.slot(connectorId).calls[bucketOf(ms)]!++;
  }

  /** One item delivered to the system `ms` after it was accepted. */
  delivered(connectorId: string, ms: number): void {
    this.slot(connectorId).lags[bucketOf(ms)]!++;
  }

  /** Connectors this instance has measured. */
  known(): string[] {
    return [...this.tracks.keys()];
  }

  objectiveOf(connectorId: string): LatencyObjective {
    const own = this.tracks.get(connectorId)?.objective ?? {};
    return {
      callP99Ms: own.callP99Ms ?? this.options.callP99Ms,
      lagP99Ms: own.lagP99Ms ?? this.options.lagP99Ms,
      offerWhileSlow: own.offerWhileSlow ?? this.options.offerWhileSlow,
    };
  }

  /**
   * The verdict over the window. Slow once the window's p99 breaches an objective (with at least
   * `minCalls` calls); back to normal once both p99s are under 80 % of their objectives, so a system
   * hovering at its objective does not flap. No calls in the window: no evidence, not slow.
   */
  verdict(connectorId: string): LatencyVerdict {
    const objective = this.objectiveOf(connectorId);
    const track = this.tracks.get(connectorId);
    const empty: LatencyVerdict = {
      slow: false,
      breached: [],
      calls: 0,
      callP99Ms: null,
      normalCallP99Ms: track?.normalCallP99Ms ?? null,
      deliveries: 0,
      lagP99Ms: null,
      objective,
    };
    if (!track) return empty;
    const since = this.now() - this.options.windowMs;
    const calls = new Uint32Array(BOUNDS.length);
    const lags = new Uint32Array(BOUNDS.length);
    for (const slot of track.slots) {
      if (slot.start + SLOT_MS <= since) continue;
      for (let i = 0; i < BOUNDS.length; i++) {
        calls[i]! += slot.calls[i]!;
        lags[i]! += slot.lags[i]!;
      }
    }
    const callCount = calls.reduce((a, b) => a + b, 0);
    const lagCount = lags.reduce((a, b) => a + b, 0);
    const callP99 = quantile(calls, callCount, 0.99);
    const lagP99 = quantile(lags, lagCount, 0.99);
    const enough = callCount >= this.options.minCalls;
    const breached: Array<'calls' | 'lag'> = [];
    if (enough && callP99 !== null && callP99 > objective.callP99Ms) breached.push('calls');
    if (enough && lagP99 !== null && lagP99 > objective.lagP99Ms) breached.push('lag');
    if (!enough) track.slow = false;
    else if (breached.length > 0) track.slow = true;
    else if ((callP99 ?? 0) <= 0.8 * objective.callP99Ms && (lagP99 ?? 0) <= 0.8 * objective.lagP99Ms) track.slow = false;
    // What "normal" is: learnt from windows judged healthy, at most once per slot.
    const slotNow = Math.floor(this.now() / SLOT_MS);
    if (!track.slow && enough && callP99 !== null && slotNow !== track.lastJudgedSlot) {
      track.lastJudgedSlot = slotNow;
      track.normalCallP99Ms = track.normalCallP99Ms === null ? callP99 : track.normalCallP99Ms * 0.8 + callP99 * 0.2;
    }
    return {
      slow: track.slow,
      breached: track.slow ? breached : [],
      calls: callCount,
      callP99Ms: callP99,
      normalCallP99Ms: track.normalCallP99Ms,
      deliveries: lagCount,
      lagP99Ms: lagP99,
      objective,
    };
  }

  private track(connectorId: string): ConnectorTrack {
    let track = this.tracks.get(connectorId);
    if (!track) {
      track = { slots: [], objective: {}, slow: false, normalCallP99Ms: null, lastJudgedSlot: -1 };
      this.tracks.set(connectorId, track);
    }
    return track;
  }

  private slot(connectorId: string): Slot {
    const track = this.track(connectorId);
    const now = this.now();
    const start = now - (now % SLOT_MS);
    const last = track.slots[track.slots.length - 1];
    if (last && last.start === start) return last;
    const slot: Slot = { start, calls: new Uint32Array(BOUNDS.length), lags: new Uint32Array(BOUNDS.length) };
    track.slots.push(slot);
    // Keep the window's slots and no more.
    const keep = Math.ceil(this.options.windowMs / SLOT_MS) + 1;
    if (track.slots.length > keep) track.slots.splice(0, track.slots.length - keep);
    return slot;
  }
}

/** The upper bound of the bucket holding the q-quantile (a slight overestimate, never an underestimate). */
function quantile(buckets: Uint32Array, count: number, q: number): number | null {
  if (count === 0) return null;
  const rank = Math.ceil(q * count);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i]!;
    if (seen >= rank) {
      const bound = BOUNDS[i]!;
      return bound === Infinity ? BOUNDS[i - 1]! : Math.round(bound * 10) / 10;
    }
  }
  return null;
}
