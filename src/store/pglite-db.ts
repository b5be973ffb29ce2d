import { AsyncLocalStorage } from 'node:async_hooks';
import { PGlite, type Results, type Transaction } from '@electric-sql/pglite';
import { AppError } from '../resilience/errors.js';
import type { Db, Queryable, QueryResult } from './db.js';
import { assertTimeLeft } from '../resilience/deadline.js';
import { translatePgError } from './pg-db.js';

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
}

// Same contract as the pg adapter: int8 and numeric as JS numbers (PGlite gives BigInt above 2^53
// and strings for numeric). jsonb and timestamptz already parse to values and Dates.
const parsers = { 20: Number, 1700: Number };

const instances = new WeakMap<Db, { pglite: PGlite; gate: Gate }>();

export async function createPgliteDb(options: PgliteDbOptions = {}): Promise<Db> {
  const pglite = await PGlite.create({
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    ...(options.loadDataDir !== undefined ? { loadDataDir: options.loadDataDir } : {}),
    parsers,
  });
  const gate = new Gate(options.waitTimeoutMs ?? 10_000);
  let closing: Promise<void> | undefined;

  const exclusive = async <T>(work: (token: object) => Promise<T>): Promise<T> => {
    const { token, release } = await gate.acquire();
    try {
      return await work(token);
    } finally {
      release();
    }
  };

  const db: Db = {
    kind: 'pglite',

    query<T>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
      return exclusive(async () => {
        // One connection serves everyone: work whose request deadline passed while it waited is dropped.
        assertTimeLeft('a database query');
        try {
          return await run<T>(pglite, sql, params);
        } catch (err) {
          throw translatePgError(err);
        }
      });
    },

    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      return exclusive(async (token) => {
        assertTimeLeft('a database transaction');
        try {
          // The token marks this async context as "inside the transaction" for the gate's diagnosis.
          return await gate.context.run(token, () =>
            pglite.transaction(async (raw) => {
              const tx: Queryable = {
                async query<R>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
                  try {
                    return await run<R>(raw, sql, params);
                  } catch (err) {
                    throw translatePgError(err);
                  }
                },
              };
              return fn(tx);
            }),
          );
        } catch (err) {
          throw translatePgError(err);
        }
      });
    },

    async ping(): Promise<void> {
      await db.query('select 1');
    },

    poolStats() {
      return { total: 1, idle: gate.busy ? 0 : 1, waiting: gate.waiting };
    },

    close(): Promise<void> {
      closing ??= closeWhenIdle(pglite, gate);
      return closing;
    },
  };
  instances.set(db, { pglite, gate });
  return db;
}

/** A consistent copy of the whole database, to feed `createPgliteDb({ loadDataDir })`. */
export async function dumpPgliteDb(db: Db): Promise<Blob> {
  const instance = instances.get(db);
  if (!instance) throw new Error('dumpPgliteDb: not a PGlite Db created by createPgliteDb');
  const { release } = await instance.gate.acquire();
  try {
    // Uncompressed: gzip would cost more time than the 41 MB in memory is worth.
    return await instance.pglite.dumpDataDir('none');
  } finally {
    release();
  }
}

/** An independent in-memory copy of `source`. For many copies, dump once and create from the dump. */
export async function clonePgliteDb(source: Db, options: Omit<PgliteDbOptions, 'dataDir' | 'loadDataDir'> = {}): Promise<Db> {
  return createPgliteDb({ ...options, loadDataDir: await dumpPgliteDb(source) });
}

/**
 * A parameterless query goes through the simple protocol, as pg does it, so it may hold several
 * statements (migrations need that); the last statement's result is returned.
 */
async function run<T>(target: PGlite | Transaction, sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
  if (params === undefined || params.length === 0) {
    const results = await target.exec(sql);
    return toResult<T>(results[results.length - 1]);
  }
  return toResult<T>(await target.query<T>(sql, [...params]));
}

function toResult<T>(res: Results<unknown> | undefined): QueryResult<T> {
  if (!res) return { rows: [], rowCount: 0 };
  // rowCount is the command tag's count (rows of a SELECT, rows changed by DML); affectedRows is 0 for SELECT.
  return { rows: res.rows as T[], rowCount: res.rowCount ?? res.affectedRows ?? 0 };
}

async function closeWhenIdle(pglite: PGlite, gate: Gate): Promise<void> {
  // Let the running call finish (bounded by the gate's timeout) rather than pull the WASM from under it.
  const held = await gate.acquire().catch(() => undefined);
  try {
    await pglite.close();
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
