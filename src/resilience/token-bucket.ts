/**
 * Token buckets by key: each key may make `perSecond` calls on average, `burst` at once. The number of
 * keys kept is bounded (the least recently used go first), so a flood of new keys cannot grow memory.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token for `key`; false when there is none (the caller should refuse, with Retry-After). */
  take(key: string): boolean {
    const now = this.now();
    const held = this.buckets.get(key);
    let bucket: { tokens: number; at: number };
    if (held) {
      this.buckets.delete(key);
      bucket = { tokens: Math.min(this.burst, held.tokens + ((now - held.at) / 1000) * this.perSecond), at: now };
    } else {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
      bucket = { tokens: this.burst, at: now };
    }
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Seconds until `key` has a token again (at least 1). */
  retryAfterSeconds(key: string): number {
    const held = this.buckets.get(key);
    if (!held || held.tokens >= 1) return 1;
    return Math.max(1, Math.ceil((1 - held.tokens) / this.perSecond));
  }
}
