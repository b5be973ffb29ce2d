import { request, type Agent } from 'undici';
import { parseRetryAfter, readBounded, requestFailure } from '../delivery/http-post.js';
import { answerError } from '../delivery/remote-answer.js';
import { clientCallAttributes, inSpan, SpanKind, traceHeaders } from '../telemetry/tracing.js';

/** Responses read at most this far: vendor answers are small JSON documents. */
const MAX_RESPONSE_BYTES = 256 * 1024;

/** Status codes that will not change by sending the same request again. */
const permanentStatuses = new Set([400, 401, 403, 404, 405, 410, 413, 422]);

/** `body` is the vendor's JSON as the caller expects it: every field optional, read defensively. */
export interface JsonResponse<T = unknown> {
  status: number;
  body: T | null;
}

/**
 * One JSON call to a vendor API through the shared, bounded dispatcher (connect, headers and body
 * timeouts) and the caller's deadline. Resolves on 2xx and on the statuses the caller expects
 * (`accept`, e.g. 409 "already exists"); otherwise throws DeliveryError, retryable unless the status
 * says the same request can never succeed.
 */
export function requestJson<T = unknown>(dispatcher: Agent, input: JsonRequest): Promise<JsonResponse<T>> {
  // A CLIENT span whose context goes out as `traceparent`: vendors that trace can join.
  return inSpan(input.method, { kind: SpanKind.CLIENT, attributes: () => clientCallAttributes(input.method, input.url) }, (span) =>
    send<T>(dispatcher, input, (status) => span?.setAttribute('http.response.status_code', status)),
  );
}

type JsonRequest = {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  body?: unknown;
  signal: AbortSignal;
  accept?: number[];
  /** How an error names the call instead of the URL's path: for a path that carries an end user's id. */
  label?: string;
};

async function send<T>(dispatcher: Agent, input: JsonRequest, answered: (status: number) => void): Promise<JsonResponse<T>> {
  const host = new URL(input.url).host;
  let response;
  try {
    response = await request(input.url, {
      method: input.method,
      dispatcher,
      signal: input.signal,
      headers: { accept: 'application/json', 'user-agent': 'handover/1', ...(input.body !== undefined ? { 'content-type': 'application/json' } : {}), ...traceHeaders(), ...input.headers },
      body: input.body !== undefined ? JSON.stringify(input.body) : null,
    });
    answered(response.statusCode);
  } catch (err) {
    throw requestFailure(err, `${input.method} ${host}`);
  }
  const text = await readBounded(response.body, MAX_RESPONSE_BYTES);
  const status = response.statusCode;
  if ((status >= 200 && status < 300) || input.accept?.includes(status)) return { status, body: parseJson(text) as T | null };
  throw answerError(`${input.method} ${input.label ?? new URL(input.url).pathname} on ${host}`, { status, headers: response.headers, text }, {
    retryable: !permanentStatuses.has(status),
    retryAfterMs: parseRetryAfter(response.headers['retry-after']),
  });
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/** The value of a header that may arrive repeated. */
export function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
