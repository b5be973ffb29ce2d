import { errorCatalogue, type ErrorCode } from '../../resilience/errors.js';

/** What decides which errors a route can answer besides its own: who may call it and how it is admitted. */
export interface OperationFacts {
  method: string;
  /** Who may call it: a bot API key, the admin token, a desk session, a connector's signature, anyone. */
  caller: 'bot' | 'admin' | 'desk' | 'connector' | 'anyone';
  /** 'exempt': answered even under overload (health); 'stream': admitted, then holds no slot. */
  admission: 'normal' | 'exempt' | 'stream';
  hasPathParams: boolean;
  /** Path, query or header parameters, or a body: something a request can get wrong. */
  validatesInput: boolean;
  ownErrors: readonly ErrorCode[];
}

const overload: ErrorCode[] = ['overloaded_queue_wait', 'overloaded_event_loop', 'overloaded_memory', 'shutting_down'];
const database: ErrorCode[] = ['database_unavailable', 'database_pool_exhausted', 'database_timeout'];

/**
 * Every error code an operation can answer. Besides the operation's own (the catalogue in
 * operations.ts), they come from the layers every request passes through, in order:
 * - Node's HTTP parser: headers too large (431), a request that did not arrive in time (408);
 * - the router: a path segment longer than any id (414, routes with path parameters);
 * - the body guard and parser, for methods with a body (src/http/upload-guard.ts, error-handler.ts):
 *   413, 408 too slow, 429 too many slow uploads from one address, 415 not JSON, 400 invalid JSON;
 * - admission control (src/http/admission-hook.ts): 503 with the cause, and the deadline (503);
 * - authentication (src/http/auth.ts): 401; 403 for a read-only key writing or a cookie write
 *   without its CSRF token;
 * - schema validation: 400 invalid_request;
 * - the database, for every admitted route: 503;
 * - a bug: 500.
 */
export function errorCodesOf(facts: OperationFacts): Set<ErrorCode> {
  const codes = new Set<ErrorCode>(['headers_too_large', 'request_timeout', 'internal_error', ...facts.ownErrors]);
  const write = facts.method !== 'GET' && facts.method !== 'HEAD';
  if (facts.hasPathParams) codes.add('url_too_long');
  if (write) for (const code of ['body_too_large', 'upload_too_slow', 'too_many_uploads', 'unsupported_media_type', 'invalid_json'] as const) codes.add(code);
  if (facts.validatesInput || write) codes.add('invalid_request');
  if (facts.caller === 'bot' || facts.caller === 'admin' || facts.caller === 'desk') codes.add('unauthorized');
  if (facts.caller === 'bot' && write) codes.add('forbidden_scope');
  if (facts.caller === 'desk' && write) codes.add('csrf_token_invalid');
  if (facts.admission !== 'exempt') {
    for (const code of [...overload, ...database]) codes.add(code);
    if (facts.admission === 'normal') codes.add('deadline_exceeded');
  }
  return codes;
}

/** Statuses whose answers carry Retry-After (every 503, and the 429s: they say when to come back). */
const retryAfterStatuses = new Set([429, 503]);

const reasons: Record<number, string> = {
  400: 'The request is wrong',
  401: 'Not authenticated',
  403: 'Not allowed',
  404: 'Not found',
  408: 'The request did not arrive in time',
  409: 'The state does not allow it',
  413: 'The body is too large',
  414: 'The URL is too long',
  415: 'The body is not of a type this operation takes',
  429: 'Too many requests',
  431: 'The headers are too large',
  500: 'Internal error (a bug; logged)',
  503: 'Not now: retry after Retry-After',
};

/** The error answers of an operation, one per status, each listing its codes with an example of each. */
export function errorResponses(codes: Set<ErrorCode>): Record<string, unknown> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = errorCatalogue[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<string, unknown> = {};
  for (const status of [...byStatus.keys()].sort((a, b) => a - b)) {
    const list = byStatus.get(status)!.sort();
    responses[String(status)] = {
      description: `${reasons[status] ?? 'Error'}: ${list.map((c) => `\`${c}\``).join(', ')} (docs/errors.md).`,
      ...(retryAfterStatuses.has(status) ? { headers: { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } } } : {}),
      content: {
        'application/json': {
          schema: { $ref: '#/components/schemas/Error' },
          examples: Object.fromEntries(list.map((code) => [code, { summary: code, value: { error: { code, message: errorCatalogue[code].message } } }])),
        },
      },
    };
  }
  return responses;
}
