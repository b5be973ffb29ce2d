/**
 * Thrown by every outbound call (`send`) and by a connector's `deliver` to say how the failure should
 * be treated. Anything else thrown counts as retryable (network errors, timeouts).
 *
 * The message never quotes what the remote side answered: a helpdesk refusing a message often echoes
 * it. The answer's text, when there is one, travels beside the message (`answerQuote`, kept off the
 * error's enumerable fields so log serializers never see it) and is added only where the service
 * renders a failure and the settings allow it (`failureText`).
 */
export class DeliveryError extends Error {
  readonly retryable: boolean;
  readonly statusCode: number | undefined;
  /** The remote side asked us to wait this long (Retry-After). */
  readonly retryAfterMs: number | undefined;
  readonly #answerQuote: string | undefined;
  constructor(message: string, options: { retryable: boolean; statusCode?: number; retryAfterMs?: number; cause?: unknown; answerQuote?: string }) {
    super(message, { cause: options.cause });
    this.name = 'DeliveryError';
    this.retryable = options.retryable;
    this.statusCode = options.statusCode;
    this.retryAfterMs = options.retryAfterMs;
    this.#answerQuote = options.answerQuote;
  }

  /** The start of the remote answer's body, as received: may hold message text. */
  get answerQuote(): string | undefined {
    return this.#answerQuote;
  }
}
