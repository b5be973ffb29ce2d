import { AppError, errorCatalogue, type ErrorCode } from '../resilience/errors.js';
import type { ThreadError } from './delivery-thread-protocol.js';

/** An error as it crosses to another thread: what the caller's answer and its logs need of it. */
export function toThreadError(err: unknown): ThreadError {
  if (err instanceof AppError)
    return {
      message: err.message,
      app: {
        code: err.code,
        ...(err.details ? { details: err.details } : {}),
        ...(err.retryAfterSeconds !== undefined ? { retryAfterSeconds: err.retryAfterSeconds } : {}),
      },
    };
  if (!(err instanceof Error)) return { message: String(err) };
  // The error's own code, as the database or the OS gave it (a SQLSTATE, `ECONNRESET`).
  const code = (err as { code?: unknown }).code;
  return { message: err.message, ...(typeof code === 'string' ? { code } : {}) };
}

/** The error again, on this side: an AppError with its code, or an Error with the code it had. */
export function fromThreadError(error: ThreadError): Error {
  if (error.app && error.app.code in errorCatalogue)
    return new AppError(error.app.code as ErrorCode, {
      message: error.message,
      ...(error.app.details ? { details: error.app.details } : {}),
      ...(error.app.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.app.retryAfterSeconds } : {}),
    });
  const plain = new Error(error.message);
  return error.code === undefined ? plain : Object.assign(plain, { code: error.code });
}
