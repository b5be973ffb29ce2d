import { describe, expect, it } from 'vitest';
import { LoadingCache } from '../../src/store/loading-cache.js';

/** A load the test finishes itself, one per call, in the order they were made. */
function controlledLoads<V>() {
  const calls: Array<{ key: string; resolve: (v: V) => void; reject: (e: Error) => void }> = [];
  const load = (key: string) => new Promise<V>((resolve, reject) => calls.push({ key, resolve, reject }));
  return { calls, load };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('LoadingCache', () => {
  it('loads a key once for all the requests that miss while its load is under way', async () => {
    const { calls, load } = controlledLoads<string>();
    const cache = new LoadingCache(load, { ttlMs: 1000, maxEntries: 10 });
    const waiting = [cache.get('a'), cache.get('a'), cache.get('a'), cache.get('b')];
    expect(calls.map((c) => c.key)).toEqual(['a', 'b']);
    calls[0]!.resolve('A');
    calls[1]!.resolve('B');
    expect(await Promise.all(waiting)).toEqual(['A', 'A', 'A', 'B']);
    // Then from the cache, without another load.
    expect(await cache.get('a')).toBe('A');
    expect(calls).toHaveLength(2);
  });

  it('gives a failed load’s error to each of its waiters and keeps nothing: the next request loads again', async () => {
    const { calls, load } = controlledLoads<string>();
    const cache = new LoadingCache(load, { ttlMs: 1000, maxEntries: 10 });
    const waiting = [cache.get('a'), cache.get('a')].map((p) => p.then(String, (e: Error) => `failed: ${e.message}`));
    calls[0]!.reject(new Error('database_timeout'));
    expect(await Promise.all(waiting)).toEqual(['failed: database_timeout', 'failed: database_timeout']);
    const again = cache.get('a');
    expect(calls).toHaveLength(2);
    calls[1]!.resolve('A');
    expect(await again).toBe('A');
  });

  it('does not keep what a load under way at a delete read: its waiters get it, the next request loads again', async () => {
    const { calls, load } = controlledLoads<string>();
    const cache = new LoadingCache(load, { ttlMs: 1000, maxEntries: 10 });
    const before = cache.get('key');
    cache.delete('key'); // say, a revocation heard while the lookup was under way
    calls[0]!.resolve('valid');
    expect(await before).toBe('valid');
    const after = cache.get('key');
    expect(calls).toHaveLength(2);
    calls[1]!.resolve('revoked');
    expect(await after).toBe('revoked');
    expect(await cache.get('key')).toBe('revoked');
  });

  it('loads a key in use again before it expires, serving the value it has meanwhile; once per key at a time', async () => {
    let now = 0;
    const { calls, load } = controlledLoads<number>();
    const cache = new LoadingCache(load, { ttlMs: 1000, maxEntries: 10, refreshAheadMs: 200, now: () => now });
    const first = cache.get('a');
    calls[0]!.resolve(1);
    expect(await first).toBe(1);
    now = 799;
    expect(await cache.get('a')).toBe(1);
    expect(calls).toHaveLength(1);
    now = 800;
    // Within the last 200 ms: served at once, and loaded again in the background, once.
    expect(await cache.get('a')).toBe(1);
    expect(await cache.get('a')).toBe(1);
    expect(calls).toHaveLength(2);
    calls[1]!.resolve(2);
    await settle();
    expect(await cache.get('a')).toBe(2);
    // The new value lives its own time to live from its load.
    now = 1500;
    expect(await cache.get('a')).toBe(2);
    expect(calls).toHaveLength(2);
  });

  it('keeps serving an entry whose refresh failed, refreshing again, until it expires; then waits for a load', async () => {
    let now = 0;
    const { calls, load } = controlledLoads<number>();
    const cache = new LoadingCache(load, { ttlMs: 1000, maxEntries: 10, refreshAheadMs: 200, now: () => now });
    const first = cache.get('a');
    calls[0]!.resolve(1);
    await first;
    now = 900;
    expect(await cache.get('a')).toBe(1);
    calls[1]!.reject(new Error('database_unavailable'));
    await settle();
    expect(await cache.get('a')).toBe(1);
    expect(calls).toHaveLength(3); // a refresh again: the failed one is not under way any more
    now = 1000;
    // Expired: the request waits for the refresh under way rather than start another.
    const miss = cache.get('a');
    expect(calls).toHaveLength(3);
    calls[2]!.resolve(3);
    expect(await miss).toBe(3);
  });

  it('counts an entry’s time to live from when its load began, however long the load took', async () => {
    let now = 0;
    const { calls, load } = controlledLoads<number>();
    const cache = new LoadingCache(load, { ttlMs: 1000, maxEntries: 10, now: () => now });
    const first = cache.get('a');
    now = 300; // a slow lookup
    calls[0]!.resolve(1);
    expect(await first).toBe(1);
    now = 999;
    expect(await cache.get('a')).toBe(1);
    expect(calls).toHaveLength(1);
    now = 1000;
    const again = cache.get('a');
    expect(calls).toHaveLength(2);
    calls[1]!.resolve(2);
    expect(await again).toBe(2);
  });

  it('forgets every entry and every load under way on clear(): what those loads read is not kept', async () => {
    const { calls, load } = controlledLoads<string>();
    const cache = new LoadingCache(load, { ttlMs: 1000, maxEntries: 10 });
    const a = cache.get('a');
    calls[0]!.resolve('A');
    await a;
    const b = cache.get('b');
    cache.clear();
    calls[1]!.resolve('B');
    expect(await b).toBe('B');
    expect(cache.loads).toBe(0);
    const [a2, b2] = [cache.get('a'), cache.get('b')];
    expect(calls.map((c) => c.key)).toEqual(['a', 'b', 'a', 'b']);
    calls[2]!.resolve('A2');
    calls[3]!.resolve('B2');
    expect([await a2, await b2]).toEqual(['A2', 'B2']);
  });

  it('turns a load that throws before it returns a promise into a rejection', async () => {
    const cache = new LoadingCache<string, string>(
      () => {
        throw new Error('bad key');
      },
      { ttlMs: 1000, maxEntries: 10 },
    );
    await expect(cache.get('a')).rejects.toThrow('bad key');
    expect(cache.loads).toBe(0);
  });
});
