/**
 * A small in-memory cache with a time to live and a size bound, for lookups on the hot path whose
 * answers may be a little stale (say how stale where it is used). When full, the oldest entries go.
 */
export class TtlCache<K, V> {
  private readonly entries = new Map<K, { value: V; expires: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The cached value, or undefined when absent or expired. */
  get(key: K): V | undefined {
    return this.entry(key)?.value;
  }

  /** The cached value with when it expires, or undefined when absent or expired. */
  entry(key: K): { value: V; expires: number } | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    if (hit.expires <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return hit;
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  /** Keeps the value for the time to live from `from` (by default now). */
  set(key: K, value: V, from: number = this.now()): void {
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      // Maps iterate in insertion order: the first key is the oldest.
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expires: from + this.ttlMs });
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
