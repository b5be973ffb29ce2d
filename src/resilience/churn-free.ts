/**
 * Collections for what is added and taken out once per request or per message: kept in arrays whose
 * entries are taken out in place, not in a Map or a Set.
 *
 * A Map or Set that takes and drops an entry per request replaces its table every few hundred
 * requests, and V8 keeps each table it replaced (for iterators) with the entries it held then. The
 * young-generation collector counts such a dead table as a root until the next full collection: each
 * entry, and everything it reached (a request's callbacks, and through them the request), survived
 * collections and was promoted to the old generation. On the HTTP thread that was about 5 KB a
 * message, most of what it promoted (docs/performance.md, "Garbage"). An array is not replaced while
 * its size stays put; an entry taken out is overwritten or cut off.
 *
 * Lookups search the array: these hold what is in flight at once (tens, a few hundred at most).
 */

/** Calls sent to another thread and not yet answered, by the id each was sent with; searched oldest first, as answers mostly come in order. */
export class AwaitedAnswers<T> {
  private readonly ids: number[] = [];
  private readonly values: T[] = [];

  add(id: number, value: T): void {
    this.ids.push(id);
    this.values.push(value);
  }

  /** The call sent with this id, taken out; undefined when it was answered or taken already. */
  take(id: number): T | undefined {
    const index = this.ids.indexOf(id);
    if (index < 0) return undefined;
    this.ids.splice(index, 1);
    return this.values.splice(index, 1)[0];
  }

  /** How many calls are waiting. */
  get size(): number {
    return this.ids.length;
  }

  /** Every call still waiting, taken out (oldest first). */
  takeAll(): T[] {
    this.ids.length = 0;
    return this.values.splice(0, this.values.length);
  }
}

/** A set of distinct objects, in no particular order. */
export class ArraySet<T> implements Iterable<T> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  /** Adds `item`, which must not be in the set already. */
  add(item: T): void {
    this.items.push(item);
  }

  delete(item: T): boolean {
    const index = this.items.indexOf(item);
    if (index < 0) return false;
    const last = this.items.pop()!;
    if (index < this.items.length) this.items[index] = last;
    return true;
  }

  /** Over the members when called, as a Set's would go on: a delete meanwhile moves the last into its place. */
  [Symbol.iterator](): Iterator<T> {
    return [...this.items][Symbol.iterator]();
  }
}

/** Values by a string key, in no particular order. */
export class ArrayMap<V> {
  private readonly keys: string[] = [];
  private readonly entries: V[] = [];

  get size(): number {
    return this.keys.length;
  }

  get(key: string): V | undefined {
    const index = this.keys.indexOf(key);
    return index < 0 ? undefined : this.entries[index];
  }

  set(key: string, value: V): void {
    const index = this.keys.indexOf(key);
    if (index >= 0) this.entries[index] = value;
    else {
      this.keys.push(key);
      this.entries.push(value);
    }
  }

  delete(key: string): boolean {
    const index = this.keys.indexOf(key);
    if (index < 0) return false;
    const lastKey = this.keys.pop()!;
    const lastValue = this.entries.pop()!;
    if (index < this.keys.length) {
      this.keys[index] = lastKey;
      this.entries[index] = lastValue;
    }
    return true;
  }
}
