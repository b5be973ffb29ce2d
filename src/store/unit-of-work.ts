import type { Db, Queryable } from './db.js';

/**
 * A transaction plus the signals to send once it has committed. Wake-ups published before a commit
 * would let a reader look before the data is there, so they wait here until the commit succeeded.
 */
export interface UnitOfWork {
  q: Queryable;
  afterCommit(effect: () => void): void;
}

export async function inTransaction<T>(db: Db, fn: (uow: UnitOfWork) => Promise<T>, onEffectError?: (err: unknown) => void): Promise<T> {
  const effects: Array<() => void> = [];
  const result = await db.transaction((q) => fn({ q, afterCommit: (effect) => effects.push(effect) }));
  for (const effect of effects) {
    try {
      effect();
    } catch (err) {
      onEffectError?.(err);
    }
  }
  return result;
}
