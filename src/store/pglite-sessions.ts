import type { QueryResult, Sql } from './db.js';
import { AppError } from '../resilience/errors.js';
import { serializeError } from '../resilience/errors-across-threads.js';
import { translatePgError } from './pg-db.js';
import { isInFailedTransaction, TX_MISUSE } from './pg-errors.js';
import type { DbAnswer, DbCall } from './relayed-db.js';

/**
 * The embedded database's one connection, shared by several sessions in the database's own thread: the
 * HTTP thread's, and the delivery thread's over a channel of its own (so that the delivery worker's
 * statements — the accept batches it writes, its claims and completions — do not pass through the
 * thread that answers HTTP).
 *
 * One statement runs at a time. A transaction holds the connection from its BEGIN to its COMMIT or
 * ROLLBACK: meanwhile only its own statements run, and everything else waits in the order it came, the
 * same session's other statements and transactions included (the delivery thread's lanes send side by
 * side). Otherwise statements run in the order they came, whichever session sent them.
 */
export interface Statements {
  query(sql: Sql, params?: readonly unknown[]): Promise<QueryResult<unknown>>;
}

/** One user of the connection (a thread). */
export class Session {
  constructor(readonly name: string) {}
}

/** What a task of the scheduler is. */
export interface TaskSpec<T> {
  session: Session;
  /**
   * Who may run it while the connection is held: a task runs when nobody holds the connection, or when
   * its key is the holder's (the statements of the transaction holding it, its COMMIT and ROLLBACK).
   */
  key: object;
  work: (connection: Statements) => Promise<T>;
  /** Told once `work` has run, before the next task starts (to hold or give back the connection). */
  after?: (ok: boolean) => void;
  /** Ahead of everything waiting, and kept when its session goes away (a transaction's forced end). */
  first?: boolean;
  /**
   * Taken out of the line and answered `database_pool_exhausted` (as a pool's checkout) once it has
   * waited this long for another holder's transaction; a task of the holder itself never expires.
   */
  maxWaitMs?: number;
}

interface Task {
  session: Session;
  key: object;
  /** A transaction's forced end: run even once its session has gone. */
  keep: boolean;
  /** Never rejects. */
  run(): Promise<void>;
  /** The session went away before its turn: the task is not run. */
  drop(): void;
  /** Its wait's bound (maxWaitMs), cleared when it leaves the line. */
  timer: NodeJS.Timeout | undefined;
}

export class SessionScheduler {
  private queue: Task[] = [];
  /** The key of the transaction holding the connection, if any. */
  private owner: object | null = null;
  private running = false;

  constructor(private readonly engine: Statements) {}

  /** Whether a transaction holds the connection. */
  get held(): boolean {
    return this.owner !== null;
  }

  /** Statements waiting for their turn. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * One statement of a session whose calls come one at a time, in order (the HTTP thread's: its own gate
   * sees to that, pglite-db.ts). `hold`: the session keeps the connection once it has run (its
   * transaction's BEGIN and the statements inside it); false: it gives it back (a COMMIT, a ROLLBACK, a
   * statement on its own). The session is its own key.
   */
  statement(session: Session, sql: Sql, params: readonly unknown[] | undefined, hold: boolean, maxWaitMs?: number): Promise<QueryResult<unknown>> {
    return this.run({
      session,
      key: session,
      work: (connection) => connection.query(sql, params),
      after: () => (hold ? this.hold(session) : this.release(session)),
      ...(maxWaitMs !== undefined ? { maxWaitMs } : {}),
    });
  }

  /** `work` alone on the connection, in its turn (see TaskSpec). */
  run<T>(spec: TaskSpec<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const task: Task = {
        session: spec.session,
        key: spec.key,
        keep: spec.first === true,
        timer: undefined,
        run: async () => {
          let ok = false;
          try {
            const value = await spec.work(this.engine);
            ok = true;
            resolve(value);
          } catch (err) {
            reject(err);
          } finally {
            spec.after?.(ok);
          }
        },
        drop: () => reject(new AppError('database_unavailable', { message: 'The session ended before its statement ran.' })),
      };
      if (spec.maxWaitMs !== undefined) {
        const maxWaitMs = spec.maxWaitMs;
        task.timer = setTimeout(() => {
          // The holder's own statements are next in line whatever they waited: never cut (dropping its
          // COMMIT or ROLLBACK would leave its transaction open).
          if (task.key === this.owner) return;
          const index = this.queue.indexOf(task);
          if (index < 0) return;
          this.queue.splice(index, 1);
          reject(
            new AppError('database_pool_exhausted', {
              message: `waited ${maxWaitMs} ms for the embedded database, held by a transaction; pool size 1, ${this.queue.length} waiting`,
            }),
          );
        }, maxWaitMs);
      }
      if (spec.first) this.queue.unshift(task);
      else this.queue.push(task);
      this.pump();
    });
  }

  /** The transaction `key` holds the connection (its BEGIN has run). */
  hold(key: object): void {
    this.owner = key;
  }

  /** The transaction `key` gives the connection back (it ended); nothing if it did not hold it. */
  release(key: object): void {
    if (this.owner !== key) return;
    this.owner = null;
    this.pump();
  }

  /** The session's statements not yet run are dropped (it has gone). */
  dropWaiting(session: Session): void {
    const kept: Task[] = [];
    for (const task of this.queue) {
      if (task.session === session && !task.keep) {
        clearTimeout(task.timer);
        task.drop();
      } else kept.push(task);
    }
    this.queue = kept;
  }

  private pump(): void {
    if (this.running) return;
    const owner = this.owner;
    const index = owner === null ? (this.queue.length > 0 ? 0 : -1) : this.queue.findIndex((t) => t.key === owner);
    if (index < 0) return;
    const [task] = this.queue.splice(index, 1);
    clearTimeout(task!.timer);
    this.running = true;
    void task!.run().then(() => {
      this.running = false;
      this.pump();
    });
  }
}

interface OpenTransaction {
  id: number;
  /** Its key in the scheduler: its statements run while it holds the connection. */
  key: object;
  failed: boolean;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Serves one session of `scheduler` speaking relayed-db.ts's protocol (the delivery thread's, over its
 * own channel): statements, and transactions as begin, statements and commit or rollback. That thread
 * sends them concurrently (its lanes run side by side): its transactions take the connection one after
 * another, and a statement of its own outside them waits for the one open, as another session's would.
 *
 * Bounds: a statement or BEGIN that has waited `waitTimeoutMs` for a transaction to end is taken out of
 * line and answered `database_pool_exhausted` (as a pool's checkout), never run; a transaction still open after
 * `transactionMs` is rolled back whatever it was doing (it holds the only connection, and everything
 * else waits behind it), and its later statements and commit fail; when the session closes (its thread
 * went away), what it had waiting is dropped and its open transaction rolled back. Errors are answered
 * as the store names them (translatePgError), their SQLSTATE kept.
 */
export function serveSession(
  scheduler: SessionScheduler,
  session: Session,
  reply: (answer: DbAnswer) => void,
  options: { transactionMs: number; waitTimeoutMs?: number },
): { call(call: DbCall): void; close(): void } {
  const open = new Map<number, OpenTransaction>();
  let nextTx = 1;
  let closed = false;
  const wait = options.waitTimeoutMs !== undefined ? { maxWaitMs: options.waitTimeoutMs } : {};
  const answer = (a: DbAnswer) => {
    if (!closed) reply(a);
  };
  const fail = (id: number, err: unknown) => answer({ id, ok: false, error: serializeError(translatePgError(err)) });
  const ended = (rolledBack: boolean) =>
    new AppError('database_timeout', { message: `The transaction ended after ${options.transactionMs} ms${rolledBack ? ' and was rolled back' : ''}.` });

  /** Ends a transaction by rolling it back, ahead of all else, and gives the connection back. */
  const abandon = (tx: OpenTransaction) => {
    if (open.get(tx.id) !== tx) return;
    open.delete(tx.id);
    clearTimeout(tx.timer);
    void scheduler
      .run({ session, key: tx.key, work: (connection) => connection.query('rollback'), after: () => scheduler.release(tx.key), first: true })
      .catch(() => {});
  };

  const begin = (id: number) => {
    const tx: OpenTransaction = { id: nextTx++, key: {}, failed: false, timer: undefined };
    // Its own key only once it holds the connection: until then it waits like any statement.
    scheduler
      .run({
        session,
        key: {},
        work: (connection) => connection.query('begin'),
        after: (ok) => {
          if (ok) scheduler.hold(tx.key);
        },
        ...wait,
      })
      .then(
        () => {
          open.set(tx.id, tx);
          if (options.transactionMs > 0) tx.timer = setTimeout(() => abandon(tx), options.transactionMs);
          if (closed) abandon(tx);
          else answer({ id, ok: true, tx: tx.id });
        },
        (err: unknown) => fail(id, err),
      );
  };

  const end = (id: number, txId: number, commit: boolean) => {
    const tx = open.get(txId);
    if (!tx) {
      // Already rolled back (its time ran out): a rollback asked for is done; a commit is not.
      if (!commit) return answer({ id, ok: true });
      return fail(id, ended(true));
    }
    scheduler
      .run({
        session,
        key: tx.key,
        work: async (connection) => {
          if (open.get(txId) !== tx) {
            if (commit) throw ended(true);
            return;
          }
          open.delete(txId);
          clearTimeout(tx.timer);
          if (!commit) return void (await connection.query('rollback'));
          try {
            // PostgreSQL answers COMMIT of a transaction that hit an error with ROLLBACK and no error, and
            // PGlite does not say which: after a failed statement, a probe tells an aborted transaction
            // (25P02) from one that went on through a savepoint.
            if (tx.failed) {
              const probe = await connection.query('select 1').then(
                () => undefined,
                (err: unknown) => err,
              );
              if (isInFailedTransaction(probe)) throw new Error(TX_MISUSE.commitRolledBack);
              if (probe) throw probe;
            }
            await connection.query('commit');
          } catch (err) {
            await connection.query('rollback').catch(() => {});
            throw err;
          }
        },
        after: () => scheduler.release(tx.key),
      })
      .then(
        () => answer({ id, ok: true }),
        (err: unknown) => fail(id, err),
      );
  };

  return {
    call(c) {
      if (closed) return;
      if (c.op === 'begin') return begin(c.id);
      if (c.op !== 'query') return end(c.id, c.tx, c.op === 'commit');
      const { sql, params } = c;
      if (c.tx === undefined) {
        scheduler.run({ session, key: {}, work: (connection) => connection.query(sql, params), ...wait }).then(
          (result) => answer({ id: c.id, ok: true, result }),
          (err: unknown) => fail(c.id, err),
        );
        return;
      }
      const tx = open.get(c.tx);
      if (!tx) return fail(c.id, ended(false));
      scheduler
        .run({
          session,
          key: tx.key,
          work: async (connection) => {
            if (open.get(tx.id) !== tx) throw ended(false);
            return connection.query(sql, params);
          },
        })
        .then(
          (result) => answer({ id: c.id, ok: true, result }),
          (err: unknown) => {
            if (open.get(tx.id) === tx) tx.failed = true;
            fail(c.id, err);
          },
        );
    },
    close() {
      if (closed) return;
      closed = true;
      scheduler.dropWaiting(session);
      for (const tx of [...open.values()]) abandon(tx);
    },
  };
}
