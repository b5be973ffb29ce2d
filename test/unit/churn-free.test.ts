import { describe, expect, it } from 'vitest';
import { ArrayMap, ArraySet, AwaitedAnswers } from '../../src/resilience/churn-free.js';
import { HeldSlots } from '../../src/resilience/held-slots.js';

describe('calls awaiting an answer from another thread', () => {
  it('gives each call back once, by its id, in whatever order the answers come', () => {
    const awaited = new AwaitedAnswers<string>();
    for (const id of [1, 2, 3, 4]) awaited.add(id, `call ${id}`);
    expect(awaited.take(3)).toBe('call 3');
    expect(awaited.take(3)).toBeUndefined();
    expect(awaited.take(9)).toBeUndefined();
    expect(awaited.take(1)).toBe('call 1');
    awaited.add(5, 'call 5');
    expect(awaited.takeAll()).toEqual(['call 2', 'call 4', 'call 5']);
    expect(awaited.takeAll()).toEqual([]);
    expect(awaited.take(2)).toBeUndefined();
  });
});

describe('a set and a map kept in arrays', () => {
  it('hold what was added until it is deleted, each once, in any order', () => {
    const set = new ArraySet<object>();
    const [a, b, c] = [{}, {}, {}];
    set.add(a);
    set.add(b);
    set.add(c);
    expect(set.delete(a)).toBe(true);
    expect(set.delete(a)).toBe(false);
    expect(new Set(set)).toEqual(new Set([b, c]));
    expect(set.delete(c)).toBe(true);
    expect([...set]).toEqual([b]);
    expect(set.size).toBe(1);
    // Deleting while going through it, as a Set allows, misses none.
    set.add(a);
    set.add(c);
    const seen: object[] = [];
    for (const item of set) {
      seen.push(item);
      set.delete(item);
    }
    expect(new Set(seen)).toEqual(new Set([a, b, c]));
    expect(set.size).toBe(0);

    const map = new ArrayMap<number>();
    map.set('x', 1);
    map.set('y', 2);
    map.set('z', 3);
    map.set('y', 20);
    expect(map.get('y')).toBe(20);
    expect(map.delete('x')).toBe(true);
    expect(map.delete('x')).toBe(false);
    expect(map.get('x')).toBeUndefined();
    expect(map.get('z')).toBe(3);
    expect(map.size).toBe(2);
  });
});

describe('the admission slots held', () => {
  it('counts each slot until it is given back, once, whatever the order', () => {
    const held = new HeldSlots();
    let clientGone = false;
    const slots = [held.take(undefined, false), held.take(() => !clientGone, false), held.take(undefined, false)];
    clientGone = true;
    // Gone from the first look on; lost once the grace (a second) has passed.
    expect(held.orphaned(0)).toBe(0);
    expect(held.orphaned(5_000)).toBe(1);
    // The gone client's slot is given back (twice: the second changes nothing), then the others.
    held.give(slots[1]!, false);
    held.give(slots[1]!, false);
    expect(held.orphaned(10_000)).toBe(0);
    held.give(slots[0]!, false);
    const again = held.take(() => false, false);
    held.orphaned(20_000);
    expect(held.orphaned(21_000)).toBe(1);
    held.give(slots[2]!, false);
    held.give(again, false);
    expect(held.orphaned(30_000)).toBe(0);
  });
});
