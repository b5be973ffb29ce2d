import { describe, expect, it } from 'vitest';
import { TokenBuckets } from '../../src/resilience/token-bucket.js';

describe('TokenBuckets', () => {
  it('allows a burst, then the rate, per key, and bounds the keys it keeps', () => {
    let now = 0;
    const buckets = new TokenBuckets(2, 3, 2, () => now);
    expect([1, 2, 3, 4].map(() => buckets.take('a'))).toEqual([true, true, true, false]);
    expect(buckets.retryAfterSeconds('a')).toBe(1);
    expect(buckets.take('b')).toBe(true);
    now = 500; // half a second: one token back at 2 per second
    expect(buckets.take('a')).toBe(true);
    expect(buckets.take('a')).toBe(false);
    // A third key pushes out the least recently used one ('b'), which then starts full again.
    expect(buckets.take('c')).toBe(true);
    expect([1, 2, 3].map(() => buckets.take('b'))).toEqual([true, true, true]);
  });
});
