import { AsyncLocalStorage } from 'node:async_hooks';
import { AppError } from './errors.js';

/**
 * The deadline of the request a piece of work is done for, carried through the async context so the
 * store can honour it without every function passing it along: work not started before the deadline
 * is not started at all, and work that is started gets only the time that is left (pool checkout and,
 * in a transaction, the server-side statement timeout). Work outside a request (delivery, timers) has
 * no deadline here; it is bounded by its own timeouts.
 */
interface DeadlineScope {
  /** `performance.now()` value after which the caller has been answered `deadline_exceeded`. */
  at: number;
  budgetMs: number;
}

const scope = new AsyncLocalStorage<DeadlineScope>();

/** Runs `fn` (and everything it starts) under a deadline `budgetMs` from now. */
export function runWithDeadline<T>(budgetMs: number, fn: () => T): T {
  return scope.run({ at: performance.now() + budgetMs, budgetMs }, fn);
}

/**
 * Runs `fn` outside any request deadline: for what must happen even when the request ran late (its
 * audit entry, for one).
 */
export function withoutDeadline<T>(fn: () => T): T {
  // Already outside every deadline (a timer, the delivery thread): run as it is. Where no request ever
  // set one, as in the delivery thread, the storage is then never enabled, and on Node 20 an enabled
  // storage runs a hook at every promise and async resource the thread makes from then on.
  if (scope.getStore() === undefined) return fn();
  // Run with no store rather than `exit()`: on Node 20, `exit()` takes the storage's async hook down and
  // puts it back on every call (about 0.7 % of the HTTP thread's samples, once per accept batch).
  return scope.run(undefined as unknown as DeadlineScope, fn);
}

/** Milliseconds left before the current request's deadline; `undefined` outside a request. */
export function remainingMs(): number | undefined {
  const current = scope.getStore();
  return current === undefined ? undefined : current.at - performance.now();
}

/** Throws `deadline_exceeded` when the current request has no time left for more work. */
export function assertTimeLeft(what: string): void {
  const current = scope.getStore();
  if (current === undefined) return;
  const left = current.at - performance.now();
  if (left > 0) return;
  throw new AppError('deadline_exceeded', {
    message: `The request ran past its ${current.budgetMs} ms deadline before ${what}; the work was not started.`,
  });
}
