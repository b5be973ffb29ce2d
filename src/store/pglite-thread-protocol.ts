import type { QueryResult, Sql } from './db.js';
import type { SerializedError } from '../resilience/errors-across-threads.js';

/** Messages between the main thread and the embedded database's thread. */
export type ThreadRequest = { id: number; op: 'query'; sql: Sql; params?: readonly unknown[] } | { id: number; op: 'dump' } | { id: number; op: 'close' };

export type ThreadReply = { id: number; ok: true; result?: QueryResult<unknown>; dump?: Blob } | { id: number; ok: false; error: SerializedError };

export type ThreadEvent = { ready: true } | { fatal: SerializedError };
