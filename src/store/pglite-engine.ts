import { PGlite, type Results } from '@electric-sql/pglite';
import type { QueryResult } from './db.js';

/**
 * Where PGlite runs, behind the embedded adapter (pglite-db.ts): in this thread, or in a worker
 * thread of its own (pglite-thread-engine.ts) so that its statements never take the time of the
 * thread that answers HTTP. Both run one statement at a time, in the order given, and throw the
 * database's own errors (with `code`, `constraint`, ...), which the adapter translates.
 */
export interface PgliteEngine {
  /** With parameters: one statement (extended protocol). Without: the simple protocol (several statements). */
  query(sql: string, params?: readonly unknown[]): Promise<QueryResult<unknown>>;
  dump(): Promise<Blob>;
  close(): Promise<void>;
}

export interface PgliteEngineOptions {
  /** Directory of the database files; undefined keeps the database in memory. */
  dataDir?: string;
  /** Start from a dump instead of an empty database. */
  loadDataDir?: Blob;
}

// Same contract as the pg adapter: int8 and numeric as JS numbers (PGlite gives BigInt above 2^53
// and strings for numeric). jsonb and timestamptz already parse to values and Dates.
const parsers = { 20: Number, 1700: Number };

export async function createPgliteInProcess(options: PgliteEngineOptions): Promise<PgliteEngine> {
  const pglite = await PGlite.create({
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    ...(options.loadDataDir !== undefined ? { loadDataDir: options.loadDataDir } : {}),
    parsers,
  });
  return {
    async query(sql, params) {
      if (params === undefined || params.length === 0) {
        const results = await pglite.exec(sql);
        return toResult(results[results.length - 1]);
      }
      return toResult(await pglite.query(sql, [...params]));
    },
    // Uncompressed: gzip would cost more time than the 41 MB in memory is worth.
    dump: () => pglite.dumpDataDir('none') as Promise<Blob>,
    close: () => pglite.close(),
  };
}

function toResult(res: Results<unknown> | undefined): QueryResult<unknown> {
  if (!res) return { rows: [], rowCount: 0 };
  // rowCount is the command tag's count (rows of a SELECT, rows changed by DML); affectedRows is 0 for SELECT.
  return { rows: res.rows, rowCount: res.rowCount ?? res.affectedRows ?? 0 };
}
