import { describe, expect, it } from 'vitest';
import { TtlCache } from '../../src/store/ttl-cache.js';

describe('TtlCache', () => {
  it('forgets entries after their time to live, and the oldest when full', () => {
    let now = 0;
    const cache = new TtlCache<string, number | null>(100, 2, () => now);
    cache.set('a', 1);
    cache.set('b', null);
    expect(cache.get('a')).toBe(1);
    expect(cache.get('b')).toBeNull();
    expect(cache.has('b')).toBe(true);
    cache.set('c', 3);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('c')).toBe(3);
    now = 100;
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('c')).toBeUndefined();
    cache.set('c', 4);
    cache.delete('c');
    expect(cache.has('c')).toBe(false);
  });
});
