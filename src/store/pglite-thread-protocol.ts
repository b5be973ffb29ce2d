import type { QueryResult, Sql } from './db.js';
import type { SerializedError } from '../resilience/errors-across-threads.js';

/** Messages between the main thread and the embedded database's thread. */
export type ThreadRequest =
  | { id: number; op: 'query'; sql: Sql; params?: readonly unknown[] }
  | { id: number; op: 'dump' }
  | { id: number; op: 'close' }
  /** For tests: every later sync of a write-ahead log file fails (EIO), as a failing disk's would. */
  | { id: number; op: 'fail-log-syncs' };

export type ThreadReply = { id: number; ok: true; result?: QueryResult<unknown>; dump?: Blob } | { id: number; ok: false; error: SerializedError };

/** `cpu`: the thread's own CPU time (user + system, seconds), told every CPU_REPORT_MS (Linux only). */
export type ThreadEvent = { ready: true } | { fatal: SerializedError } | { cpu: number };

export const CPU_REPORT_MS = 250;
