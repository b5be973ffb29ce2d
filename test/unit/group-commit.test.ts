import { describe, expect, it, vi } from 'vitest';
import { GroupCommit, type ItemOutcome } from '../../src/store/group-commit.js';
import { AppError } from '../../src/resilience/errors.js';
import { runWithDeadline } from '../../src/resilience/deadline.js';

/** A write that records each batch and answers when told to. */
function recordingWrite() {
  const batches: string[][] = [];
  const gates: Array<() => void> = [];
  let hold = false;
  return {
    batches,
    holdNext() {
      hold = true;
    },
    releaseAll() {
      for (const open of gates.splice(0)) open();
    },
    write: async (items: string[]): Promise<Array<ItemOutcome<string>>> => {
      batches.push(items);
      if (hold) await new Promise<void>((resolve) => gates.push(resolve));
      return items.map((item) => (item.endsWith('!') ? { ok: false, error: new Error(`refused ${item}`) } : { ok: true, value: `stored ${item}` }));
    },
  };
}

const keyOf = (item: string) => item.split(':')[0]!;

describe('group commit', () => {
  it('writes what arrives in one turn as one batch, and answers each caller with its own result', async () => {
    const w = recordingWrite();
    const gc = new GroupCommit({ maxBatch: 100, maxWaitMs: 0, maxConcurrent: 1, maxQueued: 1000 }, keyOf, w.write);
    const answers = await Promise.allSettled(['a:1', 'b:1', 'c:1!', 'a:2'].map((i) => gc.submit(i)));
    expect(w.batches).toEqual([['a:1', 'b:1', 'c:1!', 'a:2']]);
    expect(answers.map((a) => (a.status === 'fulfilled' ? a.value : (a.reason as Error).message))).toEqual([
      'stored a:1',
      'stored b:1',
      'refused c:1!',
      'stored a:2',
    ]);
  });

  it('queues behind a batch in flight and forms the next batch from what waited, never one key in two batches at once', async () => {
    const w = recordingWrite();
    const gc = new GroupCommit({ maxBatch: 100, maxWaitMs: 0, maxConcurrent: 2, maxQueued: 1000 }, keyOf, w.write);
    w.holdNext();
    const first = gc.submit('a:1');
    await new Promise((r) => setImmediate(r));
    expect(w.batches).toEqual([['a:1']]);
    // a:2 must wait for a:1's batch (same key); b:1 may go in a second batch at once.
    const rest = ['a:2', 'b:1', 'a:3'].map((i) => gc.submit(i));
    await new Promise((r) => setImmediate(r));
    expect(w.batches).toEqual([['a:1'], ['b:1']]);
    w.releaseAll();
    await first;
    await new Promise((r) => setImmediate(r));
    w.releaseAll();
    await Promise.all(rest);
    // a's writes in arrival order, in later batches.
    expect(w.batches.flat().filter((i) => i.startsWith('a:'))).toEqual(['a:1', 'a:2', 'a:3']);
    expect(w.batches[2]).toEqual(['a:2', 'a:3']);
  });

  it('with overlapAfterMs, writes one batch at a time while each finishes in time: what waited forms the next one', async () => {
    const w = recordingWrite();
    const gc = new GroupCommit({ maxBatch: 100, maxWaitMs: 0, maxConcurrent: 4, maxQueued: 1000, overlapAfterMs: 60_000 }, keyOf, w.write);
    w.holdNext();
    const first = gc.submit('a:1');
    await new Promise((r) => setImmediate(r));
    const rest = ['b:1', 'c:1', 'd:1'].map((i) => gc.submit(i));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    // Room for three more batches, but the one in flight is young: nothing starts beside it.
    expect(w.batches).toEqual([['a:1']]);
    w.releaseAll();
    await first;
    await new Promise((r) => setImmediate(r));
    expect(w.batches).toEqual([['a:1'], ['b:1', 'c:1', 'd:1']]);
    w.releaseAll();
    expect(await Promise.all(rest)).toEqual(['stored b:1', 'stored c:1', 'stored d:1']);
  });

  it('with overlapAfterMs, starts another batch beside one that has run that long, never with a key in flight', async () => {
    const w = recordingWrite();
    const gc = new GroupCommit({ maxBatch: 100, maxWaitMs: 0, maxConcurrent: 4, maxQueued: 1000, overlapAfterMs: 1000 }, keyOf, w.write);
    w.holdNext();
    const first = gc.submit('a:1');
    await new Promise((r) => setImmediate(r));
    const rest = ['b:1', 'a:2', 'c:1'].map((i) => gc.submit(i));
    await new Promise((r) => setImmediate(r));
    expect(w.batches).toEqual([['a:1']]);
    // A batch held up (here: never answered until released) no longer holds the others back once it is
    // old enough; a:2 still waits for a:1.
    await vi.waitFor(() => expect(w.batches).toHaveLength(2), { timeout: 5000 });
    expect(w.batches[1]).toEqual(['b:1', 'c:1']);
    w.releaseAll();
    await first;
    await vi.waitFor(() => expect(w.batches).toHaveLength(3), { timeout: 5000 });
    w.releaseAll();
    expect(await Promise.all(rest)).toEqual(['stored b:1', 'stored a:2', 'stored c:1']);
    expect(w.batches.flat().filter((i) => i.startsWith('a:'))).toEqual(['a:1', 'a:2']);
  });

  it('tells each batch once, written or failed, with its writes and how long its write took', async () => {
    const told: Array<{ writes: number; seconds: number; failed: boolean }> = [];
    const onBatch = (writes: number, seconds: number, failed: boolean) => told.push({ writes, seconds, failed });
    const w = recordingWrite();
    const gc = new GroupCommit({ maxBatch: 100, maxWaitMs: 0, maxConcurrent: 1, maxQueued: 1000, onBatch }, keyOf, w.write);
    // An item refused on its own leaves its batch written.
    await Promise.allSettled(['a:1', 'b:1!', 'c:1'].map((i) => gc.submit(i)));
    let fail = true;
    const failing = new GroupCommit({ maxBatch: 100, maxWaitMs: 0, maxConcurrent: 1, maxQueued: 1000, onBatch }, keyOf, async (items: string[]) => {
      if (fail) throw new Error('database gone');
      return items.map((item) => ({ ok: true as const, value: item }));
    });
    await Promise.allSettled(['d:1', 'e:1'].map((i) => failing.submit(i)));
    fail = false;
    await failing.submit('f:1');
    expect(told.map(({ writes, failed }) => ({ writes, failed }))).toEqual([
      { writes: 3, failed: false },
      { writes: 2, failed: true },
      { writes: 1, failed: false },
    ]);
    for (const { seconds } of told) expect(seconds).toBeGreaterThanOrEqual(0);
  });

  it('keeps writing when whoever is told of a batch throws', async () => {
    const w = recordingWrite();
    const onBatch = () => {
      throw new Error('a broken listener');
    };
    const gc = new GroupCommit({ maxBatch: 100, maxWaitMs: 0, maxConcurrent: 1, maxQueued: 1000, onBatch }, keyOf, w.write);
    expect(await gc.submit('a:1')).toBe('stored a:1');
    // The same key again: it would wait for ever if the first batch had not been finished off.
    const stalled = new Promise((resolve) => setTimeout(() => resolve('still waiting after 5 s'), 5000).unref());
    expect(await Promise.race([gc.submit('a:2'), stalled])).toBe('stored a:2');
    expect(w.batches).toEqual([['a:1'], ['a:2']]);
  });

  it('caps a batch at maxBatch', async () => {
    const w = recordingWrite();
    const gc = new GroupCommit({ maxBatch: 3, maxWaitMs: 0, maxConcurrent: 1, maxQueued: 1000 }, keyOf, w.write);
    await Promise.all(Array.from({ length: 7 }, (_, i) => gc.submit(`k${i}:x`)));
    expect(w.batches.map((b) => b.length)).toEqual([3, 3, 1]);
  });

  it('fails every caller of a batch whose write fails, with that error', async () => {
    const cause = new AppError('database_unavailable', { message: 'the database went away' });
    const gc = new GroupCommit<string, string>({ maxBatch: 10, maxWaitMs: 0, maxConcurrent: 1, maxQueued: 10 }, keyOf, async () => {
      throw cause;
    });
    const answers = await Promise.allSettled(['a:1', 'b:1'].map((i) => gc.submit(i)));
    expect(answers.map((a) => (a.status === 'rejected' ? a.reason : a.value))).toEqual([cause, cause]);
  });

  it('refuses at once beyond its queue bound, and drops writes whose request deadline passed while queued', async () => {
    const w = recordingWrite();
    const gc = new GroupCommit({ maxBatch: 1, maxWaitMs: 0, maxConcurrent: 1, maxQueued: 2 }, keyOf, w.write);
    w.holdNext();
    const inFlight = gc.submit('a:1');
    await new Promise((r) => setImmediate(r));
    const late = runWithDeadline(1, () => gc.submit('b:1'));
    const waiting = gc.submit('c:1');
    const refused = await gc.submit('d:1').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AppError);
    expect((refused as AppError).code).toBe('overloaded_queue_wait');
    await new Promise((r) => setTimeout(r, 5));
    w.releaseAll();
    await inFlight;
    const lateAnswer = await late.catch((e: unknown) => e);
    expect((lateAnswer as AppError).code).toBe('deadline_exceeded');
    await new Promise((r) => setImmediate(r));
    w.releaseAll();
    expect(await waiting).toBe('stored c:1');
    expect(w.batches.flat()).not.toContain('b:1');
  });
});
