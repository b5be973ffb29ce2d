import { describe, expect, it } from 'vitest';
import { retryDelayMs } from '../../src/delivery/backoff.js';
import { newId } from '../../src/store/ids.js';

describe('retry backoff', () => {
  it('doubles per attempt between half and all of the ceiling, capped', () => {
    expect(retryDelayMs(1, 500, 60_000, undefined, () => 0)).toBe(250);
    expect(retryDelayMs(1, 500, 60_000, undefined, () => 1)).toBe(500);
    expect(retryDelayMs(4, 500, 60_000, undefined, () => 0)).toBe(2000);
    expect(retryDelayMs(30, 500, 60_000, undefined, () => 1)).toBe(60_000);
  });

  it('honours Retry-After up to the cap', () => {
    expect(retryDelayMs(1, 500, 60_000, 5000, () => 0)).toBe(5000);
    expect(retryDelayMs(1, 500, 60_000, 3_600_000, () => 0)).toBe(60_000);
  });
});

describe('ids', () => {
  it('carry their type and sort by creation time', () => {
    const a = newId('handover', 1_700_000_000_000);
    const b = newId('handover', 1_700_000_000_001);
    expect(a).toMatch(/^ho_[0-9a-hjkmnp-tv-z]{26}$/);
    expect(a < b).toBe(true);
    expect(newId('message')).toMatch(/^msg_/);
    expect(new Set(Array.from({ length: 1000 }, () => newId('event'))).size).toBe(1000);
  });
});
