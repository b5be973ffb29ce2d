/**
 * A concurrency limit that follows measured latency, in the spirit of Netflix's Gradient2 limiter with
 * TCP's pace: while requests complete as fast as they should and the limit is actually used, it grows
 * by about sqrt(limit) per window (one window: as many completions as the limit); when recent latency
 * rises above what it should be, it shrinks in proportion (never below half) — at most once per
 * window, like TCP's one decrease per round trip. So it settles near the knee where more concurrency
 * only adds waiting (in the database pool, on the CPU).
 *
 * Why once per window: one stall (a slow commit, a collection) makes every request then in flight
 * complete late. Those completions all describe the limit before any decrease; shrinking once per
 * late completion took a limit of 200 to its floor within a few hundred of them, then grew it back as
 * fast, and the instance served at the floor's pace half of the time. A completion counts towards a
 * decrease only if its request started after the last decrease.
 *
 * "What it should be" is the larger of `tolerance` × the fastest recent latency (the no-load baseline,
 * re-learnt every 30 s) and an explicit `targetMs`. Gradient2 proper compares against a long moving
 * average instead; measured here, that average follows a load-driven rise within a second at a few
 * hundred requests per second, so the limit never shrank while requests queued for seconds.
 */
export interface GradientLimitOptions {
  initial: number;
  min: number;
  max: number;
  /** Latency the limit defends: below it the limit may grow, above it it shrinks. */
  targetMs?: number;
  /** How much slower than the no-load baseline a request may be before it counts as queueing. */
  tolerance?: number;
  now?: () => number;
}

const BASELINE_WINDOW_MS = 30_000;

export class GradientLimit {
  private value: number;
  private shortRtt = 0;
  private baseline = Infinity;
  private nextBaseline = Infinity;
  private baselineSince: number;
  /** When the limit last shrank; completions of requests started before it are not counted again. */
  private lastDecreaseAt = -Infinity;
  private readonly targetMs: number;
  private readonly tolerance: number;
  private readonly now: () => number;
  private floor: number;

  constructor(private readonly options: GradientLimitOptions) {
    this.value = options.initial;
    this.floor = options.min;
    this.targetMs = options.targetMs ?? 50;
    this.tolerance = options.tolerance ?? 2;
    this.now = options.now ?? Date.now;
    this.baselineSince = this.now();
  }

  get limit(): number {
    return Math.floor(this.value);
  }

  /** One completed request: its latency and how many were in flight when it started. */
  onSample(rttMs: number, inflight: number): void {
    const now = this.now();
    const rtt = Math.max(rttMs, 0.1);
    // The minimum over a window, re-learnt window by window, so a changed environment is picked up.
    this.nextBaseline = Math.min(this.nextBaseline, rtt);
    if (now - this.baselineSince >= BASELINE_WINDOW_MS) {
      this.baseline = this.nextBaseline;
      this.nextBaseline = Infinity;
      this.baselineSince = now;
    }
    this.baseline = Math.min(this.baseline, rtt);
    // Started before the last decrease: it measured the limit that decrease already answered.
    if (now - rtt < this.lastDecreaseAt) return;
    this.shortRtt = this.shortRtt === 0 ? rtt : this.shortRtt * 0.9 + rtt * 0.1;
    const expected = Math.max(this.tolerance * this.baseline, this.targetMs);
    const gradient = Math.max(0.5, Math.min(1, expected / this.shortRtt));
    if (gradient < 1) {
      this.lastDecreaseAt = now;
      this.value = Math.max(this.floor, this.value * gradient);
      // The next window is judged on its own completions, not on the average this one left.
      this.shortRtt = expected;
      return;
    }
    // An underused limit says nothing about capacity: do not grow it on idle samples.
    if (inflight < this.value / 2) return;
    this.value = Math.min(this.options.max, this.value + 1 / Math.sqrt(this.value));
  }

  /** The floor it never goes below. */
  get min(): number {
    return this.floor;
  }

  /** Raises the floor (never above the most limit), and the limit with it where it is below. */
  raiseFloor(min: number): void {
    this.floor = Math.max(this.floor, Math.min(min, this.options.max));
    this.value = Math.max(this.value, this.floor);
  }

  /** Latencies, for the status page and rejection messages. */
  rtts(): { shortMs: number; longMs: number } {
    return { shortMs: this.shortRtt, longMs: this.baseline === Infinity ? 0 : this.baseline };
  }
}
