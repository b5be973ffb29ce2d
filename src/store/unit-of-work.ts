import type { Db, Queryable } from './db.js';
import { isRetryableConflict } from './pg-errors.js';

/**
 * A transaction plus the signals to send once it has committed. Wake-ups published before a commit
 * would let a reader look before the data is there, so they wait here until the commit succeeded.
 */
export interface UnitOfWork {
  q: Queryable;
  afterCommit(effect: () => void): void;
}

/** Tries of a transaction that PostgreSQL rolled back as a deadlock or a serialisation failure. */
const CONFLICT_TRIES = 3;

/**
 * Runs `fn` in a transaction, then its after-commit effects. A transaction PostgreSQL rolled back as a
 * deadlock or a serialisation failure did nothing, and runs again (up to three tries, after a short
 * random pause): two use cases that lock the same rows in different orders — a handover ended by the bot
 * while its completions are recorded, say — must not answer 500. `fn` must therefore do nothing outside
 * the database before it returns, which every use case keeps to (calls to the outside happen after the
 * commit, or are the outbox's).
 */
export async function inTransaction<T>(db: Db, fn: (uow: UnitOfWork) => Promise<T>, onEffectError?: (err: unknown) => void): Promise<T> {
  let effects: Array<() => void> = [];
  let result: T;
  for (let attempt = 1; ; attempt++) {
    effects = [];
    try {
      result = await db.transaction((q) => fn({ q, afterCommit: (effect) => effects.push(effect) }));
      break;
    } catch (err) {
      if (!isRetryableConflict(err) || attempt >= CONFLICT_TRIES) throw err;
      await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 10 * attempt));
    }
  }
  for (const effect of effects) {
    try {
      effect();
    } catch (err) {
      onEffectError?.(err);
    }
  }
  return result;
}
