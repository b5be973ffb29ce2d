import type { Db, QueryResult, Queryable, Sql } from './db.js';
import { AppError } from '../resilience/errors.js';
import { AwaitedAnswers } from '../resilience/churn-free.js';
import { deserializeError, serializeError, type SerializedError } from '../resilience/errors-across-threads.js';

/**
 * A database used from another thread through messages: the embedded store has one connection, in its
 * own thread. `relayedDb` (in the delivery thread) sends each statement, and each transaction's begin,
 * statements and end, as messages. They go on the delivery thread's own session of the database's
 * thread (pglite-sessions.ts serves them there), or, where the database runs in the HTTP thread itself
 * (tests that make many short-lived copies), to the HTTP thread, where `serveRelayedDb` runs them on its
 * `Db`, so the one connection keeps its one queue and its bounds.
 *
 * Bounds: each call gets no answer after `callTimeoutMs` (`database_timeout`); a transaction opened for
 * the other thread is rolled back after `transactionMs` whatever it was doing (it holds the only
 * connection, and the HTTP thread's own statements wait behind it); when the other thread goes away,
 * its open transactions are rolled back.
 */
export type DbCall =
  | { id: number; op: 'query'; sql: Sql; params?: readonly unknown[]; tx?: number }
  | { id: number; op: 'begin' }
  | { id: number; op: 'commit' | 'rollback'; tx: number };

export type DbAnswer = { id: number; ok: true; result?: QueryResult<unknown>; tx?: number } | { id: number; ok: false; error: SerializedError };

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/**
 * The other thread's side: a `Db` whose every call is a message to the thread that owns the database.
 * `lose` is for when that thread can no longer answer (its channel closed): every call waiting fails with
 * the error given, and every later one at once.
 */
export function relayedDb(
  send: (call: DbCall) => void,
  options: { callTimeoutMs: number },
): { db: Db; answer(answer: DbAnswer): void; lose(error: Error): void } {
  const pending = new AwaitedAnswers<{ resolve: (answer: DbAnswer & { ok: true }) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 1;
  let lost: Error | null = null;

  const call = (request: WithoutId<DbCall>): Promise<DbAnswer & { ok: true }> => {
    if (lost) return Promise.reject(lost);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.take(id);
        reject(new AppError('database_timeout', { message: `The embedded database did not answer within ${options.callTimeoutMs} ms.` }));
      }, options.callTimeoutMs);
      pending.add(id, { resolve, reject, timer });
      send({ ...request, id } as DbCall);
    });
  };
  const query = async <T>(sql: Sql, params: readonly unknown[] | undefined, tx?: number): Promise<QueryResult<T>> => {
    const answer = await call({ op: 'query', sql, ...(params !== undefined ? { params } : {}), ...(tx !== undefined ? { tx } : {}) });
    return answer.result as QueryResult<T>;
  };

  const db: Db = {
    kind: 'pglite',
    query: <T>(sql: Sql, params?: readonly unknown[]) => query<T>(sql, params),
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const { tx } = await call({ op: 'begin' });
      const q: Queryable = { query: <R>(sql: Sql, params?: readonly unknown[]) => query<R>(sql, params, tx) };
      let value: T;
      try {
        value = await fn(q);
      } catch (err) {
        await call({ op: 'rollback', tx: tx! }).catch(() => {});
        throw err;
      }
      await call({ op: 'commit', tx: tx! });
      return value;
    },
    async ping() {
      await query('select 1', undefined);
    },
    poolStats: () => ({ total: 1, idle: pending.size === 0 ? 1 : 0, waiting: pending.size }),
    async close() {},
  };

  return {
    db,
    lose(error) {
      if (lost) return;
      lost = error;
      for (const waiting of pending.takeAll()) {
        clearTimeout(waiting.timer);
        waiting.reject(error);
      }
    },
    answer(answer) {
      const call = pending.take(answer.id);
      if (!call) {
        // A transaction opened after its caller stopped waiting: nobody will end it, and it holds the
        // one connection until its bound; it is given back now.
        if (answer.ok && answer.tx !== undefined) send({ id: nextId++, op: 'rollback', tx: answer.tx });
        return;
      }
      clearTimeout(call.timer);
      if (answer.ok) call.resolve(answer);
      else call.reject(deserializeError(answer.error));
    },
  };
}

/** Ends a relayed transaction by rolling it back (not an error of the caller's). */
const ROLL_BACK = Symbol('roll back');

interface OpenTransaction {
  tx: Queryable;
  /** true: commit; false: roll back. */
  end(commit: boolean): void;
  timer: NodeJS.Timeout;
}

/** The owning thread's side: runs what `relayedDb` sends on `db` and answers each call. */
export function serveRelayedDb(db: Db, reply: (answer: DbAnswer) => void, options: { transactionMs: number }): { call(call: DbCall): void; close(): void } {
  const open = new Map<number, OpenTransaction>();
  let nextTx = 1;
  let closed = false;
  const fail = (id: number, err: unknown) => reply({ id, ok: false, error: serializeError(err) });
  const closedError = () => new AppError('database_unavailable', { message: 'The database relay has closed.' });

  const begin = (id: number) => {
    const txId = nextTx++;
    let opened = false;
    db.transaction(
      (tx) =>
        new Promise<void>((resolve, reject) => {
          if (closed) return reject(ROLL_BACK);
          const timer = setTimeout(() => {
            open.delete(txId);
            reject(ROLL_BACK);
          }, options.transactionMs);
          open.set(txId, { tx, timer, end: (commit) => (commit ? resolve() : reject(ROLL_BACK)) });
          opened = true;
          reply({ id, ok: true, tx: txId });
        }),
    ).then(
      () => finish(txId, null),
      // Not opened (the connection's wait ran out, the database is gone): the begin itself fails.
      (err: unknown) => (opened ? finish(txId, err === ROLL_BACK ? null : err) : fail(id, err === ROLL_BACK ? closedError() : err)),
    );
  };
  // The end of a transaction: its end call (if it was asked for) learns how it went.
  const endCalls = new Map<number, number>();
  const finish = (txId: number, err: unknown) => {
    const endCall = endCalls.get(txId);
    endCalls.delete(txId);
    open.delete(txId);
    if (endCall === undefined) return;
    if (err) fail(endCall, err);
    else reply({ id: endCall, ok: true });
  };

  return {
    call(c) {
      if (closed) return fail(c.id, closedError());
      if (c.op === 'begin') return begin(c.id);
      if (c.op === 'query') {
        const run = c.tx === undefined ? db : open.get(c.tx)?.tx;
        if (!run) return fail(c.id, new AppError('database_timeout', { message: `The transaction ended after ${options.transactionMs} ms.` }));
        run.query(c.sql, c.params).then(
          (result) => reply({ id: c.id, ok: true, result }),
          (err: unknown) => fail(c.id, err),
        );
        return;
      }
      const transaction = open.get(c.tx);
      if (!transaction) {
        // Already rolled back (its time ran out): a rollback asked for is done; a commit is not.
        if (c.op === 'rollback') return reply({ id: c.id, ok: true });
        return fail(c.id, new AppError('database_timeout', { message: `The transaction ended after ${options.transactionMs} ms and was rolled back.` }));
      }
      clearTimeout(transaction.timer);
      endCalls.set(c.tx, c.id);
      transaction.end(c.op === 'commit');
    },
    close() {
      closed = true;
      for (const transaction of open.values()) {
        clearTimeout(transaction.timer);
        transaction.end(false);
      }
    },
  };
}
