import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';
import type { Logger } from './logger.js';
import type { TracingOptions } from './tracing-options.js';

export type { TracingOptions };

/**
 * OpenTelemetry tracing, off unless an OTLP endpoint is configured. Only the small API package is
 * loaded always; the SDK (exporter, span processor, context manager) is imported when tracing starts.
 * Every helper here checks one flag first, so with tracing off the hot path costs a function call and
 * a branch, and no span objects are made.
 *
 * Spans never carry message text, request bodies, URLs of tenants' webhooks or credentials: only ids,
 * route templates, hosts, status codes and outcomes.
 */

export interface Tracing {
  /** Sends what is still buffered (bounded) and unregisters. */
  shutdown(): Promise<void>;
}

export { SpanKind, SpanStatusCode };

let enabled = false;

export function tracingEnabled(): boolean {
  return enabled;
}

/** The traces URL configured, or undefined (tracing off). */
export function tracesUrl(config: { endpoint: string | undefined; tracesEndpoint: string | undefined }): string | undefined {
  if (config.tracesEndpoint) return config.tracesEndpoint;
  return config.endpoint ? `${config.endpoint}/v1/traces` : undefined;
}

/**
 * Loads the SDK and registers it for this process. The OpenTelemetry API is process-wide: a second
 * start while one is running keeps the first (logged).
 */
export async function startTracing(options: TracingOptions, log: Logger): Promise<Tracing> {
  if (enabled) {
    log.warn('tracing is already running in this process; the first registration is kept');
    return { async shutdown() {} };
  }
  const { registerTracing } = await import('./tracing-sdk.js');
  const registered = registerTracing(options);
  enabled = true;
  log.info({ url: new URL(options.url).origin }, 'tracing on: spans are exported over OTLP/HTTP');
  return {
    async shutdown() {
      enabled = false;
      await registered.shutdown();
    },
  };
}

/** The W3C `traceparent` of the span active now, to store with work done later; null when there is none. */
export function currentTraceparent(): string | null {
  if (!enabled) return null;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ?? null;
}

const noHeaders: Readonly<Record<string, string>> = Object.freeze({});

/** `traceparent` (and `tracestate`) of the active span for an outbound request, so the receiver can join the trace. */
export function traceHeaders(): Readonly<Record<string, string>> {
  if (!enabled) return noHeaders;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** Writes `traceparent` (and `tracestate`) of the active span into a request's own headers object. */
export function injectTraceHeaders(headers: Record<string, string>): void {
  if (enabled) propagation.inject(context.active(), headers);
}

export interface SpanOptions {
  kind: SpanKind;
  /** A function, so that nothing is computed while tracing is off. */
  attributes?: () => Attributes;
  /**
   * A stored `traceparent` to continue (null: start a new trace). Absent: the span is a child of the
   * span active now, if any.
   */
  parent?: string | null;
}

/**
 * Runs `fn` inside a new span (active for everything `fn` awaits) and ends the span after. A thrown
 * error marks the span failed with `error.type` only: error messages may quote a vendor's answer,
 * which may quote a message.
 */
export function inSpan<T>(name: string, options: SpanOptions, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  // Not async itself: with tracing off, the caller gets fn's own promise, with no extra turn.
  return enabled ? inNewSpan(name, options, fn) : fn(undefined);
}

async function inNewSpan<T>(name: string, options: SpanOptions, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  const parent =
    options.parent === undefined ? context.active() : options.parent ? propagation.extract(ROOT_CONTEXT, { traceparent: options.parent }) : ROOT_CONTEXT;
  const span = trace.getTracer('handover').startSpan(name, { kind: options.kind, ...(options.attributes ? { attributes: options.attributes() } : {}) }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    markFailed(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/**
 * Runs `fn` with tracing suppressed: nothing it calls makes a span (the start's warm-up, whose calls
 * are the service's own and go nowhere). The SDK's part is loaded only when tracing is on.
 */
export async function untraced<T>(fn: () => Promise<T>): Promise<T> {
  if (!enabled) return fn();
  const { suppressTracing } = await import('@opentelemetry/core');
  return context.with(suppressTracing(context.active()), fn);
}

/** Marks a span failed, naming the kind of error (its code, or its class), never its message. */
export function markFailed(span: Span, err: unknown): void {
  const e = err as { statusCode?: unknown; code?: unknown; name?: unknown; cause?: { code?: unknown } } | null;
  const type =
    typeof e?.statusCode === 'number'
      ? String(e.statusCode) // an HTTP answer, as the HTTP conventions name it
      : typeof e?.code === 'string'
        ? e.code
        : typeof e?.cause?.code === 'string'
          ? e.cause.code // a network error wrapped by the caller (ECONNREFUSED, …)
          : typeof e?.name === 'string'
            ? e.name
            : 'Error';
  span.setAttribute('error.type', type);
  span.setStatus({ code: SpanStatusCode.ERROR });
}

/** Adds attributes to the span active now (for facts known only deeper down, like a connector's type). */
export function annotateActiveSpan(attributes: Attributes): void {
  if (!enabled) return;
  trace.getActiveSpan()?.setAttributes(attributes);
}

/**
 * Attributes of an outbound HTTP call (CLIENT span): method and destination host only. Not the full
 * URL: tenants' webhook URLs may carry tokens in their path or query.
 */
export function clientCallAttributes(method: string, url: string): Attributes {
  const u = new URL(url);
  return {
    'http.request.method': method,
    'server.address': u.hostname,
    'server.port': Number(u.port || (u.protocol === 'https:' ? 443 : 80)),
    'url.scheme': u.protocol.slice(0, -1),
  };
}
