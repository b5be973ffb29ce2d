import { AppError, toError } from '../resilience/errors.js';
import { remainingMs, withoutDeadline } from '../resilience/deadline.js';

/**
 * Group commit: writes that arrive together are written together — one statement and one commit for
 * a batch — and each caller is answered only once its own row is durable.
 *
 * How a batch forms: a write waits until the end of the current event-loop turn (or `maxWaitMs`, when
 * set), so everything parsed in that turn joins it; while `maxConcurrent` batches are already being
 * written (or, with `overlapAfterMs`, while any batch in flight is younger than that), new writes
 * queue and form the next batch when one finishes. Under light load a write goes
 * alone and at once; under heavy load batches grow up to `maxBatch`, and the cost of a round trip and
 * a commit is shared by all of them. That is where the hot path's CPU goes otherwise: a socket write
 * per statement, per answer, per commit.
 *
 * Order: writes with the same key (one handover) are never in two batches being written at once, so
 * for one key the batch order is the arrival order, and a later batch sees what an earlier one wrote.
 *
 * Every wait is bounded: the queue holds at most `maxQueued` writes (more are refused at once with
 * `overloaded_queue_wait`), and a write whose request deadline passes while it queues is answered
 * `deadline_exceeded` without being written.
 *
 * Failure: when the batch's statement fails, every caller in it gets that error (its true cause, as
 * the store named it); nothing of the batch was written, as it was one statement.
 */
export interface GroupCommitOptions {
  /** Most writes in one batch. */
  maxBatch: number;
  /** 0: a batch closes at the end of the event-loop turn; more: it stays open this long for company. */
  maxWaitMs: number;
  /** Batches written at the same time (each holds a database connection while it runs). */
  maxConcurrent: number;
  /** Most writes waiting for a batch; beyond it a write is refused at once. */
  maxQueued: number;
  /**
   * 0 (or unset): up to `maxConcurrent` batches are written at once whenever writes wait. More: a batch
   * starts beside others only once every batch in flight has run this long. One at a time while the
   * store keeps up: what waits forms one larger batch, and the database spends less per write than on
   * several smaller ones side by side; more at once when a batch is held up (a row lock held elsewhere,
   * a slow commit), so the others do not wait for it.
   */
  overlapAfterMs?: number;
  /**
   * Told of each batch once it is written or has failed: how many writes it held and how long its
   * write took (for metrics: what the accept path's latency is made of).
   */
  onBatch?: (writes: number, seconds: number, failed: boolean) => void;
}

/** What a batch write answers for each of its items, in order: a result, or that item's own error. */
export type ItemOutcome<R> = { ok: true; value: R } | { ok: false; error: Error };

interface Waiting<I, R> {
  item: I;
  key: string;
  /** `performance.now()` after which the caller has been answered; Infinity outside a request. */
  deadline: number;
  resolve(value: R): void;
  reject(error: Error): void;
}

export class GroupCommit<I, R> {
  private queue: Array<Waiting<I, R>> = [];
  private readonly busyKeys = new Set<string>();
  private writing = 0;
  /** Batches in flight for less than `overlapAfterMs`: while any is, no other starts. */
  private young = 0;
  private scheduled = false;
  /** Batches started so far (tests watch a batch begin; metrics are told of each one ended, `onBatch`). */
  readonly stats = { batches: 0 };

  constructor(
    private readonly options: GroupCommitOptions,
    private readonly keyOf: (item: I) => string,
    private readonly write: (items: I[]) => Promise<Array<ItemOutcome<R>>>,
  ) {}

  /** Writes waiting for a batch. */
  get queued(): number {
    return this.queue.length;
  }

  submit(item: I): Promise<R> {
    if (this.queue.length >= this.options.maxQueued) {
      return Promise.reject(
        new AppError('overloaded_queue_wait', {
          message: `${this.queue.length} writes are already waiting to be committed (bound ${this.options.maxQueued}): the database commits slower than they arrive; retry after Retry-After.`,
          details: { cause: 'commit_queue' },
        }),
      );
    }
    const left = remainingMs();
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, key: this.keyOf(item), deadline: left === undefined ? Infinity : performance.now() + left, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.queue.length >= this.options.maxBatch) {
      this.flush();
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      this.flush();
    };
    if (this.options.maxWaitMs > 0) setTimeout(run, this.options.maxWaitMs);
    else setImmediate(run);
  }

  private flush(): void {
    while (this.writing < this.options.maxConcurrent && this.young === 0 && this.queue.length > 0) {
      const batch = this.take();
      if (batch.length === 0) return;
      this.writing++;
      void this.run(batch);
    }
  }

  /** Up to maxBatch waiting writes whose key is not being written now, in arrival order. */
  private take(): Array<Waiting<I, R>> {
    const batch: Array<Waiting<I, R>> = [];
    const rest: Array<Waiting<I, R>> = [];
    // Keys held back in this pass: a later write of a held-back key must not overtake it.
    const heldBack = new Set<string>();
    const now = performance.now();
    for (const w of this.queue) {
      if (w.deadline <= now) {
        w.reject(new AppError('deadline_exceeded', { message: 'The request ran past its deadline while its write waited for a batch; nothing was written.' }));
        continue;
      }
      if (batch.length < this.options.maxBatch && !this.busyKeys.has(w.key) && !heldBack.has(w.key)) batch.push(w);
      else {
        heldBack.add(w.key);
        rest.push(w);
      }
    }
    this.queue = rest;
    return batch;
  }

  private async run(batch: Array<Waiting<I, R>>): Promise<void> {
    const keys = new Set(batch.map((w) => w.key));
    for (const key of keys) this.busyKeys.add(key);
    this.stats.batches++;
    const overlapAfterMs = this.options.overlapAfterMs ?? 0;
    let aging: NodeJS.Timeout | null = null;
    if (overlapAfterMs > 0) {
      this.young++;
      aging = setTimeout(() => {
        aging = null;
        this.young--;
        if (this.queue.length > 0) this.flush();
      }, overlapAfterMs);
    }
    const startedAt = performance.now();
    let failed = false;
    try {
      // The batch runs in the async context of the caller that started it; each caller's own deadline
      // was checked when the batch was taken, and the write is bounded by the store's timeouts.
      const outcomes = await withoutDeadline(() => this.write(batch.map((w) => w.item)));
      batch.forEach((w, i) => {
        const outcome = outcomes[i];
        if (!outcome) w.reject(new Error(`group commit: the batch write answered ${outcomes.length} outcomes for ${batch.length} items`));
        else if (outcome.ok) w.resolve(outcome.value);
        else w.reject(outcome.error);
      });
    } catch (err) {
      failed = true;
      const error = toError(err);
      for (const w of batch) w.reject(error);
    } finally {
      const seconds = (performance.now() - startedAt) / 1000;
      if (aging) {
        clearTimeout(aging);
        this.young--;
      }
      for (const key of keys) this.busyKeys.delete(key);
      this.writing--;
      if (this.queue.length > 0) this.flush();
      // Last, and never in the way of the bookkeeping above: a listener that throws is its own fault.
      try {
        this.options.onBatch?.(batch.length, seconds, failed);
      } catch {
        // Ignored: metrics only.
      }
    }
  }
}
