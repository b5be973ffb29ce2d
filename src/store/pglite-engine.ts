import type { MessagePort } from 'node:worker_threads';
import { closeSync, existsSync, fstatSync, fsyncSync, openSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parse, PGlite, protocol, type Results } from '@electric-sql/pglite';
import { AppError } from '../resilience/errors.js';
import { FOLDERS_NOT_SYNCED } from '../config/durable-file.js';
import { PLANNER_SETTINGS, type NamedStatement, type QueryResult, type Sql } from './db.js';
import { DurableNodeFS, durableStartParams, type SyncFd } from './pglite-durable-fs.js';

/**
 * Where PGlite runs, behind the embedded adapter (pglite-db.ts): in this thread, or in a worker
 * thread of its own (pglite-thread-engine.ts) so that its statements never take the time of the
 * thread that answers HTTP. Both run one statement at a time, in the order given, and throw the
 * database's own errors (with `code`, `constraint`, ...), which the adapter translates.
 */
export interface PgliteEngine {
  /**
   * With parameters: one statement (extended protocol); a named one is parsed and planned once, then
   * only bound and executed. Without: the simple protocol (several statements).
   */
  query(sql: Sql, params?: readonly unknown[], hold?: boolean): Promise<QueryResult<unknown>>;
  /**
   * In a thread of its own: a session of that thread for another thread (the delivery thread), whose
   * statements then reach the database without passing through this one; its transactions are rolled
   * back after `transactionMs`, and a statement or BEGIN of it that waits `waitTimeoutMs` for its turn is
   * not run. The port is to be handed to that thread.
   */
  connect?(name: string, bounds: { transactionMs: number; waitTimeoutMs: number }): MessagePort;
  /** A statement without parameters, answered within `timeoutMs` where the engine bounds its answers (its thread). */
  queryWithin?(sql: string, timeoutMs: number): Promise<QueryResult<unknown>>;
  dump(): Promise<Blob>;
  close(): Promise<void>;
  /** In a thread of its own: that thread's CPU time (seconds) as it last told it; null until it has. */
  threadCpuSeconds?(): number | null;
  /**
   * Why the store stopped keeping its commits (a file it could not sync to disk), once it has; every
   * statement from then on fails with it (`database_unavailable`).
   */
  failure?(): Error | null;
}

export interface PgliteEngineOptions {
  /** Directory of the database files; undefined keeps the database in memory. */
  dataDir?: string;
  /** Start from a dump instead of an empty database. */
  loadDataDir?: Blob;
  /** How a file of `dataDir` is synced (Node's `fsyncSync` unless a test watches it). */
  sync?: SyncFd;
  /** Told at once when a sync fails, from inside the statement that met it; may end the thread there. */
  onFailure?: (failure: Error) => void;
}

// Same contract as the pg adapter: int8 and numeric as JS numbers (PGlite gives BigInt above 2^53
// and strings for numeric). jsonb and timestamptz already parse to values and Dates.
const parsers = { 20: Number, 1700: Number };

export async function createPgliteInProcess(options: PgliteEngineOptions): Promise<PgliteEngine> {
  // A file that could not be synced may have lost writes the kernel had taken. PostgreSQL's server
  // stops there and recovers from its log when started again; so does the store, so that nothing is
  // answered as stored that may not be. The failure is not handed to PostgreSQL as an errno: in PGlite
  // its PANIC does not stop, it spins. `onFailure` is told first (the store's thread ends itself there,
  // pglite-thread.ts); then the failure is thrown through PGlite, which abandons a statement sent with
  // parameters (and this PGlite, never used again): that statement and every later one fail with it.
  // In this thread, a statement without parameters (a COMMIT) may still spin: the service's store runs
  // in a thread of its own for that reason among others.
  let failure: AppError | null = null;
  const syncFile = options.sync ?? ((fd: number) => fsyncSync(fd));
  const sync: SyncFd = (fd, path) => {
    try {
      syncFile(fd, path);
    } catch (err) {
      // Folders are synced where the system can; where it cannot, PostgreSQL goes on, and so does this.
      if (FOLDERS_NOT_SYNCED.has((err as NodeJS.ErrnoException).code ?? '') && isFolder(fd)) return;
      failure ??= new AppError('database_unavailable', {
        message: `The embedded store could not sync ${basename(path)} to disk (${(err as Error).message}); it stops taking statements. Check the disk, then restart the service: it recovers from its log.`,
        cause: err,
      });
      options.onFailure?.(failure);
      throw new StoreStopped(failure.message);
    }
  };
  // PGlite makes a new database in memory and copies its files into the directory without a sync, and
  // PostgreSQL, finding it shut down cleanly, does not sync it at start: so the directory is synced whole
  // until that has been done once (its marker written last). A store of a version before this one, run
  // with fsync off, is synced whole at its first start with this one too.
  const marker = options.dataDir !== undefined && options.loadDataDir === undefined ? join(options.dataDir, SYNCED_MARKER) : null;
  const unsynced = marker !== null && !existsSync(marker);
  const pglite = await PGlite.create({
    // On disk, a commit is synced before it is answered (pglite-durable-fs.ts); in memory nothing can be.
    ...(options.dataDir !== undefined ? { fs: new DurableNodeFS(options.dataDir, sync), startParams: durableStartParams() } : {}),
    ...(options.loadDataDir !== undefined ? { loadDataDir: options.loadDataDir } : {}),
    parsers,
  });
  if (unsynced) {
    try {
      syncTree(options.dataDir!, sync);
      writeFileSync(marker!, 'The files of this directory were synced to disk once, whole.\n');
      syncPath(marker!, sync);
      syncPath(options.dataDir!, sync);
    } catch (err) {
      throw failure ?? err;
    }
  }
  // The one session's planner settings, as the PostgreSQL adapter's connections have them.
  for (const [name, value] of PLANNER_SETTINGS) await pglite.exec(`set ${name} = ${value}`);
  const named = preparedStatements(pglite);
  const run = async (sql: Sql, params: readonly unknown[] | undefined): Promise<QueryResult<unknown>> => {
    if (params === undefined || params.length === 0) {
      const results = await pglite.exec(typeof sql === 'string' ? sql : sql.text);
      return toResult(results[results.length - 1]);
    }
    if (typeof sql !== 'string') return toResult(await named(sql, params));
    return toResult(await pglite.query(sql, [...params]));
  };
  return {
    async query(sql, params) {
      if (failure) throw failure;
      let result: QueryResult<unknown>;
      try {
        result = await run(sql, params);
      } catch (err) {
        throw failure ?? err;
      }
      if (failure) throw failure;
      return result;
    },
    failure: () => failure,
    // Uncompressed: gzip would cost more time than the 41 MB in memory is worth.
    dump: async () => {
      if (failure) throw failure;
      return (await pglite.dumpDataDir('none')) as Blob;
    },
    // A PGlite abandoned mid-statement is left as it is: its files are what a crash would have left.
    close: async () => {
      if (!failure) await pglite.close();
    },
  };
}

/** Thrown through PGlite from a failed sync: carries no errno, so it is not turned into one. */
class StoreStopped extends Error {}

/**
 * Whether an open file is a folder. False when that cannot be told (the descriptor is bad): the failed
 * sync is then the store's failure, named as such, rather than an error thrown from here into PostgreSQL.
 */
function isFolder(fd: number): boolean {
  try {
    return fstatSync(fd).isDirectory();
  } catch {
    return false;
  }
}

/** Written in the data directory once it was synced whole (createPgliteInProcess). */
const SYNCED_MARKER = 'handover-synced';

/** Syncs every file and directory under `root`, then `root`'s own entry in its parent. */
function syncTree(root: string, sync: SyncFd): void {
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) syncPath(path, sync);
    }
    syncPath(dir, sync);
  };
  walk(root);
  syncPath(dirname(root), sync);
}

function syncPath(path: string, sync: SyncFd): void {
  const fd = openSync(path, 'r');
  try {
    sync(fd, path);
  } finally {
    closeSync(fd);
  }
}

/**
 * Named statements on the one connection PGlite has: Parse and Describe once (which keeps the statement
 * and its parameter types for the session), then Bind, Describe, Execute and Sync in one message per
 * call. `pglite.query` parses and plans its statement every time, in five calls into the database, and
 * SQL's PREPARE cannot help: EXECUTE, a utility statement, takes no protocol parameters. Parameters are
 * sent as text through PGlite's own serializers, results read by its own parser, as `query` does.
 */
function preparedStatements(pglite: PGlite): (statement: NamedStatement, params: readonly unknown[]) => Promise<Results<unknown>> {
  const { serialize } = protocol;
  /** Parameter types of each statement prepared in this session. */
  const prepared = new Map<string, number[]>();
  const exchange = async (parts: Uint8Array[]) => {
    const message = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) {
      message.set(part, at);
      at += part.length;
    }
    // Errors are read from the answer once the whole message (through Sync) has been processed.
    const { messages } = await pglite.execProtocol(message, { throwOnError: false });
    const error = messages.find((m) => m.name === 'error');
    if (error) throw error;
    return messages;
  };
  return async (statement, params) => {
    let types = prepared.get(statement.name);
    if (!types) {
      const answer = await exchange([
        serialize.parse({ name: statement.name, text: statement.text }),
        serialize.describe({ type: 'S', name: statement.name }),
        serialize.sync(),
      ]);
      types = parse.parseDescribeStatementResults(answer);
      prepared.set(statement.name, types);
    }
    const values = params.map((value, i) => {
      if (value === null || value === undefined) return null;
      const serializer = pglite.serializers[types[i]!];
      return serializer ? (serializer(value) as string) : String(value);
    });
    const answer = await exchange([
      serialize.bind({ statement: statement.name, values }),
      serialize.describe({ type: 'P' }),
      serialize.execute({}),
      serialize.sync(),
    ]);
    return parse.parseResults(answer, pglite.parsers)[0]!;
  };
}

function toResult(res: Results<unknown> | undefined): QueryResult<unknown> {
  if (!res) return { rows: [], rowCount: 0 };
  // rowCount is the command tag's count (rows of a SELECT, rows changed by DML); affectedRows is 0 for SELECT.
  return { rows: res.rows, rowCount: res.rowCount ?? res.affectedRows ?? 0 };
}
