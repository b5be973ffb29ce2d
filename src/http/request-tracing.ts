import type { FastifyInstance, FastifyRequest } from 'fastify';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context } from '@opentelemetry/api';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's span in its context, while tracing is on. */
    traceContext?: Context;
    /** The catalogue code of a failed answer, for the span's `error.type`. */
    traceErrorCode?: string;
  }
}

/** Probes and scrapes: frequent, uninteresting, and their own signal already. */
const untraced = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * One SERVER span per request, named by method and route template (never the raw URL, which carries
 * ids), with the HTTP semantic-convention attributes, the tenant and handover it was about, and the
 * error code of a failed answer. A `traceparent` sent by the caller (a bot, or a helpdesk's webhook)
 * makes it a child in the caller's trace. Installed only when tracing is on.
 *
 * The span's context is entered in onRequest and again in preValidation: reading the body runs in
 * the socket's async context, not the request's, so the handler would otherwise lose it.
 */
export function installRequestTracing(app: FastifyInstance): void {
  const tracer = trace.getTracer('handover');
  app.addHook('onRequest', (request, _reply, done) => {
    const route = request.routeOptions.url;
    if ((route && untraced.has(route)) || request.routeOptions.config?.admission === 'stream') return done();
    const parent = propagation.extract(ROOT_CONTEXT, request.headers);
    const span = tracer.startSpan(
      route ? `${request.method} ${route}` : request.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': request.method,
          ...(route ? { 'http.route': route } : {}),
          'url.scheme': request.protocol,
          'network.protocol.version': request.raw.httpVersion,
        },
      },
      parent,
    );
    request.traceContext = trace.setSpan(parent, span);
    context.with(request.traceContext, done);
  });
  app.addHook('preValidation', (request, _reply, done) => {
    if (!request.traceContext) return done();
    context.with(request.traceContext, done);
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    // Error answers are `{"error":{"code":"…"}}`; the code is the stable, bounded name of what went wrong.
    if (request.traceContext && reply.statusCode >= 400 && typeof payload === 'string') {
      const code = /"code":"([a-z0-9_]+)"/.exec(payload.slice(0, 300))?.[1];
      if (code) request.traceErrorCode = code;
    }
    done(null, payload);
  });
  app.addHook('onResponse', (request, reply, done) => {
    endRequestSpan(request, reply.statusCode);
    done();
  });
}

function endRequestSpan(request: FastifyRequest, status: number): void {
  const span = request.traceContext && trace.getSpan(request.traceContext);
  if (!span) return;
  span.setAttribute('http.response.status_code', status);
  if (typeof request.tenantId === 'string') span.setAttribute('handover.tenant.id', request.tenantId);
  const params = request.params as Record<string, unknown> | undefined;
  if (params && typeof params.id === 'string' && request.routeOptions.url?.includes('/handovers/:id')) span.setAttribute('handover.id', params.id);
  if (params && typeof params.connectorId === 'string') span.setAttribute('handover.connector.id', params.connectorId);
  if (status >= 400) span.setAttribute('error.type', request.traceErrorCode ?? String(status));
  // Server spans: a 4xx is the caller's mistake, not a failure of this service.
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}
