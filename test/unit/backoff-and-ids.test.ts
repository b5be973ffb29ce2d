import { describe, expect, it } from 'vitest';
import { retryDelayMs } from '../../src/delivery/backoff.js';
import { idPrefixes, lowestIdAt, newId, timeOfId, type IdKind } from '../../src/store/ids.js';

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

  it('give their time back (timeOfId), and the lowest id of a time bounds those made then or later (lowestIdAt)', () => {
    for (const at of [0, 1, 1_700_000_000_000, 2 ** 48 - 1]) expect(timeOfId(newId('event', at))).toBe(at);
    expect(timeOfId('evt_nope')).toBeNull();
    expect(timeOfId('evt_000000000u0000000000000000')).toBeNull();
    const bound = lowestIdAt('event', 1_700_000_000_000);
    expect(bound <= newId('event', 1_700_000_000_000)).toBe(true);
    expect(bound > newId('event', 1_699_999_999_999)).toBe(true);
  });

  it('hold their time in the first 10 characters, most significant first, and 80 random bits after', () => {
    const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
    const timeOf = (id: string) => [...id.split('_')[1]!.slice(0, 10)].reduce((t, c) => t * 32 + alphabet.indexOf(c), 0);
    for (const at of [0, 1, 31, 32, 1_700_000_000_000, 2 ** 48 - 1]) expect(timeOf(newId('note', at))).toBe(at);
    expect(newId('note', 0).slice(0, 15)).toBe('note_0000000000');
    // Every kind's prefix, the same time, and 26 characters after it.
    for (const [kind, prefix] of Object.entries(idPrefixes))
      expect(newId(kind as IdKind, 1_700_000_000_000)).toMatch(new RegExp(`^${prefix}_01hf7yat00[0-9a-hjkmnp-tv-z]{16}$`));
    // Ids made in one millisecond, far more than one fill of the random pool: each of its own.
    expect(new Set(Array.from({ length: 5000 }, () => newId('event', 1_700_000_000_000))).size).toBe(5000);
    // The random part takes every character of the alphabet over many ids, at every position.
    const randoms = Array.from({ length: 4000 }, () => newId('event').slice(14));
    for (let position = 0; position < 16; position++) expect(new Set(randoms.map((r) => r[position])).size).toBe(32);
  });
});
