import { Agent, request } from 'undici';
import { DeliveryError } from '../connectors/connector.js';
import { ForbiddenDestinationError, guardedConnect, type OutboundPolicy } from '../security/outbound-guard.js';
import { signedHeaders } from './standard-webhooks.js';
import { answerError, describeAnswer } from './remote-answer.js';
import { clientCallAttributes, inSpan, SpanKind, traceHeaders } from '../telemetry/tracing.js';

/**
 * One keep-alive pool for all outbound webhook calls, with every wait bounded: connect, response
 * headers and body. The caller's AbortSignal carries the overall deadline. Destinations are checked
 * when connecting (SSRF guard); redirects are never followed.
 */
export function createOutboundAgent(timeoutMs: number, policy: OutboundPolicy): Agent {
  return new Agent({
    connect: guardedConnect(policy, { timeoutMs: Math.min(timeoutMs, 5000) }),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    keepAliveTimeout: 10_000,
    connections: 64,
  });
}

/** Responses we read at most this much of (described, and perhaps quoted, in the attempt log). */
const MAX_RESPONSE_BYTES = 16 * 1024;

/** Status codes that will not change by retrying the same request. */
export const permanentStatuses = new Set([400, 404, 405, 410, 413, 422]);

export interface PostResult {
  statusCode: number;
  body: string;
}

/**
 * POSTs a JSON body signed with Standard Webhooks headers. Resolves on 2xx; throws DeliveryError
 * (retryable or not, with the status and Retry-After) on anything else.
 */
export function postSignedJson(
  dispatcher: Agent,
  url: string,
  secret: string,
  webhookId: string,
  payload: unknown,
  signal: AbortSignal,
  extraHeaders: Record<string, string> = {},
): Promise<PostResult> {
  // A CLIENT span whose context goes out as `traceparent`, so the receiver can join the trace.
  return inSpan('POST', { kind: SpanKind.CLIENT, attributes: () => clientCallAttributes('POST', url) }, (span) =>
    postSigned(dispatcher, url, secret, webhookId, payload, signal, extraHeaders, (status) => span?.setAttribute('http.response.status_code', status)),
  );
}

async function postSigned(
  dispatcher: Agent,
  url: string,
  secret: string,
  webhookId: string,
  payload: unknown,
  signal: AbortSignal,
  extraHeaders: Record<string, string>,
  answered: (status: number) => void,
): Promise<PostResult> {
  const body = JSON.stringify(payload);
  let response;
  try {
    response = await request(url, {
      method: 'POST',
      dispatcher,
      signal,
      headers: { 'content-type': 'application/json', 'user-agent': 'handover-webhooks/1', ...traceHeaders(), ...extraHeaders, ...signedHeaders(secret, webhookId, body) },
      body,
    });
    answered(response.statusCode);
  } catch (err) {
    throw requestFailure(err, `request to ${new URL(url).host}`);
  }
  const text = await readBounded(response.body, MAX_RESPONSE_BYTES);
  if (response.statusCode >= 200 && response.statusCode < 300) return { statusCode: response.statusCode, body: text };
  throw answerError(new URL(url).host, { status: response.statusCode, headers: response.headers, text }, {
    retryable: !permanentStatuses.has(response.statusCode),
    retryAfterMs: parseRetryAfter(response.headers['retry-after']),
  });
}

/**
 * GETs a small JSON document, signed like our webhooks (over an empty body) so the other side can tell
 * it is us. Resolves with the parsed body on 2xx; throws DeliveryError otherwise.
 */
export function getSignedJson(dispatcher: Agent, url: string, secret: string, requestId: string, signal: AbortSignal): Promise<unknown> {
  return inSpan('GET', { kind: SpanKind.CLIENT, attributes: () => clientCallAttributes('GET', url) }, (span) =>
    getSigned(dispatcher, url, secret, requestId, signal, (status) => span?.setAttribute('http.response.status_code', status)),
  );
}

async function getSigned(dispatcher: Agent, url: string, secret: string, requestId: string, signal: AbortSignal, answered: (status: number) => void): Promise<unknown> {
  let response;
  try {
    response = await request(url, { method: 'GET', dispatcher, signal, headers: { accept: 'application/json', 'user-agent': 'handover-webhooks/1', ...traceHeaders(), ...signedHeaders(secret, requestId, '') } });
    answered(response.statusCode);
  } catch (err) {
    throw requestFailure(err, `request to ${new URL(url).host}`);
  }
  const text = await readBounded(response.body, MAX_RESPONSE_BYTES);
  if (response.statusCode < 200 || response.statusCode >= 300) {
    throw answerError(new URL(url).host, { status: response.statusCode, headers: response.headers, text }, { retryable: true });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Not the parser's error as the cause: its message quotes the body.
    throw new DeliveryError(`${new URL(url).host} answered ${response.statusCode} with something other than JSON (${describeAnswer(response.headers, text)})`, { retryable: true });
  }
}

/** Reads a response body up to `maxBytes`; the rest is not read (the connection is dropped). */
export async function readBounded(body: AsyncIterable<Buffer> & { destroy(): void }, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > maxBytes) {
      body.destroy();
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, maxBytes);
}

/**
 * A call that got no answer, as a DeliveryError: a destination the outbound guard refused is final (it
 * will not change by retrying); anything else (refused, reset, timed out) is retried.
 */
export function requestFailure(err: unknown, what: string): DeliveryError {
  const forbidden = forbiddenCause(err);
  if (forbidden) return new DeliveryError(forbidden.message, { retryable: false, cause: err });
  return new DeliveryError(`${what} failed: ${describeNetworkError(err)}`, { retryable: true, cause: err });
}

export function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return undefined;
  if (/^\d+$/.test(raw)) return Number(raw) * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** The guard's refusal, wherever undici wrapped it. */
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
