import { AppError, errorCatalogue, type ErrorCode } from './errors.js';

/**
 * An error as it crosses between threads (the embedded database's, the delivery thread's): its message,
 * the fields callers read (a driver error's `code`, `constraint`, …) and, for an AppError, what the
 * caller's answer needs (its code, details and Retry-After), so the other side names the same cause.
 */
export interface SerializedError {
  name: string;
  message: string;
  fields: Record<string, string | number | undefined>;
  app?: { code: string; details?: Record<string, unknown>; retryAfterSeconds?: number };
  /**
   * The fields of an AppError's cause (a driver error it translated): callers tell some refusals apart by
   * the cause's SQLSTATE (`isUnstorableText`), on whichever thread the statement ran.
   */
  cause?: { message: string; fields: Record<string, string | number | undefined> };
}

const fieldNames = ['code', 'constraint', 'detail', 'hint', 'schema', 'table', 'column', 'severity', 'position', 'where', 'routine'] as const;

export function serializeError(err: unknown): SerializedError {
  if (err instanceof AppError)
    return {
      name: err.name,
      message: err.message,
      fields: {},
      app: {
        code: err.code,
        ...(err.details ? { details: err.details } : {}),
        ...(err.retryAfterSeconds !== undefined ? { retryAfterSeconds: err.retryAfterSeconds } : {}),
      },
      ...(err.cause instanceof Error ? { cause: { message: err.cause.message, fields: fieldsOf(err.cause) } } : {}),
    };
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message, fields: fieldsOf(e) };
}

function fieldsOf(e: Error): SerializedError['fields'] {
  const fields: SerializedError['fields'] = {};
  for (const name of fieldNames) {
    const value = (e as unknown as Record<string, unknown>)[name];
    if (typeof value === 'string' || typeof value === 'number') fields[name] = value;
  }
  return fields;
}

/** The error again, on this side: an AppError with its code, or an Error with the fields it had. */
export function deserializeError(s: SerializedError): Error {
  if (s.app && s.app.code in errorCatalogue)
    return new AppError(s.app.code as ErrorCode, {
      message: s.message,
      ...(s.app.details ? { details: s.app.details } : {}),
      ...(s.app.retryAfterSeconds !== undefined ? { retryAfterSeconds: s.app.retryAfterSeconds } : {}),
      ...(s.cause ? { cause: Object.assign(new Error(s.cause.message), s.cause.fields) } : {}),
    });
  const err = new Error(s.message);
  err.name = s.name;
  Object.assign(err, s.fields);
  return err;
}
