/**
 * An answer of the service other than success: its stable `code` (docs/errors.md of the service), the
 * HTTP `status`, the `details` it gave, and `retryAfterSeconds` when it said when to come back.
 */
export class HandoverError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;
  readonly retryAfterSeconds: number | undefined;
  /** How many times the call was sent before this answer was given up on. */
  readonly attempts: number;

  constructor(init: {
    code: string;
    message: string;
    status: number;
    details?: Record<string, unknown> | undefined;
    retryAfterSeconds?: number | undefined;
    attempts?: number;
    cause?: unknown;
  }) {
    super(init.message, { cause: init.cause });
    this.name = 'HandoverError';
    this.code = init.code;
    this.status = init.status;
    this.details = init.details;
    this.retryAfterSeconds = init.retryAfterSeconds;
    this.attempts = init.attempts ?? 1;
  }
}

/** No answer came: the connection failed or the call ran past its timeout (`code` `network_error` or `timeout`, `status` 0). */
export class HandoverNetworkError extends HandoverError {
  constructor(init: { code: 'network_error' | 'timeout'; message: string; attempts?: number; cause?: unknown }) {
    super({ ...init, status: 0 });
    this.name = 'HandoverNetworkError';
  }
}

/** A webhook that does not verify: `code` is `invalid_signature` or `stale_timestamp`. */
export class WebhookVerificationError extends Error {
  readonly code: 'invalid_signature' | 'stale_timestamp';

  constructor(code: 'invalid_signature' | 'stale_timestamp', message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
    this.code = code;
  }
}
