import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Deps } from '../deps.js';
import type { Connectors } from '../connectors/connector-store.js';
import { answerClientError, answerOnSocket, answerRaw, answerUnroutedBeforeBody, installErrorHandling, installJsonParser, sendError } from './error-handler.js';
import { AppError } from '../resilience/errors.js';
import { botRoutes } from './routes/bot-routes.js';
import { adminRoutes } from './routes/admin-routes.js';
import { deskRoutes } from './routes/desk-routes.js';
import { deskCannedRoutes } from './routes/desk-canned-routes.js';
import { deskNotesRoutes } from './routes/desk-notes-routes.js';
import { deskHistoryRoutes } from './routes/desk-history-routes.js';
import { ratingRoutes } from './routes/rating-routes.js';
import { deskSupervisorRoutes } from './routes/desk-supervisor-routes.js';
import { connectorRoutes } from './routes/connector-routes.js';
import { attachmentRoutes } from './routes/attachment-routes.js';
import { opsRoutes, type Readiness } from './routes/ops-routes.js';
import { webRoutes } from './routes/web-routes.js';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { installAdmission } from './admission-hook.js';
import { shedBeforeRouting } from './shed-before-routing.js';
import { givenRequestId } from './request-id.js';
import { messageRouteBeforeFastify } from './message-route.js';
import { bodiesReadAhead, bodyGuard } from './upload-guard.js';
import { closeNeverUsedWithIdle } from './never-used-connections.js';
import { closeGracefully } from './lingering-close.js';
import { endStreamsOnClose } from './sse.js';
import { docsContentSecurityPolicy, installSecurityHeaders } from './security-headers.js';
import type { AdmissionController } from '../resilience/admission.js';
import type { Metrics } from '../monitoring/metrics.js';
import { lazyChild, loggedUrl, recordRequest, installRequestTelemetry } from './request-telemetry.js';
import { statusRoutes } from './routes/status-routes.js';
import type { StatusService } from '../monitoring/status-service.js';
import { tracingEnabled } from '../telemetry/tracing.js';
import { installRequestTracing } from './request-tracing.js';
import { recordRouteFacts, swaggerOptions } from './openapi/openapi-document.js';
import type { ApiKeyIdentity } from '../tenants/tenants.js';
import type { DirectMessageCounts } from './message-route.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** What the message route served before Fastify (message-route.ts); undefined when it is off. */
    directMessages: DirectMessageCounts | undefined;
  }
}

export interface AppContext {
  deps: Deps;
  connectors: Connectors;
  adminToken: string;
  authenticateApiKey(apiKey: string): Promise<ApiKeyIdentity>;
  ready(): Promise<Readiness>;
  admission: AdmissionController;
  metrics: Metrics;
  /** The status page's judge; without it `/status` is not served. */
  status?: StatusService;
}

/** Builds the HTTP app. Listening is the caller's business, so tests drive the same app. */
export async function buildApp(ctx: AppContext): Promise<FastifyInstance> {
  let requestCount = 0;
  const { config, log } = ctx.deps;
  const bodies = bodyGuard(config.http.uploads);
  // Off while tracing: a traced request's spans are made by Fastify's hooks (request-tracing.ts).
  const messages =
    !config.http.directMessages || tracingEnabled()
      ? undefined
      : messageRouteBeforeFastify({
          deps: ctx.deps,
          admission: ctx.admission,
          metrics: ctx.metrics,
          authenticateApiKey: ctx.authenticateApiKey,
          bodies,
          bodyLimitBytes: config.http.bodyLimitBytes,
          deadlineMs: config.admission.handlerTimeoutMs,
          trustProxy: config.http.trustProxy,
        });
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // Each request's logger (its id bound) is made on its first line: most requests write none, and
    // making it eagerly ran its bindings through serialization and redaction on every request.
    childLoggerFactory: (logger, bindings, options) =>
      Object.keys(options).length > 0 ? logger.child(bindings, options) : lazyChild(logger, bindings as Record<string, string>),
    bodyLimit: config.http.bodyLimitBytes,
    requestTimeout: config.http.requestTimeoutMs,
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    // Headers must not outlive keep-alive, or a balancer may reuse a socket the server is closing.
    connectionTimeout: 0,
    // Requests that arrive while closing go on to admission, which refuses them with the coded
    // `shutting_down` (and Connection: close); Fastify's own 503 has no code.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // A caller's X-Request-Id when it is a plain token (request-id.ts), else one of Fastify's own.
    requestIdHeader: false,
    genReqId: (request) => givenRequestId(request) ?? `req-${(++requestCount).toString(36)}`,
    // request.ip is the client behind the configured proxies (HANDOVER_TRUST_PROXY), else the TCP peer.
    trustProxy: config.http.trustProxy,
    // One line per failed request (onResponse below) instead of two per request at info level.
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true, useDefaults: true } },
    // Path segments up to this length reach the routes, whose schemas answer an id that is too long with
    // 400 (ids are at most 64 characters; the router's default of 100 UTF-16 units cut in first, with a
    // 414, for valid ids of multi-unit characters too). Past it, `url_too_long` (414) below.
    routerOptions: { maxParamLength: 1024 },
    // Errors the router raises before any hook runs (an undecodable URL, an overlong path segment):
    // answered in the service's own error format, with a catalogued code.
    frameworkErrors: (err, _request, reply) => {
      const code = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'url_too_long' : 'invalid_request';
      void sendError(
        reply,
        new AppError(code, {
          message:
            code === 'url_too_long'
              ? 'A path segment of the URL is longer than any id this service uses.'
              : 'The URL is not valid (a malformed percent-encoding).',
        }),
      );
    },
    clientErrorHandler: answerClientError,
    // Node's server, as Fastify would make it, with two steps in front: refusals while shedding are
    // answered before routing (shed-before-routing.ts), and a bot's plain messages are served without
    // Fastify (message-route.ts), which gets every request they do not take. An answer that closes the connection before its
    // request's body has arrived reads the rest within bounds first, so every client sees the answer
    // (lingering-close.ts).
    serverFactory: (handler) => {
      const shed = shedBeforeRouting(ctx.admission, ctx.metrics);
      const requestTimeout = config.http.requestTimeoutMs;
      let noteRequest: (request: IncomingMessage) => void = () => {};
      const server = createServer(
        {
          requestTimeout,
          // Node enforces requestTimeout only while headersTimeout (60 s by default) is not longer.
          headersTimeout: Math.min(60_000, requestTimeout),
          // Node looks for requests past their time every 30 s by default: every quarter of the
          // timeout keeps `request_timeout` within 25% of its setting.
          connectionsCheckingInterval: Math.min(30_000, Math.max(50, requestTimeout / 4)),
          // Refused below in the service's own format, not with Node's bare 400.
          requireHostHeader: false,
        },
        (request, response) => {
          noteRequest(request);
          if (request.headers.host === undefined && request.httpVersion === '1.1') {
            return answerRaw(response, new AppError('invalid_request', { message: 'An HTTP/1.1 request must carry a Host header.' }), { close: true });
          }
          if (shed(request, response)) return;
          if (!messages?.(request, response, handler)) handler(request, response);
        },
      );
      // Node's own answers to these are a bare 417 and a closed connection; ours say what happened.
      server.on('checkExpectation', (_request: IncomingMessage, response: ServerResponse) =>
        answerRaw(response, new AppError('expectation_failed'), { close: true }),
      );
      server.on('connect', (_request: IncomingMessage, socket: Socket) => answerOnSocket(socket, new AppError('method_not_allowed')));
      noteRequest = closeGracefully(server);
      closeNeverUsedWithIdle(server);
      server.keepAliveTimeout = config.http.keepAliveTimeoutMs;
      server.setTimeout(0);
      return server;
    },
  });
  // Before any route is added: the OpenAPI document needs to know how each route is admitted.
  const routeAdmission = recordRouteFacts(app);
  app.decorate('directMessages', messages?.counts);
  installJsonParser(app);
  const { answerUnrouted } = installErrorHandling(app, { bodyLimitBytes: config.http.bodyLimitBytes });
  // Before admission, so a request's span includes its wait for a slot.
  if (tracingEnabled()) installRequestTracing(app);
  installAdmission(app, ctx.admission, { deadlineMs: config.admission.handlerTimeoutMs, bodies });
  answerUnroutedBeforeBody(app, answerUnrouted);
  endStreamsOnClose(app);
  // Closing the app (not only stopping the service) refuses new work with the coded shutting_down.
  app.addHook('preClose', async () => ctx.admission.drain());
  installRequestTelemetry(app, ctx.metrics);
  installSecurityHeaders(app);
  app.addHook('onResponse', async (request, reply) => {
    // A body the message route read before handing the request over (message-route.ts) was part of it.
    const ms = reply.elapsedTime + (bodiesReadAhead.get(request.raw)?.readMs ?? 0);
    recordRequest(ctx.metrics, request, reply.statusCode, ms);
    const line = { method: request.method, url: loggedUrl(request), status: reply.statusCode, ms };
    if (reply.statusCode >= 500) request.log.warn(line, 'request failed');
    else request.log.debug(line, 'request');
  });

  await app.register(swagger, swaggerOptions(routeAdmission));
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: docsContentSecurityPolicy });

  await app.register(
    opsRoutes(
      // While shutting down the instance is not ready: a balancer that still probes it takes it out.
      async () => (ctx.admission.isDraining ? { ok: false, code: 'shutting_down', message: 'This instance is shutting down; retry on another.' } : ctx.ready()),
      async () => ({ contentType: ctx.metrics.registry.contentType, body: await ctx.metrics.registry.metrics() }),
      () => ctx.admission.health({ stuckMs: config.admission.stuckMs }),
      config.metricsToken,
    ),
  );
  await app.register(botRoutes(ctx.deps, ctx.authenticateApiKey));
  await app.register(adminRoutes(ctx.deps, ctx.connectors, ctx.adminToken));
  await app.register(deskRoutes(ctx.deps));
  await app.register(deskCannedRoutes(ctx.deps));
  await app.register(deskNotesRoutes(ctx.deps));
  await app.register(deskHistoryRoutes(ctx.deps));
  await app.register(ratingRoutes(ctx.deps, ctx.authenticateApiKey));
  await app.register(deskSupervisorRoutes(ctx.deps));
  await app.register(attachmentRoutes(ctx.deps, ctx.authenticateApiKey));
  await app.register(connectorRoutes(ctx.deps, ctx.connectors));
  await app.register(webRoutes(config));
  if (ctx.status) await app.register(statusRoutes(ctx.status, ctx.adminToken));
  // Exempt from admission, as the status page is: a client's tools read the contract whatever the load.
  app.get('/openapi.json', { config: { admission: 'exempt' }, schema: { hide: true } }, async () => app.swagger());
  return app;
}
