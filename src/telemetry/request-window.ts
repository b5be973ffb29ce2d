/**
 * Recent API traffic kept in memory in fixed time slices: request count, server errors, admission
 * refusals by cause and a latency histogram per slice. The status page reads percentiles over the
 * last minutes and draws the last hour from it; nothing here touches the database, so reading it
 * stays cheap while the instance is overloaded.
 *
 * Latency is counted in log-spaced buckets (about 12 % wide), so a percentile is exact to one bucket.
 */
const BUCKET_BASE_MS = 0.5;
const BUCKET_GROWTH = 1.12;
const BUCKETS = 120; // 0.5 ms .. ~400 s

export interface Slice {
  start: number;
  requests: number;
  serverErrors: number;
  rejections: Record<string, number>;
  latency: Uint32Array;
}

export interface WindowSummary {
  requests: number;
  serverErrors: number;
  rejections: number;
  rejectionsByCause: Record<string, number>;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  seconds: number;
}

function bucketOf(ms: number): number {
  if (ms <= BUCKET_BASE_MS) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / BUCKET_BASE_MS) / Math.log(BUCKET_GROWTH)));
}

function bucketUpperMs(index: number): number {
  return BUCKET_BASE_MS * BUCKET_GROWTH ** index;
}

export class RequestWindow {
  private readonly slices: Slice[] = [];

  /** `sliceMs`: resolution; `keepMs`: how far back slices are kept (the charts span this). */
  constructor(
    readonly sliceMs: number,
    readonly keepMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  recordRequest(durationMs: number, status: number): void {
    const slice = this.current();
    slice.requests++;
    if (status >= 500) slice.serverErrors++;
    slice.latency[bucketOf(durationMs)]!++;
  }

  recordRejection(cause: string): void {
    const slice = this.current();
    slice.rejections[cause] = (slice.rejections[cause] ?? 0) + 1;
  }

  /** Totals and percentiles over the last `ms`. */
  summary(ms: number): WindowSummary {
    const from = this.now() - ms;
    const latency = new Uint32Array(BUCKETS);
    const out: WindowSummary = { requests: 0, serverErrors: 0, rejections: 0, rejectionsByCause: {}, p50Ms: 0, p95Ms: 0, p99Ms: 0, seconds: ms / 1000 };
    for (const slice of this.slices) {
      if (slice.start + this.sliceMs <= from) continue;
      addSlice(out, latency, slice);
    }
    Object.assign(out, percentiles(latency));
    return out;
  }

  /** One point per `stepMs` over the last `spanMs`, oldest first (chart series). */
  series(spanMs: number, stepMs: number): Array<{ start: number } & WindowSummary> {
    const end = this.now();
    const points: Array<{ start: number } & WindowSummary> = [];
    for (let start = end - spanMs; start < end; start += stepMs) {
      const latency = new Uint32Array(BUCKETS);
      const point = { start, requests: 0, serverErrors: 0, rejections: 0, rejectionsByCause: {}, p50Ms: 0, p95Ms: 0, p99Ms: 0, seconds: stepMs / 1000 };
      for (const slice of this.slices) if (slice.start >= start && slice.start < start + stepMs) addSlice(point, latency, slice);
      Object.assign(point, percentiles(latency));
      points.push(point);
    }
    return points;
  }

  private current(): Slice {
    const now = this.now();
    const start = now - (now % this.sliceMs);
    let last = this.slices.at(-1);
    if (!last || last.start !== start) {
      last = { start, requests: 0, serverErrors: 0, rejections: {}, latency: new Uint32Array(BUCKETS) };
      this.slices.push(last);
      while (this.slices.length > 0 && this.slices[0]!.start < now - this.keepMs) this.slices.shift();
    }
    return last;
  }
}

function addSlice(out: WindowSummary, latency: Uint32Array, slice: Slice): void {
  out.requests += slice.requests;
  out.serverErrors += slice.serverErrors;
  for (const [cause, n] of Object.entries(slice.rejections)) {
    out.rejections += n;
    out.rejectionsByCause[cause] = (out.rejectionsByCause[cause] ?? 0) + n;
  }
  for (let i = 0; i < BUCKETS; i++) latency[i]! += slice.latency[i]!;
}

function percentiles(latency: Uint32Array): { p50Ms: number; p95Ms: number; p99Ms: number } {
  let total = 0;
  for (const n of latency) total += n;
  if (total === 0) return { p50Ms: 0, p95Ms: 0, p99Ms: 0 };
  const at = (q: number) => {
    const rank = Math.ceil(q * total);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += latency[i]!;
      if (seen >= rank) return Math.round(bucketUpperMs(i) * 10) / 10;
    }
    return bucketUpperMs(BUCKETS - 1);
  };
  return { p50Ms: at(0.5), p95Ms: at(0.95), p99Ms: at(0.99) };
}
