/**
 * The error catalogue: every error a client can see has a stable snake_case code, an HTTP status and a
 * message that says what to do next. Anything not in here is a bug: it is logged with its cause chain
 * and answered as a bare 500 `internal_error`, never with its internal message.
 *
 * To add an error: add an entry here and a line in docs/errors.md (a test keeps them in step).
 */
export const errorCatalogue = {
  // 400: the request itself is wrong
  invalid_json: { status: 400, message: 'The request body is not valid JSON.' },
  invalid_request: { status: 400, message: 'The request does not match the schema; see details.' },
  unsupported_media_type: { status: 415, message: 'Send the body as application/json.' },
  body_too_large: { status: 413, message: 'The request body is larger than the configured limit.' },
  headers_too_large: { status: 431, message: 'The URL and headers together are larger than the server reads (16 KB); send a shorter request.' },
  method_not_allowed: { status: 405, message: 'This path does not answer this method; see Allow (CONNECT: this is not a proxy).' },
  expectation_failed: { status: 417, message: 'The only expectation this server meets is Expect: 100-continue.' },
  request_timeout: { status: 408, message: 'The whole request did not arrive within the time allowed; send it again.' },
  upload_too_slow: { status: 408, message: 'The body arrived slower than the minimum upload rate; send it again at a normal pace.' },
  too_many_uploads: { status: 429, message: 'This address already has the most requests whose bodies are still arriving; finish those first.' },
  invalid_cursor: { status: 400, message: 'The event cursor is unknown; resume from an event id this service sent.' },
  // 401 / 404: who you are, what exists for you
  unauthorized: { status: 401, message: 'Send a valid credential in the Authorization header.' },
  invalid_credentials: { status: 401, message: 'Email or password is wrong.' },
  credential_revoked: { status: 401, message: 'The API key of this event stream was revoked; reconnect with a valid key.' },
  session_ended: { status: 401, message: 'The desk session of this event stream ended (signed out, or past its lifetime); sign in again.' },
  invalid_signature: { status: 401, message: 'The webhook signature, id or timestamp is missing or does not verify.' },
  stale_timestamp: { status: 401, message: 'The webhook timestamp is outside the 5-minute tolerance; check the sender clock.' },
  not_found: { status: 404, message: 'No such route.' },
  tenant_not_found: { status: 404, message: 'No such tenant.' },
  handover_not_found: { status: 404, message: 'No such handover for this tenant.' },
  queue_not_found: { status: 404, message: 'No such queue for this tenant.' },
  connector_not_found: { status: 404, message: 'No such connector.' },
  agent_not_found: { status: 404, message: 'No such agent for this tenant.' },
  canned_response_not_found: { status: 404, message: "No such canned response among the tenant's and your own." },
  // Attachments (docs/desk.md, "Attachments")
  attachment_not_found: { status: 404, message: 'No such file for this handover; upload it to the handover first.' },
  attachment_empty: { status: 400, message: 'The file is empty; send its bytes as the request body.' },
  attachment_type_not_allowed: { status: 415, message: 'Files of this type are not taken; see details.allowed.' },
  attachment_type_mismatch: {
    status: 415,
    message: 'The declared Content-Type is not the type the file bytes show; send its real type (or application/octet-stream).',
  },
  attachment_link_invalid: {
    status: 403,
    message: 'This attachment link is not valid (changed, or not signed by this service); ask for the message again to get a new one.',
  },
  attachment_link_expired: { status: 403, message: 'This attachment link has expired; read the message again for a new one.' },
  attachments_off: { status: 409, message: 'Attachments are off on this service (HANDOVER_ATTACHMENT_STORE); send links in the text instead.' },
  attachment_store_unavailable: { status: 503, message: 'The attachment store did not answer in time; retry after Retry-After.' },
  // 409: the state does not allow it
  user_has_live_handover: { status: 409, message: 'The user is in a live handover; end it before erasing the user.' },
  handover_ended: { status: 409, message: 'The handover has ended; start a new one.' },
  handover_not_waiting: { status: 409, message: 'The handover is no longer waiting for an agent.' },
  handover_not_yours: { status: 409, message: 'Another agent holds this handover.' },
  handover_not_active: { status: 409, message: 'No agent has joined this handover yet.' },
  handover_not_ended: { status: 409, message: 'The handover is still live; ask the user for a rating once it has ended.' },
  rating_conflict: { status: 409, message: 'This handover was already rated with another score or comment; a rating is given once.' },
  agent_at_capacity: { status: 409, message: 'The agent already holds the maximum number of chats.' },
  agent_away: { status: 409, message: 'Set your presence to available before accepting chats.' },
  already_exists: { status: 409, message: 'A resource with this name already exists.' },
  idempotency_conflict: { status: 409, message: 'This Idempotency-Key was used for a different conversation.' },
  ambiguous_login: { status: 409, message: 'The email and password are right for agents of several tenants; send tenantId.' },
  queue_closed: { status: 409, message: 'The queue is closed now; see details.nextOpenAt.' },
  no_agents_available: { status: 409, message: 'No agent is online for this queue.' },
  queue_full: { status: 409, message: 'Every agent is at capacity and the waiting line is full.' },
  connector_degraded: { status: 409, message: 'The agent-side system is not answering; offer another channel.' },
  unknown_connector_type: { status: 400, message: 'No connector of this type; see docs/connectors.' },
  invalid_connector_config: { status: 400, message: 'The connector configuration does not match its schema; see details.' },
  too_many_streams: { status: 429, message: 'This credential already holds the most open event streams; close one before opening another.' },
  too_many_login_attempts: { status: 429, message: 'Too many failed sign-ins; wait before trying again.' },
  forbidden_role: { status: 403, message: 'This needs the supervisor role.' },
  forbidden_scope: { status: 403, message: "This API key's scope does not allow this." },
  api_key_not_found: { status: 404, message: 'No such API key for this tenant.' },
  inbound_rate_limited: { status: 429, message: "This connector's inbound URL is receiving more than its rate; retry later." },
  inbound_unverified_rate_limited: {
    status: 429,
    message: 'This address sent too many inbound requests that did not verify; check the signing secret, then retry after Retry-After.',
  },
  csrf_token_invalid: { status: 403, message: 'A change made with the session cookie needs its CSRF token in X-CSRF-Token.' },
  url_too_long: { status: 414, message: 'A path segment of the URL is longer than any id this service uses.' },
  url_not_allowed: { status: 400, message: 'This URL may not be called: wrong scheme, or a private or reserved destination.' },
  // 503: the service cannot serve it now; retry after Retry-After
  database_unavailable: { status: 503, message: 'The database is not reachable; the service retries by itself.' },
  database_pool_exhausted: { status: 503, message: 'Every database connection is busy; the request waited its bound for one.' },
  database_timeout: { status: 503, message: 'A database statement ran past its timeout.' },
  deadline_exceeded: { status: 503, message: 'The request ran past its deadline.' },
  overloaded_queue_wait: { status: 503, message: 'Every slot is busy and the request waited its bound for one; retry after Retry-After.' },
  overloaded_event_loop: { status: 503, message: 'This instance is CPU-bound (its event loop runs late); retry after Retry-After.' },
  overloaded_memory: { status: 503, message: 'This instance is near its memory limit; retry after Retry-After.' },
  shutting_down: { status: 503, message: 'This instance is shutting down; retry on another.' },
  admission_stuck: { status: 503, message: 'Admission slots of this instance are held without coming back (readiness); restart it.' },
  // 500: a bug
  internal_error: { status: 500, message: 'Internal error; it has been logged.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;
  /** Seconds the client should wait before retrying (503s). */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, options: { message?: string; details?: Record<string, unknown>; cause?: unknown; retryAfterSeconds?: number } = {}) {
    // An AppError is an answer the service chose (a 404, a refusal under overload), named by its code,
    // and says all it has to say in its message; what went wrong below it, if anything, is its cause,
    // with that error's own stack. Capturing a stack for each one cost about 13 µs of the HTTP thread
    // per answer (profiled on 404s, 5.7 % of the thread), most of all when it is busiest. Only the
    // internal error, a 500, keeps one.
    const stackTraceLimit = Error.stackTraceLimit;
    if (errorCatalogue[code].status !== 500) Error.stackTraceLimit = 0;
    try {
      super(options.message ?? errorCatalogue[code].message, { cause: options.cause });
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.name = 'AppError';
    this.code = code;
    this.status = errorCatalogue[code].status;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds ?? (this.status === 503 ? 1 : undefined);
  }
}

/** Turns anything thrown into an Error, in one place, keeping the original as `cause`. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : `non-error thrown: ${safeString(thrown)}`, { cause: thrown });
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
