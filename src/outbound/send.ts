import type { IncomingHttpHeaders } from 'node:http';
import { request, type Dispatcher } from 'undici';
import type { Attributes, Span } from '@opentelemetry/api';
import { clientCallAttributes, injectTraceHeaders, inSpan, SpanKind, tracingEnabled } from '../telemetry/tracing.js';
import { TtlCache } from '../store/ttl-cache.js';
import { DeliveryError } from './delivery-error.js';
import { toError } from '../resilience/errors.js';
import { ForbiddenDestinationError } from './outbound-guard.js';
import { answerError } from './remote-answer.js';
import { addSignatureHeaders } from './standard-webhooks.js';
import { isRetryable, type StatusPolicy } from './status-policy.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * One call to the outside. Every field the caller does not need is left out: the object is the only
 * thing a call allocates besides its headers, so it is cheap on the delivery path.
 */
export interface OutboundCall {
  method: HttpMethod;
  url: string;
  /** The call's deadline. Required: no call waits for ever (the pool bounds each phase as well). */
  signal: AbortSignal;
  /** Which statuses are final (status-policy.ts). */
  policy: StatusPolicy;
  /** The answer is read up to this many bytes; the rest is never read (the connection is dropped). */
  maxBytes: number;
  /** Added after ours (credentials, vendor headers); may override ours. */
  headers?: Readonly<Record<string, string>>;
  /** A JSON body, serialised here. */
  json?: unknown;
  /** A body serialised by the caller, sent as these exact bytes (a signed batch, a multipart form). Wins over `json`. */
  body?: string | Buffer;
  /** The type of `body` when it is not JSON (a multipart form's, with its boundary). */
  contentType?: string;
  /** Signs the body with Standard Webhooks headers under this secret, with `webhookId` as `webhook-id`. */
  secret?: string;
  webhookId?: string;
  /** Statuses answered as results besides 2xx, e.g. 409 "already exists". */
  accept?: readonly number[];
  /** How errors name the call; the destination's host when absent. Never the URL: it may carry tokens. */
  describe?: string;
  /** Span options: `spanParent: null` starts a trace of its own (a batch of many traces' events). */
  spanParent?: null;
  spanAttributes?: Attributes;
}

/** An answer: 2xx, or a status the call accepts. */
export interface OutboundAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as text, at most `maxBytes` of it. */
  text: string;
  /** What the answer's Retry-After asks, in milliseconds from now. */
  retryAfterMs: number | undefined;
}

const USER_AGENT = 'handover/1';

/**
 * Sends one request and reads its answer, for every call this service makes to the outside (bot
 * webhooks, helpdesk APIs, the generic webhook protocol). In one place:
 * - a CLIENT span around the call, whose context goes out as `traceparent` (receivers that trace can
 *   join); with tracing off, no span and no closure is made;
 * - the SSRF guard and keep-alive, through the pool given (outbound-pool.ts): connect, header and body
 *   timeouts, and the caller's signal as the deadline;
 * - Standard Webhooks signing over the exact bytes sent;
 * - the request written in one system call: a string body, so the HTTP client writes head and body
 *   corked together;
 * - the answer read up to `maxBytes`; Retry-After parsed; the status judged by the one policy table.
 * Resolves on 2xx (and `accept`); throws DeliveryError otherwise, retryable or not, with the status and
 * Retry-After.
 */
export function send(dispatcher: Dispatcher, call: OutboundCall): Promise<OutboundAnswer> {
  // Not async itself: with tracing off the caller gets exchange's own promise, with no extra turn.
  if (!tracingEnabled()) return exchange(dispatcher, call, undefined);
  return inSpan(call.method, spanOptions(call), (span) => exchange(dispatcher, call, span));
}

/** A stream opened: status, headers and the body unread, for the caller to consume or destroy. */
export interface OpenedStream {
  status: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData['body'];
  retryAfterMs: number | undefined;
}

/**
 * Opens a long-lived response (an event stream) through a stream pool: span, `traceparent`, guard and
 * Retry-After as for `send`, but the body is left to the caller, with its headers bounded by
 * `headersTimeoutMs` and each silence in the body by `idleTimeoutMs`. Resolves with any status (the
 * caller knows what a 401 or a 404 means for its stream); throws DeliveryError when no answer came.
 * The span covers the opening: what the stream carries is traced where it is applied.
 */
export function openStream(
  dispatcher: Dispatcher,
  call: Pick<OutboundCall, 'url' | 'signal' | 'headers' | 'describe'> & { headersTimeoutMs: number; idleTimeoutMs: number },
): Promise<OpenedStream> {
  const run = async (span: Span | undefined): Promise<OpenedStream> => {
    const headers: Record<string, string> = { accept: 'text/event-stream', 'user-agent': USER_AGENT };
    if (span) injectTraceHeaders(headers);
    if (call.headers) Object.assign(headers, call.headers);
    let response: Dispatcher.ResponseData;
    try {
      response = await request(call.url, {
        method: 'GET',
        dispatcher,
        signal: call.signal,
        headersTimeout: call.headersTimeoutMs,
        bodyTimeout: call.idleTimeoutMs,
        headers,
      });
    } catch (err) {
      throw requestFailure(err, call.describe ?? `request to ${hostOf(call.url)}`);
    }
    span?.setAttribute('http.response.status_code', response.statusCode);
    // Destroying the body of an answer not read (or a stream left) is not an error of the process: a
    // reader still gets every error through its own iteration.
    response.body.on('error', ignore);
    return { status: response.statusCode, headers: response.headers, body: response.body, retryAfterMs: retryAfterOf(response.headers, response.statusCode) };
  };
  if (!tracingEnabled()) return run(undefined);
  return inSpan('GET', { kind: SpanKind.CLIENT, attributes: () => clientCallAttributes('GET', call.url) }, run);
}

function spanOptions(call: OutboundCall) {
  const attributes = () =>
    call.spanAttributes ? { ...clientCallAttributes(call.method, call.url), ...call.spanAttributes } : clientCallAttributes(call.method, call.url);
  return call.spanParent === null ? { kind: SpanKind.CLIENT, parent: null, attributes } : { kind: SpanKind.CLIENT, attributes };
}

function exchange(dispatcher: Dispatcher, call: OutboundCall, span: Span | undefined): Promise<OutboundAnswer> {
  // What fails before the call (a body that does not serialise, a URL that is not one) rejects, as from
  // an async function.
  try {
    return startExchange(dispatcher, call, span);
  } catch (err) {
    return Promise.reject(toError(err));
  }
}

function startExchange(dispatcher: Dispatcher, call: OutboundCall, span: Span | undefined): Promise<OutboundAnswer> {
  const body = call.body ?? (call.json !== undefined ? JSON.stringify(call.json) : undefined);
  // One headers object, written into in place: ours, the trace context, the caller's, the signature.
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': USER_AGENT };
  if (body !== undefined) headers['content-type'] = call.contentType ?? 'application/json';
  if (span) injectTraceHeaders(headers);
  if (call.headers) Object.assign(headers, call.headers);
  if (call.secret !== undefined) {
    // Only our own JSON webhooks are signed, and those are text.
    if (typeof body !== 'string' && body !== undefined) throw new Error('send(): a signed body must be text');
    addSignatureHeaders(headers, call.secret, call.webhookId ?? '', body ?? '');
  }
  const target = targetOf(call.url);
  if (!target) throw new DeliveryError(`${call.describe ?? 'request'} failed: the URL is not valid`, { retryable: false });
  return new Promise<OutboundAnswer>((resolve, reject) => {
    new Exchange(call, span, resolve, reject).start(dispatcher, target, headers, body);
  });
}

/**
 * One call on the HTTP client's own handler interface: no response stream, no async iterator and no
 * promise per step, which `request()` makes for every call (about a quarter of a call's CPU, measured
 * against it on this path). The call settles once: with the answer (2xx or accepted, up to `maxBytes`),
 * or with a DeliveryError; whatever the client reports after that (the connection dropped past
 * `maxBytes`, an abort) is ignored.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private settled = false;
  private status = 0;
  private headers: IncomingHttpHeaders = {};
  private first: Buffer | undefined;
  private more: Buffer[] | undefined;
  private size = 0;
  private readonly onAbort = () => this.abort(this.call.signal.reason);

  constructor(
    private readonly call: OutboundCall,
    private readonly span: Span | undefined,
    private readonly resolve: (answer: OutboundAnswer) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  start(dispatcher: Dispatcher, target: Target, headers: Record<string, string>, body: string | Buffer | undefined): void {
    const { signal } = this.call;
    if (signal.aborted) return this.fail(signal.reason);
    signal.addEventListener('abort', this.onAbort, { once: true });
    dispatcher.dispatch({ origin: target.origin, path: target.path, method: this.call.method, headers, body: body ?? null }, this);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // The deadline passed while the call waited for a connection: it was answered then; drop it now.
    if (this.settled) controller.abort(this.call.signal.reason ?? new Error('call settled before it started'));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    this.status = status;
    this.headers = headers;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    const maxBytes = this.call.maxBytes;
    this.size += chunk.length;
    if (this.size > maxBytes) {
      // The rest is never read: answer with what fits, and drop the connection.
      const room = chunk.length - (this.size - maxBytes);
      if (room > 0) this.keep(chunk.subarray(0, room));
      this.answer();
      controller.abort(new Error(`answer longer than ${maxBytes} bytes`));
      return;
    }
    this.keep(chunk);
  }

  onResponseEnd(): void {
    if (!this.settled) this.answer();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    // Refused, reset, timed out (connect, headers or body), or aborted at the deadline.
    if (!this.settled) this.fail(err);
  }

  private abort(reason: unknown): void {
    if (this.settled) return;
    this.fail(reason);
    this.controller?.abort(reason instanceof Error ? reason : new Error(String(reason)));
  }

  private keep(chunk: Buffer): void {
    if (this.first === undefined) this.first = chunk;
    else (this.more ??= []).push(chunk);
  }

  private done(): void {
    this.settled = true;
    this.call.signal.removeEventListener('abort', this.onAbort);
  }

  private fail(err: unknown): void {
    this.done();
    this.reject(requestFailure(err, this.call.describe ?? `request to ${hostOf(this.call.url)}`));
  }

  private answer(): void {
    this.done();
    try {
      this.settle();
    } catch (err) {
      this.reject(toError(err));
    }
  }

  private settle(): void {
    const { call, status, headers } = this;
    this.span?.setAttribute('http.response.status_code', status);
    // The common answer is one small chunk: no copy.
    const text = this.first === undefined ? '' : this.more ? Buffer.concat([this.first, ...this.more]).toString('utf8') : this.first.toString('utf8');
    const retryAfterMs = retryAfterOf(headers, status);
    if ((status >= 200 && status < 300) || call.accept?.includes(status)) return this.resolve({ status, headers, text, retryAfterMs });
    this.reject(answerError(call.describe ?? hostOf(call.url), { status, headers, text }, { retryable: isRetryable(call.policy, status), retryAfterMs }));
  }
}

interface Target {
  origin: string;
  /** Path and query, as sent in the request line. */
  path: string;
}

/** Targets kept parsed: one per helpdesk or bot endpoint in practice. */
const targets = new TtlCache<string, Target>(Infinity, 1000);

/** A URL's origin and path, parsed once per distinct string; undefined when it is not a URL. */
function targetOf(url: string): Target | undefined {
  let target = targets.get(url);
  if (target) return target;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  target = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
  targets.set(url, target);
  return target;
}

/**
 * Retry-After as milliseconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3); undefined
 * when absent or unreadable. Not capped here: the retry schedule caps it at its longest delay.
 */
export function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return undefined;
  const trimmed = raw.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/**
 * How long an answer asks to wait: its Retry-After, or, on a 429 without one, when its rate-limit window
 * resets (`X-RateLimit-Reset`: Intercom sends a Unix time in seconds and no Retry-After; a small number
 * is taken as seconds from now).
 */
function retryAfterOf(headers: IncomingHttpHeaders, status: number): number | undefined {
  const value = headers['retry-after'];
  if (value !== undefined) return parseRetryAfter(value);
  if (status !== 429) return undefined;
  const reset = headers['x-ratelimit-reset'];
  const raw = (Array.isArray(reset) ? reset[0] : reset)?.trim();
  if (!raw || !/^\d{1,12}$/.test(raw)) return undefined;
  const n = Number(raw);
  return n > 1_000_000_000 ? Math.max(0, n * 1000 - Date.now()) : n * 1000;
}

/**
 * A call that got no answer, as a DeliveryError: a destination the SSRF guard refused is final (it will
 * not change by retrying); anything else (refused, reset, timed out) is retried.
 */
export function requestFailure(err: unknown, what: string): DeliveryError {
  const forbidden = forbiddenCause(err);
  if (forbidden) return new DeliveryError(forbidden.message, { retryable: false, cause: err });
  return new DeliveryError(`${what} failed: ${describeNetworkError(err)}`, { retryable: true, cause: err });
}

/** The guard's refusal, wherever the HTTP client wrapped it. */
export function forbiddenCause(err: unknown): ForbiddenDestinationError | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof ForbiddenDestinationError) return e;
  }
  return undefined;
}

function describeNetworkError(err: unknown): string {
  const e = err as { code?: string; name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return 'deadline exceeded';
  const code = e.code ?? e.cause?.code;
  const message = e.message ?? e.cause?.message ?? String(err);
  return code ? `${code} (${message})` : message;
}

function ignore(): void {}

function hostOf(url: string): string {
  return new URL(url).host;
}
