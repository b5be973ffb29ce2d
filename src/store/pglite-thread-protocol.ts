import type { QueryResult, Sql } from './db.js';

/** Messages between the main thread and the embedded database's thread. */
export type ThreadRequest = { id: number; op: 'query'; sql: Sql; params?: readonly unknown[] } | { id: number; op: 'dump' } | { id: number; op: 'close' };

export type ThreadReply = { id: number; ok: true; result?: QueryResult<unknown>; dump?: Blob } | { id: number; ok: false; error: SerializedError };

export type ThreadEvent = { ready: true } | { fatal: SerializedError };

/** An error as it crosses threads: its message and the fields callers read (`code`, `constraint`, ...). */
export interface SerializedError {
  name: string;
  message: string;
  fields: Record<string, string | number | undefined>;
}

const fieldNames = ['code', 'constraint', 'detail', 'hint', 'schema', 'table', 'column', 'severity', 'position', 'where', 'routine'] as const;

export function serializeError(err: unknown): SerializedError {
  const e = err instanceof Error ? err : new Error(String(err));
  const fields: SerializedError['fields'] = {};
  for (const name of fieldNames) {
    const value = (e as unknown as Record<string, unknown>)[name];
    if (typeof value === 'string' || typeof value === 'number') fields[name] = value;
  }
  return { name: e.name, message: e.message, fields };
}

export function deserializeError(s: SerializedError): Error {
  const err = new Error(s.message);
  err.name = s.name;
  Object.assign(err, s.fields);
  return err;
}
