import { AsyncLocalStorage } from 'node:async_hooks';
import type { MessagePort } from 'node:worker_threads';
import { AppError } from '../resilience/errors.js';
import type { Db, Queryable, QueryResult, Sql } from './db.js';
import { assertTimeLeft } from '../resilience/deadline.js';
import { translatePgError } from './pg-db.js';
import { isInFailedTransaction, TX_MISUSE } from './pg-errors.js';
import { createPgliteInProcess, type PgliteEngine } from './pglite-engine.js';
import { createPgliteThread, terminatePgliteThread, failPgliteThreadLogSyncs } from './pglite-thread-engine.js';

/**
 * The embedded adapter of the store port: PGlite (PostgreSQL 18 compiled to WASM) in this process.
 *
 * PGlite is one connection. Every call goes through a FIFO gate so that a query from outside waits
 * for a running transaction instead of landing inside it, the wait is bounded like a pool checkout,
 * and `poolStats().waiting` shows the queue.
 *
 * Differences from the pg adapter worth knowing:
 * - `statement_timeout` has no effect (single-threaded WASM, no timer signal): a slow statement
 *   holds the single connection until it finishes;
 * - calling `db.query`/`db.transaction` inside `db.transaction` waits for itself; it is detected
 *   after `waitTimeoutMs` and reported as a bug (use the `tx` argument);
 * - the data directory must belong to one process at a time.
 *
 * Measured here (2 cores, schema 001 applied; second figure with other test workers busy):
 * `PGlite.create()` 2.0–4.0 s (8 s) and ~0.8 GB RSS for the first instance, ~0.2 GB more for each
 * further open one; migrating 70–140 ms; `clone()` 0.9 s (1.1–2.0 s), as it dumps the data directory
 * and creates from the dump; creating from a dump taken once (`createPgliteDb({ loadDataDir })`)
 * 0.45–0.6 s (1.0 s), which is what tests should use; dumping 0.12–0.3 s (41 MB, uncompressed).
 * Passing a precompiled WASM module saved nothing measurable. PGlite's own clone() also drops the
 * `parsers` option, which is one more reason to create from a dump here.
 */
export interface PgliteDbOptions {
  /** Directory of the database files; undefined keeps the database in memory. */
  dataDir?: string;
  /** Start from a dump (see `dumpPgliteDb`) instead of an empty database: fast copies for tests. */
  loadDataDir?: Blob;
  /** Longest wait for the single connection (the pool checkout timeout of pg). Default 10 s. */
  waitTimeoutMs?: number;
  /**
   * Run PGlite in a worker thread of its own (what the service does), so its statements never take
   * the time of the thread answering HTTP; `replyTimeoutMs` bounds each statement there. Absent: in
   * this thread (tests that make many short-lived copies).
   */
  thread?: { replyTimeoutMs: number; onLost?: (error: Error) => void };
}

const instances = new WeakMap<Db, { engine: PgliteEngine; gate: Gate; waitTimeoutMs: number }>();

export async function createPgliteDb(options: PgliteDbOptions = {}): Promise<Db> {
  const source = {
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    ...(options.loadDataDir !== undefined ? { loadDataDir: options.loadDataDir } : {}),
  };
  const waitTimeoutMs = options.waitTimeoutMs ?? 10_000;
  const engine = options.thread ? await createPgliteThread({ ...source, ...options.thread, waitTimeoutMs }) : await createPgliteInProcess(source);
  const gate = new Gate(waitTimeoutMs);
  let closing: Promise<void> | undefined;

  const exclusive = async <T>(work: (token: object) => Promise<T>): Promise<T> => {
    const { token, release } = await gate.acquire();
    try {
      return await work(token);
    } finally {
      release();
    }
  };

  /** What the engine answers, its errors as the service names them. */
  const translated = async <T>(call: () => Promise<QueryResult<unknown>>): Promise<QueryResult<T>> => {
    try {
      return (await call()) as QueryResult<T>;
    } catch (err) {
      throw translatePgError(err);
    }
  };
  const run = <T>(sql: Sql, params?: readonly unknown[]): Promise<QueryResult<T>> => translated<T>(() => engine.query(sql, params));
  // A transaction's BEGIN and statements: in the database's thread, this thread's session keeps the
  // connection after each, until its COMMIT or ROLLBACK (sessions of other threads wait meanwhile).
  const held = <T>(sql: Sql, params?: readonly unknown[]): Promise<QueryResult<T>> => translated<T>(() => engine.query(sql, params, true));

  const db: Db = {
    kind: 'pglite',

    query<T>(sql: Sql, params?: readonly unknown[]): Promise<QueryResult<T>> {
      return exclusive(async () => {
        // One connection serves everyone: work whose request deadline passed while it waited is dropped.
        assertTimeLeft('a database query');
        return run<T>(sql, params);
      });
    },

    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      return exclusive(async (token) => {
        assertTimeLeft('a database transaction');
        // The token marks this async context as "inside the transaction" for the gate's diagnosis.
        return gate.context.run(token, async () => {
          let open = true;
          let failed = false;
          const tx: Queryable = {
            async query<R>(sql: Sql, params?: readonly unknown[]): Promise<QueryResult<R>> {
              if (!open) throw new Error(TX_MISUSE.ended);
              try {
                return await held<R>(sql, params);
              } catch (err) {
                failed = true;
                throw err;
              }
            },
          };
          try {
            // Inside the try: a BEGIN whose answer did not come in time (queued in the database's thread
            // behind a long statement) still runs there later, and the ROLLBACK sent after it closes it.
            // Sent outside, it left the one session inside a transaction every later statement joined.
            await held('begin');
            const result = await fn(tx);
            // PostgreSQL answers COMMIT of a transaction that hit an error with ROLLBACK and no error, and
            // PGlite does not say which: after a caught failure, a statement tells an aborted transaction
            // (25P02) from one that went on through a savepoint. Any other error is its own cause.
            if (failed) {
              const probe = await held('select 1').then(
                () => undefined,
                (err: unknown) => err,
              );
              if (isInFailedTransaction(probe)) throw new Error(TX_MISUSE.commitRolledBack);
              if (probe) throw probe;
            }
            await run('commit');
            return result;
          } catch (err) {
            await run('rollback').catch(() => {});
            throw translatePgError(err);
          } finally {
            open = false;
          }
        });
      });
    },

    upkeep(sql: string, timeoutMs: number): Promise<void> {
      return exclusive(async () => {
        await translated(() => (engine.queryWithin ? engine.queryWithin(sql, timeoutMs) : engine.query(sql)));
      });
    },

    async ping(): Promise<void> {
      await db.query('select 1');
    },

    poolStats() {
      return { total: 1, idle: gate.busy ? 0 : 1, waiting: gate.waiting };
    },

    ...(engine.threadCpuSeconds ? { threadCpuSeconds: () => engine.threadCpuSeconds!() } : {}),

    close(): Promise<void> {
      closing ??= closeWhenIdle(engine, gate);
      return closing;
    },
  };
  instances.set(db, { engine, gate, waitTimeoutMs });
  return db;
}

/** A consistent copy of the whole database, to feed `createPgliteDb({ loadDataDir })`. */
export async function dumpPgliteDb(db: Db): Promise<Blob> {
  const instance = instances.get(db);
  if (!instance) throw new Error('dumpPgliteDb: not a PGlite Db created by createPgliteDb');
  const { release } = await instance.gate.acquire();
  try {
    return await instance.engine.dump();
  } finally {
    release();
  }
}

/**
 * A session of the database's thread for another thread (the delivery thread), when `db` runs in a thread
 * of its own: a port to hand to that thread, whose statements (relayed-db.ts's protocol) then reach the
 * database directly instead of through this thread; each of its transactions is rolled back after
 * `transactionMs`, each of its statements waits for its turn as long as this thread's would for the
 * connection (`waitTimeoutMs`), and closing the port (or its thread ending) rolls back the transaction
 * it has open. null for a database in this thread.
 */
export function openPgliteDbSession(db: Db, name: string, transactionMs: number): MessagePort | null {
  const instance = instances.get(db);
  return instance?.engine.connect?.(name, { transactionMs, waitTimeoutMs: instance.waitTimeoutMs }) ?? null;
}

/** For tests: ends the thread of a Db created with `thread`, as a crash would. */
export async function terminatePgliteDbThread(db: Db): Promise<void> {
  const instance = instances.get(db);
  if (instance) await terminatePgliteThread(instance.engine);
}

/** For tests: from now on the thread of a Db created with `thread` fails to sync its write-ahead log. */
export async function failPgliteDbLogSyncs(db: Db): Promise<void> {
  const instance = instances.get(db);
  if (instance) await failPgliteThreadLogSyncs(instance.engine);
}

/** An independent in-memory copy of `source`. For many copies, dump once and create from the dump. */
export async function clonePgliteDb(source: Db, options: Omit<PgliteDbOptions, 'dataDir' | 'loadDataDir'> = {}): Promise<Db> {
  return createPgliteDb({ ...options, loadDataDir: await dumpPgliteDb(source) });
}

async function closeWhenIdle(engine: PgliteEngine, gate: Gate): Promise<void> {
  // Let the running call finish (bounded by the gate's timeout) rather than pull the WASM from under it.
  const held = await gate.acquire().catch(() => undefined);
  try {
    await engine.close();
  } finally {
    held?.release();
  }
}

interface Held {
  /** Identifies this holding; a transaction runs its callback with it as async context. */
  token: object;
  release(): void;
}

/**
 * One holder at a time, first come first served, each wait bounded. The holder token lets a timed-out
 * waiter tell "the database is busy" from "I am waiting for my own transaction" (a deadlock).
 */
class Gate {
  readonly context = new AsyncLocalStorage<object>();
  holder: object = {};
  busy = false;
  private readonly queue: Array<() => void> = [];

  constructor(private readonly timeoutMs: number) {}

  get waiting(): number {
    return this.queue.length;
  }

  acquire(): Promise<Held> {
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve(this.grant());
    }
    const waitingFor = this.holder;
    const ownTransaction = this.context.getStore() === waitingFor;
    return new Promise((resolve, reject) => {
      const enter = (): void => {
        clearTimeout(timer);
        resolve(this.grant());
      };
      const timer = setTimeout(() => {
        const index = this.queue.indexOf(enter);
        if (index >= 0) this.queue.splice(index, 1);
        if (ownTransaction && this.holder === waitingFor) {
          reject(new Error('db.query or db.transaction was called inside db.transaction and waits for itself on PGlite: use the tx argument.'));
        } else {
          const message = `waited ${this.timeoutMs} ms for the embedded database; pool size 1, ${this.queue.length} waiting`;
          reject(new AppError('database_pool_exhausted', { message }));
        }
      }, this.timeoutMs);
      this.queue.push(enter);
    });
  }

  private grant(): Held {
    const token = {};
    this.holder = token;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next) next();
      else this.busy = false;
    };
    return { token, release };
  }
}
