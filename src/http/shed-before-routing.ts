import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdmissionController } from '../resilience/admission.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { ErrorBody } from './error-handler.js';
import { credentialKey } from './admission-hook.js';
import { statusWindow } from './request-telemetry.js';

/**
 * The cheapest refusal there is: while admission control is shedding and the request's caller is one of
 * those making the line stand (`AdmissionController.refusalBeforeRouting`), an API request is answered
 * `503` from Node's own request event — before Fastify routes it, reads its body, runs a hook or
 * allocates a request object. Under overload the refusals outnumber what is admitted; what each one
 * costs is taken from the requests being served, so it must be as little as possible.
 *
 * Only slot-holding API routes are refused here. Health, readiness, metrics, the status page, the
 * desk's pages and the live streams go the normal way (exempt, or admitted without a slot). The answer
 * is admission's own (the catalogued code, the measured cause, `Retry-After`), with `Connection: close`.
 */
export function shedBeforeRouting(admission: AdmissionController, metrics: Metrics): (request: IncomingMessage, response: ServerResponse) => boolean {
  return (request, response) => {
    const url = request.url ?? '';
    if (!url.startsWith('/v1/') || isStream(url)) return false;
    // Told apart by credential, as admission tells callers apart; a request without one (a desk cookie,
    // say) goes the normal way, where its address is known as the app knows it (trusted proxies).
    const authorization = request.headers.authorization;
    if (!authorization) return false;
    const refusal = admission.refusalBeforeRouting(credentialKey(authorization));
    if (!refusal) return false;
    const body: ErrorBody = { error: { code: refusal.code, message: refusal.message, ...(refusal.details ? { details: refusal.details } : {}) } };
    const text = JSON.stringify(body);
    response.writeHead(refusal.status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'retry-after': String(refusal.retryAfterSeconds ?? 1),
      'x-content-type-options': 'nosniff',
      // The body (if any) is not read: Node closes the connection once this is written, reading and
      // discarding what of the body still arrives first (lingering-close.ts), so the client reads the 503
      // instead of a reset. A refused client reconnects, and a balancer may send it elsewhere.
      connection: 'close',
    });
    response.end(text);
    // Counted where refusals after routing are counted: the status page and doctor read these windows.
    metrics.httpRequestDuration.observe({ http_request_method: request.method ?? 'GET', http_route: 'refused before routing', http_response_status_code: String(refusal.status) }, 0);
    const window = statusWindow(metrics, url.split('?', 1)[0]!);
    const cause = refusal.details?.cause;
    if (window) {
      window.recordRequest(0, refusal.status);
      if (typeof cause === 'string') window.recordRejection(cause);
    }
    return true;
  };
}

/** The live streams: admitted without a slot, so never refused for want of one. */
function isStream(url: string): boolean {
  const path = url.split('?', 1)[0]!;
  return path === '/v1/events' || path === '/v1/desk/events';
}
