import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdmissionController } from '../resilience/admission.js';
import type { Metrics } from '../monitoring/metrics.js';
import { answerRaw, answerRawKeptOpen } from './error-handler.js';
import { credentialKey, judgedBeforeRouting } from './admission-hook.js';
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
 * is admission's own (the catalogued code, the measured cause, `Retry-After`).
 *
 * The connection stays open when the body is small (at most KEEP_ALIVE_BODY_BYTES, announced by
 * Content-Length): Node reads and discards it after the answer and the client sends its next request
 * on the same connection. Closing it made every refusal cost a new connection on both sides — about 30
 * times the CPU of the refusal itself, measured with every request refused: 35 µs per answer from a
 * bare `node:http` server keeping connections, about 1 ms from the service closing them — which is what
 * a refusal must not cost when most requests are refused. A larger or chunked body, or a refusal for
 * memory, is answered with `Connection: close`: its bytes are not read any further than needed to
 * close gracefully (lingering-close.ts).
 */
export const KEEP_ALIVE_BODY_BYTES = 64 * 1024;

/** Whether a refused request's body is small enough to be read and discarded to keep its connection. */
function smallBody(request: IncomingMessage): boolean {
  if (request.headers['transfer-encoding'] !== undefined) return false;
  const length = request.headers['content-length'];
  return length === undefined || Number(length) <= KEEP_ALIVE_BODY_BYTES;
}

export function shedBeforeRouting(admission: AdmissionController, metrics: Metrics): (request: IncomingMessage, response: ServerResponse) => boolean {
  // The histogram's series of a refusal, one per API area, method and status, its labels made once.
  // The route names the area the path is in (`/v1/admin/ (refused before routing)`, …): the bot API's
  // SLO counts refusals of its own requests and not the admin API's or the desk's, as it does after routing.
  const seriesOf = (area: ApiArea, method: string, status: number) =>
    metrics.httpRequestDuration.keyed(`refused before routing ${area} ${method} ${status}`, () => ({
      http_request_method: method,
      http_route: `${area} (refused before routing)`,
      http_response_status_code: String(status),
    }));
  return (request, response) => {
    const url = request.url ?? '';
    if (!url.startsWith('/v1/')) return false;
    const path = pathOf(url);
    if (isStream(path)) return false;
    // Told apart by credential, as admission tells callers apart; a request without one (a desk cookie,
    // say) goes the normal way, where its address is known as the app knows it (trusted proxies).
    const authorization = request.headers.authorization;
    if (!authorization) return false;
    const refusal = admission.refusalBeforeRouting(credentialKey(authorization));
    if (!refusal) {
      judgedBeforeRouting.add(request);
      return false;
    }
    const cause = refusal.details?.cause;
    // A small body is read and discarded by Node once this is answered, and the connection serves the
    // client's next request. Otherwise Node closes it once this is written, reading and discarding what
    // of the body still arrives first (lingering-close.ts), so the client reads the 503 instead of a reset.
    if (cause === 'memory' || !smallBody(request)) answerRaw(response, refusal, { close: true });
    else answerRawKeptOpen(response, refusal);
    // Counted where refusals after routing are counted: the status page and doctor read these windows.
    // The method is one of the few the routes know or Node's parser accepts, so the labels stay few.
    seriesOf(areaOf(path), request.method ?? 'GET', refusal.status).observe(0);
    const window = statusWindow(metrics, path);
    if (window) {
      window.recordRequest(0, refusal.status);
      if (typeof cause === 'string') window.recordRejection(cause);
    }
    return true;
  };
}

type ApiArea = '/v1/' | '/v1/admin/' | '/v1/desk/';

/** The API a path of `/v1/` belongs to: the admin API, the desk's, or the bot API (the rest). */
function areaOf(path: string): ApiArea {
  if (path.startsWith('/v1/admin/')) return '/v1/admin/';
  if (path.startsWith('/v1/desk/')) return '/v1/desk/';
  return '/v1/';
}

/** The URL's path, without its query. */
function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}

/** The live streams: admitted without a slot, so never refused for want of one. */
function isStream(path: string): boolean {
  return path === '/v1/events' || path === '/v1/desk/events';
}
