import { isUtf8 } from 'node:buffer';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, errorCatalogue, toError, type ErrorCode } from '../resilience/errors.js';
import { LONE_SURROGATE } from '../store/storable-text.js';
import { isLingering, lingerThenClose } from './lingering-close.js';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

/** What a 401 asks for (RFC 9110 requires the header): the API's bearer credentials. */
const AUTHENTICATE = 'Bearer realm="handover"';

/** The body every error answer has, however it is written. */
function errorBody(err: AppError): ErrorBody {
  return { error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } };
}

export function sendError(reply: FastifyReply, err: AppError): FastifyReply {
  if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
  if (err.status === 401) reply.header('www-authenticate', AUTHENTICATE);
  return reply.code(err.status).type('application/json').send(errorBody(err));
}

/**
 * An AppError answered on Node's own response, before or without Fastify (shed-before-routing.ts,
 * message-route.ts): the body and headers `sendError` gives, plus `nosniff` (which the app's hook adds to
 * every Fastify answer) and `Connection: close` when asked.
 */
export function answerRaw(response: ServerResponse, err: AppError, options: { close?: boolean } = {}): void {
  writeJson(response, err.status, JSON.stringify(errorBody(err)), options.close === true, err.retryAfterSeconds);
}

/**
 * An AppError answered on Node's own response and kept open, as `answerRaw` would, with the answer's
 * text and headers made once per error: a refusal made before routing is answered again as it was
 * for a short while (admission.ts, REUSE_REFUSAL_MS), to many requests.
 */
export function answerRawKeptOpen(response: ServerResponse, err: AppError): void {
  let made = madeAnswers.get(err);
  if (!made) {
    const text = JSON.stringify(errorBody(err));
    made = { text, headers: answerHeaders(text, false, err.retryAfterSeconds) };
    madeAnswers.set(err, made);
  }
  response.writeHead(err.status, made.headers);
  response.end(made.text);
}

const madeAnswers = new WeakMap<AppError, { text: string; headers: Record<string, string | number> }>();

function answerHeaders(text: string, close: boolean, retryAfterSeconds: number | undefined): Record<string, string | number> {
  // The headers the app's hooks give a Fastify answer of the same kind (security-headers.ts).
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  };
  if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
  if (close) headers.connection = 'close';
  return headers;
}

/** A JSON answer written on Node's own response in one go, with the headers Fastify's would have. */
export function writeJson(response: ServerResponse, status: number, text: string, close: boolean, retryAfterSeconds?: number): void {
  const headers = answerHeaders(text, close, retryAfterSeconds);
  if (status === 401) headers['www-authenticate'] = AUTHENTICATE;
  response.writeHead(status, headers);
  response.end(text);
}

/** Refusals for load or shutdown: counted by cause, never logged one by one. */
const sheddingCodes = new Set<ErrorCode>(['overloaded_queue_wait', 'overloaded_event_loop', 'overloaded_memory', 'shutting_down']);

/**
 * The error handler's two tiers, for whoever answers a thrown error (the Fastify handler below, and the
 * message route served before Fastify): a catalogue error is answered as it is, logged only when it is
 * a 5xx that is not a refusal for load (those are counted by cause, not logged one by one); anything
 * else is a bug, logged with its cause chain and answered as a bare 500 that leaks nothing.
 */
export function answerableError(thrown: unknown, log: FastifyBaseLogger): AppError {
  if (thrown instanceof AppError) {
    if (thrown.status >= 500 && !sheddingCodes.has(thrown.code)) log.warn({ err: thrown, code: thrown.code }, thrown.message);
    return thrown;
  }
  log.error({ err: toError(thrown) }, 'unhandled error');
  return new AppError('internal_error');
}

/** Fastify's own 4xx errors, mapped to the catalogue. */
const fastifyCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
};

/**
 * Two tiers: catalogue errors are answered as they are; anything else is a bug, logged with its cause
 * chain and answered as a bare 500 that leaks nothing.
 */
export function installErrorHandling(
  app: FastifyInstance,
  limits: { bodyLimitBytes: number },
): { answerUnrouted: (request: FastifyRequest, reply: FastifyReply) => unknown } {
  app.setErrorHandler((thrown: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) => {
    // Admission's refusals are counted by cause (handover_admission_rejections_total) rather than
    // logged one by one: under overload a line per refusal would cost the time the refusal saves.
    if (thrown instanceof AppError) return sendError(reply, answerableError(thrown, request.log));
    const err = thrown as FastifyError;
    if (err.validation) {
      const problems = err.validation.map((v) => `${err.validationContext ?? 'body'}${v.instancePath || ''}: ${describe(v)}`);
      return sendError(reply, new AppError('invalid_request', { message: `The request is invalid: ${problems.join('; ')}`, details: { problems } }));
    }
    const mapped = err.code ? fastifyCodes[err.code] : undefined;
    if (mapped) {
      const message = mapped === 'body_too_large' ? `The body is larger than the limit of ${limits.bodyLimitBytes} bytes.` : errorCatalogue[mapped].message;
      return sendError(reply, new AppError(mapped, { message }));
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return sendError(reply, new AppError('invalid_request', { message: err.message }));
    }
    return sendError(reply, answerableError(thrown, request.log));
  });

  // A path that exists for other methods is answered 405 with the methods it has (RFC 9110), not 404.
  const routes: Array<{ method: string; path: RegExp }> = [];
  app.addHook('onRoute', (route) => {
    const path = pathPattern(route.url);
    for (const method of [route.method].flat()) routes.push({ method, path });
  });
  const unrouted = (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = [...new Set(routes.filter((r) => r.method !== request.method && r.path.test(path)).map((r) => r.method))];
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      return sendError(reply, new AppError('method_not_allowed', { message: `${path} answers ${allowed.join(', ')}, not ${request.method}.` }));
    }
    return sendError(reply, new AppError('not_found', { message: `No route ${request.method} ${path}.` }));
  };
  app.setNotFoundHandler(unrouted);
  return { answerUnrouted: unrouted };
}

/**
 * A request no route serves is answered 404 or 405 from an `onRequest` hook, before its body is read: a
 * method that may carry one (QUERY, say) would otherwise be judged by its body's content type first, and
 * get a 400 about a body nothing reads. Installed after admission, whose refusals (shutting down,
 * overload) come first, as they do for every request.
 */
export function answerUnroutedBeforeBody(app: FastifyInstance, answer: (request: FastifyRequest, reply: FastifyReply) => unknown): void {
  app.addHook('onRequest', async (request, reply) => {
    if (request.is404) return answer(request, reply);
  });
}

/** A route's URL (`/v1/handovers/:id/messages`, `/docs/static/*`) as a pattern of the paths it serves. */
function pathPattern(url: string): RegExp {
  const source = url
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment === '*' ? '.*' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}$`);
}

function describe(v: { keyword: string; message?: string; params: Record<string, unknown> }): string {
  if (v.keyword === 'additionalProperties') return `unknown field "${String(v.params.additionalProperty)}"`;
  if (v.keyword === 'required') return `missing field "${String(v.params.missingProperty)}"`;
  return v.message ?? v.keyword;
}

/**
 * What Node's HTTP parser refuses before any route sees it — a URL and headers past its size limit, a
 * request that did not arrive in time, bytes that are not HTTP — answered in the service's own error
 * format with a catalogued code (Fastify's own answer to these has none), with `Connection: close`;
 * then what the client still sends is read and discarded within bounds before the socket is closed
 * (lingering-close.ts), so the answer is not lost to a reset.
 */
export function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed || isLingering(socket)) return;
  const error =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new AppError('headers_too_large')
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new AppError('request_timeout')
        : new AppError('invalid_request', { message: 'The request is not valid HTTP.' });
  const response = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  // A response already under way on this socket (a stream, say) is not interrupted with ours.
  if (response?.headersSent || !socket.writable) return void socket.destroy(err);
  if (response) {
    // A request in flight (its body still arriving): answered through its own response, so the route
    // sees it answered and closed, and Node closes the connection gracefully once it is written.
    const body = JSON.stringify(errorBody(error));
    response.writeHead(error.status, { ...answerHeaders(body, true, undefined) });
    response.end(body);
    return;
  }
  answerOnSocket(socket, error);
}

/**
 * An AppError written on a bare socket no response object holds (a request Node's parser refused, a
 * `CONNECT`), then the connection closed once what the client still sends has been read within bounds.
 */
export function answerOnSocket(socket: Socket, error: AppError): void {
  const body = JSON.stringify(errorBody(error));
  const head = Object.entries(answerHeaders(body, true, undefined))
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.write(`HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\n${head}\r\n${body}`);
  lingerThenClose(socket);
}

/**
 * JSON bodies are parsed here so the raw text stays available for signature checks. Keys that could
 * reach an object's prototype are refused outright.
 */
export function installJsonParser(app: FastifyInstance): void {
  // JSON only: any other body type is answered 415 instead of reaching validation as a string.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    try {
      const text = jsonText(request.headers['content-type'], body as Buffer);
      (request as FastifyRequest & { rawBody?: string }).rawBody = text;
      const config = request.routeOptions.config;
      done(null, config?.parsesBodyItself ? undefined : parseJsonText(text, { repairsText: config?.repairsText === true }));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}

/**
 * A JSON body's text. JSON is UTF-8 (RFC 8259): a body announced in another charset is refused rather
 * than read as if it were UTF-8, and bytes that are not UTF-8 rather than stored with replacement
 * characters. Throws the AppError to answer.
 */
function jsonText(contentType: string | undefined, bytes: Buffer): string {
  const charset = charsetOf(contentType);
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new AppError('unsupported_media_type', { message: `Send the body as application/json in UTF-8, not ${charset}.` });
  }
  if (!isUtf8(bytes)) throw new AppError('invalid_json', { message: 'The body is not UTF-8 text.' });
  return bytes.toString('utf8');
}

/**
 * JSON text parsed as every route takes it (undefined for none); throws the AppError to answer.
 * `repairsText`: a lone surrogate escape is taken (the route stores the text repaired) instead of refused.
 */
export function parseJsonText(text: string, options: { repairsText: boolean }): unknown {
  if (text.length === 0) return undefined;
  // Checked on the text, before parsing: every walk of the parsed value (ours, the validator's, a
  // connector's, PostgreSQL's jsonb parser) recurses, and a body nested thousands deep broke one of them
  // with a 500 — which a helpdesk retries for ever.
  if (nestedDeeperThan(text, MAX_JSON_DEPTH)) {
    throw new AppError('invalid_json', { message: `The body nests arrays and objects more than ${MAX_JSON_DEPTH} deep.` });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new AppError('invalid_json', { message: `The body is not valid JSON: ${(err as Error).message}`, cause: err });
  }
  if ((text.includes('__proto__') || text.includes('"constructor"')) && hasPrototypeKey(parsed)) {
    throw new AppError('invalid_request', { message: 'Keys "__proto__" and "constructor" are not accepted.' });
  }
  // A \uD800–\uDFFF escape without its pair parses, but names no character: PostgreSQL refuses it
  // in jsonb, so it would fail deep in a statement instead of here (I-JSON, RFC 7493, forbids it).
  // (Connectors' inbound URLs take such text and store it repaired: a vendor's batch is not refused
  // whole for one bad character.)
  if (!options.repairsText && surrogateEscape.test(text) && hasLoneSurrogate(parsed)) {
    throw new AppError('invalid_json', {
      message: 'The body is not valid JSON text: a \\u escape names half of a UTF-16 surrogate pair without the other half.',
    });
  }
  return parsed;
}

export const surrogateEscape = /\\u[dD][89a-fA-F]/;

/** A Content-Type's charset parameter, lower-cased and unquoted; undefined without one. */
function charsetOf(contentType: string | undefined): string | undefined {
  const match = /;\s*charset\s*=\s*("?)([^";\s]*)\1/i.exec(contentType ?? '');
  return match ? match[2]!.toLowerCase() : undefined;
}

/** Deepest nesting of arrays and objects a JSON body may have (real payloads stay within a dozen). */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether JSON text opens more than `max` arrays or objects inside each other; brackets inside strings
 * do not count. A body with no more brackets than `max` cannot, and is not scanned.
 */
export function nestedDeeperThan(text: string, max: number): boolean {
  let brackets = 0;
  for (let i = text.indexOf('{'); i >= 0 && brackets <= max; i = text.indexOf('{', i + 1)) brackets++;
  for (let i = text.indexOf('['); i >= 0 && brackets <= max; i = text.indexOf('[', i + 1)) brackets++;
  if (brackets <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

function hasLoneSurrogate(value: unknown): boolean {
  if (typeof value === 'string') return LONE_SURROGATE.test(value);
  if (value === null || typeof value !== 'object') return false;
  for (const [key, item] of Object.entries(value)) if (LONE_SURROGATE.test(key) || hasLoneSurrogate(item)) return true;
  return false;
}

function hasPrototypeKey(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  for (const key of Object.keys(value)) {
    if (key === '__proto__' || key === 'constructor') return true;
    if (hasPrototypeKey((value as Record<string, unknown>)[key])) return true;
  }
  return false;
}
