import { TtlCache } from './ttl-cache.js';

export interface LoadingCacheOptions {
  ttlMs: number;
  maxEntries: number;
  /**
   * An entry asked for within this long of its expiry is loaded again in the background while it is
   * still served, so a key in use never expires under its callers. 0: no refresh ahead.
   */
  refreshAheadMs?: number;
  now?: () => number;
}

/**
 * Loads under way, at most one per key: a caller asking for a key whose load is under way gets that
 * load's promise. `drop` forgets a load under way, whose result then still goes to its callers but not
 * to `keep` (it may predate whatever the drop was for).
 */
export class SingleFlight<K, V> {
  private readonly loading = new Map<K, Promise<V>>();

  /** The load under way for the key, or `load()` started; `keep` gets its value unless dropped meanwhile. */
  run(key: K, load: () => Promise<V>, keep: (value: V) => void = () => {}): Promise<V> {
    const under = this.loading.get(key);
    if (under) return under;
    let started: Promise<V>;
    try {
      started = load();
    } catch (err) {
      started = Promise.reject(err);
    }
    const loaded = started.then(
      (value) => {
        if (this.loading.get(key) === loaded) {
          this.loading.delete(key);
          keep(value);
        }
        return value;
      },
      (err: unknown) => {
        if (this.loading.get(key) === loaded) this.loading.delete(key);
        throw err;
      },
    );
    this.loading.set(key, loaded);
    return loaded;
  }

  has(key: K): boolean {
    return this.loading.has(key);
  }

  drop(key: K): void {
    this.loading.delete(key);
  }

  dropAll(): void {
    this.loading.clear();
  }

  get size(): number {
    return this.loading.size;
  }
}

/**
 * A TtlCache that loads what it misses, once per key at a time. Without that, a cold cache (a new
 * instance's first second) or an entry expiring under load sends every request asking for that key to
 * the database at the same moment, a thundering herd; and where the load writes a row (an API key's
 * last use), those statements queue on that row's lock one commit after another. Here the requests
 * that miss while a load is under way wait for that same load; with `refreshAheadMs`, a key in use is
 * loaded again before it expires, and its callers keep the value they had meanwhile.
 *
 * A failed load is not cached: its waiters get its error and the next request loads again. `delete`
 * also drops a load under way, whose result then goes to its waiters but is not kept (it may predate
 * what the delete was for, a revocation say).
 */
export class LoadingCache<K, V> {
  private readonly cache: TtlCache<K, V>;
  private readonly loading = new SingleFlight<K, V>();
  private readonly refreshAheadMs: number;
  private readonly now: () => number;

  constructor(
    private readonly load: (key: K) => Promise<V>,
    options: LoadingCacheOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.cache = new TtlCache(options.ttlMs, options.maxEntries, this.now);
    this.refreshAheadMs = options.refreshAheadMs ?? 0;
  }

  /** The cached value; or the value of the load under way for the key; or of a new load. */
  get(key: K): Promise<V> {
    const hit = this.cache.entry(key);
    if (hit) {
      if (this.refreshAheadMs > 0 && hit.expires - this.now() <= this.refreshAheadMs && !this.loading.has(key)) {
        // Its failure is not the caller's: the entry serves until it expires, and a miss loads again.
        this.start(key).catch(() => {});
      }
      return Promise.resolve(hit.value);
    }
    return this.start(key);
  }

  /** Forgets the key, and the load under way for it, if any. */
  delete(key: K): void {
    this.cache.delete(key);
    this.loading.drop(key);
  }

  /** Forgets every key, and every load under way (signals that may have said what changed were lost). */
  clear(): void {
    this.cache.clear();
    this.loading.dropAll();
  }

  /** Loads under way (for tests and figures). */
  get loads(): number {
    return this.loading.size;
  }

  private start(key: K): Promise<V> {
    // Its time to live counts from when the load began: what it read is never served longer than that
    // after it was read, however long the load took.
    const from = this.now();
    return this.loading.run(
      key,
      () => this.load(key),
      (value) => this.cache.set(key, value, from),
    );
  }
}
