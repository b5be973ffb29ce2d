import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import { GUARD_CODES, type Metrics } from '../monitoring/metrics.js';
import { AppError } from '../resilience/errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set when admission control refused this request: the cause, for the status windows. */
    refusedFor?: string;
  }
}

/**
 * Counts one finished request: the OpenTelemetry duration histogram by route template (never the raw
 * URL, which carries ids), and, for the bot API, the in-memory window the status page judges.
 * Streams are left out: their duration is the client's session, not a response time.
 */
export function recordRequest(metrics: Metrics, request: FastifyRequest, status: number, elapsedMs: number): void {
  if (request.routeOptions.config?.admission === 'stream') return;
  const route = request.routeOptions.url ?? 'unmatched';
  metrics.httpRequestDuration.observe({ http_request_method: request.method, http_route: route, http_response_status_code: String(status) }, elapsedMs / 1000);
  const window = statusWindow(metrics, route);
  if (!window) return;
  window.recordRequest(elapsedMs, status);
  if (request.refusedFor) window.recordRejection(request.refusedFor);
}

/**
 * The status page's window a request of this path (route template or URL path) counts in: the desk's,
 * the bot API's, or none (admin, operations). Sign-in is slow on purpose (the password hash): it is
 * judged by its own guards and metrics, not within the desk's latency, where one sign-in made a fresh
 * desk look degraded.
 */
export function statusWindow(metrics: Metrics, path: string): Metrics['requests'] | null {
  if (path === '/v1/desk/login') return null;
  if (path.startsWith('/v1/desk')) return metrics.deskRequests;
  return path.startsWith('/v1/') && !path.startsWith('/v1/admin') ? metrics.requests : null;
}

/**
 * Two hooks that give each request its context. Once authentication has run, every log line of the
 * request carries the tenant and handover it is about (the request id is already on it), so one grep
 * follows a conversation across lines. And a refusal at the door remembers its cause for recordRequest.
 */
export function installRequestTelemetry(app: FastifyInstance, metrics: Metrics): void {
  const guarded = new Set<string>(GUARD_CODES);
  // A refusal at the door is an AppError naming its cause; remember it so the refusal is counted
  // against the part of the API it was for (bot API or desk).
  app.addHook('onError', async (request, _reply, error) => {
    if (error instanceof AppError && guarded.has(error.code)) metrics.guardRefusals.inc({ code: error.code });
    const cause = error instanceof AppError ? error.details?.cause : undefined;
    if (typeof cause === 'string' && !request.admissionPermit) request.refusedFor = cause;
  });
  app.addHook('preHandler', (request, _reply, done) => {
    const tenantId = typeof request.tenantId === 'string' ? request.tenantId : undefined;
    const params = request.params as Record<string, unknown> | undefined;
    const handoverId = params && typeof params.id === 'string' && request.routeOptions.url?.includes('/handovers/:id') ? params.id : undefined;
    if (tenantId !== undefined || handoverId !== undefined) {
      request.log = lazyChild(request.log, {
        ...(tenantId !== undefined ? { tenantId } : {}),
        ...(handoverId !== undefined ? { handoverId } : {}),
      });
    }
    done();
  });
}

/**
 * `parent.child(bindings)`, made on the first line actually written. Most requests write none, and a
 * child of the request's own child logger cost about 20 µs (its bindings serialized and run through
 * redaction) — a few per cent of a message's whole CPU on the hot path.
 *
 * One small object per request, its methods on the prototype: two of these are made for every request,
 * and each lives as long as the request does. Built of closures (eleven per logger), they were about a
 * third of the bytes a request kept alive across young-generation collections.
 */
export function lazyChild(parent: FastifyBaseLogger, bindings: Record<string, string>): FastifyBaseLogger {
  return new LazyChild(parent, bindings) as unknown as FastifyBaseLogger;
}

class LazyChild {
  private real: FastifyBaseLogger | undefined = undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Record<string, string>,
  ) {}

  get level(): string {
    return (this.real ?? this.parent).level;
  }

  set level(level: string) {
    this.made().level = level;
  }

  silent(): void {}

  /** Asked by a lazy child of this one, so that it too stays unmade for lines below the level. */
  isLevelEnabled(level: string): boolean {
    return enabledOn(this.real ?? this.parent, level);
  }

  child(more: Record<string, unknown>, options?: object): FastifyBaseLogger {
    return this.made().child(more, options);
  }

  fatal(...args: unknown[]): void {
    this.write('fatal', args);
  }

  error(...args: unknown[]): void {
    this.write('error', args);
  }

  warn(...args: unknown[]): void {
    this.write('warn', args);
  }

  info(...args: unknown[]): void {
    this.write('info', args);
  }

  debug(...args: unknown[]): void {
    this.write('debug', args);
  }

  trace(...args: unknown[]): void {
    this.write('trace', args);
  }

  private write(level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace', args: unknown[]): void {
    if (!this.real && !enabledOn(this.parent, level)) return;
    const target = this.made();
    (target[level] as (...a: unknown[]) => void).apply(target, args);
  }

  private made(): FastifyBaseLogger {
    return (this.real ??= this.parent.child(this.bindings));
  }
}

/**
 * The request's URL as a log line shows it: the path without the query (a query may name an end user,
 * as the audit log's `erasedUserId` does), and an end user's id left as its route parameter
 * (`/v1/users/:userId/export`): the id of an erased user must not stay behind in the logs.
 */
export function loggedUrl(request: FastifyRequest): string {
  const path = request.url.split('?')[0]!;
  const route = request.routeOptions.url;
  if (!route?.includes(':userId')) return path;
  const params = (request.params ?? {}) as Record<string, unknown>;
  return route.replace(/:(\w+)/g, (whole, name: string) => {
    const value = params[name];
    return name !== 'userId' && typeof value === 'string' ? encodeURIComponent(value) : whole;
  });
}

function enabledOn(logger: FastifyBaseLogger, level: string): boolean {
  const check = (logger as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled;
  return check ? check.call(logger, level) : true;
}
