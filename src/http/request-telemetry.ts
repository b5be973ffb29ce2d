import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Metrics } from '../telemetry/metrics.js';

/**
 * Counts one finished request: the OpenTelemetry duration histogram by route template (never the raw
 * URL, which carries ids), and, for the bot API, the in-memory window the status page judges.
 * Streams are left out: their duration is the client's session, not a response time.
 */
export function recordRequest(metrics: Metrics, request: FastifyRequest, status: number, elapsedMs: number): void {
  if (request.routeOptions.config?.admission === 'stream') return;
  const route = request.routeOptions.url ?? 'unmatched';
  metrics.httpRequestDuration.observe({ http_request_method: request.method, http_route: route, http_response_status_code: String(status) }, elapsedMs / 1000);
  if (route.startsWith('/v1/desk')) metrics.deskRequests.recordRequest(elapsedMs, status);
  else if (route.startsWith('/v1/') && !route.startsWith('/v1/admin')) metrics.requests.recordRequest(elapsedMs, status);
}

/**
 * Once authentication has run, every log line of the request carries the tenant and handover it is
 * about (the request id is already on it), so one grep follows a conversation across lines.
 */
export function installLogContext(app: FastifyInstance): void {
  app.addHook('preHandler', async (request) => {
    const context: Record<string, string> = {};
    if (typeof request.tenantId === 'string') context.tenantId = request.tenantId;
    const params = request.params as Record<string, unknown> | undefined;
    if (params && typeof params.id === 'string' && request.routeOptions.url?.includes('/handovers/:id')) context.handoverId = params.id;
    if (Object.keys(context).length > 0) request.log = request.log.child(context);
  });
}
