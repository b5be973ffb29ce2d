import { makeFolderDurably } from '../config/durable-file.js';
import { join } from 'node:path';
import type { Db } from './db.js';
import { createPgDb } from './pg-db.js';
import { createPgliteDb } from './pglite-db.js';

export interface OpenDbOptions {
  /** PostgreSQL URL; unset or empty selects the embedded PGlite store in `dataDir`. */
  url?: string;
  dataDir: string;
  poolSize: number;
  poolTimeoutMs: number;
  statementTimeoutMs: number;
  idleInTransactionTimeoutMs: number;
  /** PostgreSQL: idle pool connections closed after this long; 0 or absent: kept while the pool is open. */
  idleTimeoutMs?: number;
  /** PostgreSQL: connections closed once this old; 0 or absent: no limit. */
  maxLifetimeMs?: number;
  /** PostgreSQL: prepare named statements once per connection (default true). */
  preparedStatements?: boolean;
}

/** Picks the adapter from the configuration. Migrations are the caller's next step. */
export async function openDb(
  options: OpenDbOptions,
  hooks: { onIdleClientError?: (err: Error) => void; onEmbeddedThreadLost?: (err: Error) => void } = {},
): Promise<Db> {
  if (options.url) {
    return createPgDb({
      url: options.url,
      poolSize: options.poolSize,
      poolTimeoutMs: options.poolTimeoutMs,
      statementTimeoutMs: options.statementTimeoutMs,
      idleInTransactionTimeoutMs: options.idleInTransactionTimeoutMs,
      ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
      ...(options.maxLifetimeMs !== undefined ? { maxLifetimeMs: options.maxLifetimeMs } : {}),
      applicationName: 'handover',
      ...(options.preparedStatements !== undefined ? { preparedStatements: options.preparedStatements } : {}),
      ...(hooks.onIdleClientError ? { onIdleClientError: hooks.onIdleClientError } : {}),
    });
  }
  // The database files get their own folder: the data directory also holds the admin token.
  const pgdata = join(options.dataDir, 'pgdata');
  await makeFolderDurably(pgdata, 0o777);
  // PGlite has one connection: the pool checkout bound becomes the bound on waiting for it. It runs in
  // a thread of its own, so its statements never hold up the thread that answers HTTP; there the
  // statement timeout bounds the wait for each answer.
  return createPgliteDb({
    dataDir: pgdata,
    waitTimeoutMs: options.poolTimeoutMs,
    thread: { replyTimeoutMs: Math.max(options.statementTimeoutMs, 1000), ...(hooks.onEmbeddedThreadLost ? { onLost: hooks.onEmbeddedThreadLost } : {}) },
  });
}
