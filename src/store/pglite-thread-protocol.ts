import type { MessagePort } from 'node:worker_threads';
import type { QueryResult, Sql } from './db.js';
import type { SerializedError } from '../resilience/errors-across-threads.js';
import type { PgliteEngineOptions } from './pglite-engine.js';

/**
 * What the thread starts with: where its files are, and how long a statement of the main thread's may
 * wait for another session's transaction before it is not run (`database_pool_exhausted`).
 */
export type PgliteThreadData = Pick<PgliteEngineOptions, 'dataDir' | 'loadDataDir'> & { waitTimeoutMs?: number };

/**
 * Messages between the main thread and the embedded database's thread. `hold` (a transaction's BEGIN
 * and the statements inside it): the main thread's session keeps the connection after it, and other
 * sessions' statements wait until one without it (its COMMIT or ROLLBACK) has run.
 */
export type ThreadRequest =
  | { id: number; op: 'query'; sql: Sql; params?: readonly unknown[]; hold?: true }
  /**
   * A session of another thread (the delivery thread's): its statements come on `port`, in
   * relayed-db.ts's protocol, each of its transactions rolled back after `transactionMs`, and each
   * statement or BEGIN not run once it waited `waitTimeoutMs` for its turn. Not answered.
   */
  | { id: number; op: 'connect'; port: MessagePort; name: string; transactionMs: number; waitTimeoutMs: number }
  | { id: number; op: 'dump' }
  | { id: number; op: 'close' }
  /** For tests: every later sync of a write-ahead log file fails (EIO), as a failing disk's would. */
  | { id: number; op: 'fail-log-syncs' };

export type ThreadReply = { id: number; ok: true; result?: QueryResult<unknown>; dump?: Blob } | { id: number; ok: false; error: SerializedError };

/** `cpu`: the thread's own CPU time (user + system, seconds), told every CPU_REPORT_MS (Linux only). */
export type ThreadEvent = { ready: true } | { fatal: SerializedError } | { cpu: number };

export const CPU_REPORT_MS = 250;
