import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';
import type { FastifyBaseLogger } from 'fastify';
import type { Deps } from '../deps.js';
import { postUserMessage } from '../handover/messages.js';
import { GUARD_CODES, type Metrics } from '../monitoring/metrics.js';
import type { AdmissionController, Permit } from '../resilience/admission.js';
import { runWithDeadline } from '../resilience/deadline.js';
import { AppError, toError } from '../resilience/errors.js';
import type { ApiKeyIdentity } from '../tenants/tenants.js';
import { admitRequest, credentialKey } from './admission-hook.js';
import { BEARER, mayChange } from './auth.js';
import { answerableError, answerRaw, MAX_JSON_DEPTH, nestedDeeperThan, surrogateEscape, writeJson } from './error-handler.js';
import { lazyChild, statusWindow } from './request-telemetry.js';
import { bodiesReadAhead, readGuardedBody, type BodyGuard } from './upload-guard.js';
import { givenRequestId } from './request-id.js';

/** The route this serves, as Fastify names it (metrics, the status page's window, the OpenAPI document). */
const MESSAGE_ROUTE = '/v1/handovers/:id/messages';

/**
 * An id of the URL that stands for itself: characters no percent-decoding changes, no longer than the
 * route's `IdParams` allows. Anything else is left to Fastify's router and its answers.
 */
const MESSAGE_PATH = /^\/v1\/handovers\/([A-Za-z0-9._~-]{1,64})\/messages$/;
const JSON_TYPE = /^application\/json(?:;\s*charset=utf-8)?$/i;

export interface MessageRouteContext {
  deps: Deps;
  admission: AdmissionController;
  metrics: Metrics;
  authenticateApiKey(apiKey: string): Promise<ApiKeyIdentity>;
  bodies: BodyGuard;
  bodyLimitBytes: number;
  deadlineMs: number;
  /** HANDOVER_TRUST_PROXY as the app was given it: the proxies whose X-Forwarded-For is believed. */
  trustProxy: false | string;
}

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

/** What the route took: requests it served itself, and those it read the body of and handed to Fastify. */
export interface DirectMessageCounts {
  served: number;
  handedOver: number;
}

/**
 * Serves the request and answers true, or answers false for Fastify (`fastify`, also given any it hands
 * over later) to serve it.
 */
export type DirectMessageRoute = ((request: IncomingMessage, response: ServerResponse, fastify: Handler) => boolean) & { counts: DirectMessageCounts };

/**
 * The hot route, `POST /v1/handovers/:id/messages` with a plain text message, served from Node's request
 * event instead of through Fastify: every message a bot relays comes this way, and Fastify's request and
 * reply objects, hook chain, parser and serializer cost the thread that answers about as much again as
 * Node's own HTTP server does.
 *
 * It serves exactly the requests whose outcome cannot depend on anything it leaves out, and hands every
 * other to Fastify, which then answers as it always has: its preconditions are read from the head
 * (method, a path whose id needs no decoding, a JSON content type, a Content-Length within the body
 * limit, a Bearer credential, no tracing), and the body, once read within the upload guard's bounds,
 * must be a JSON object with a `text` string and at most an `id` string, both within the schema's
 * lengths, and nothing that the app's JSON parser refuses or repairs (deep nesting, prototype keys, lone
 * surrogate escapes). Everything past that point is what the Fastify route does, in the same order
 * (admission, then the credential, then the handler), with the same answers: admission's slot and
 * deadline (admission-hook.ts), the API key and its scope, `postUserMessage`, and the catalogued errors
 * in the app's error format; and it is counted where Fastify's answers are counted (the request
 * histogram, the status page's window, guard refusals) and logged as they are.
 *
 * A request handed over keeps the body already read (`bodiesReadAhead`), so nothing is read twice.
 */
export function messageRouteBeforeFastify(ctx: MessageRouteContext): DirectMessageRoute {
  const guarded = new Set<string>(GUARD_CODES);
  const clientAddress = addressOf(ctx.trustProxy);
  const window = statusWindow(ctx.metrics, MESSAGE_ROUTE);
  const counts: DirectMessageCounts = { served: 0, handedOver: 0 };
  let requests = 0;

  // The duration histogram's series of this route, one per status.
  const durationOf = (status: number) =>
    ctx.metrics.httpRequestDuration.keyed(`${MESSAGE_ROUTE} ${status}`, () => ({
      http_request_method: 'POST',
      http_route: MESSAGE_ROUTE,
      http_response_status_code: String(status),
    }));

  /** Counted and logged as the app's end-of-response hook counts and logs an answer. */
  const logged = (request: IncomingMessage, log: FastifyBaseLogger, startedAt: number, status: number, refusedFor?: string) => {
    const ms = performance.now() - startedAt;
    durationOf(status).observe(ms / 1000);
    if (window) {
      window.recordRequest(ms, status);
      if (refusedFor) window.recordRejection(refusedFor);
    }
    const line = { method: 'POST', url: request.url, status, ms };
    if (status >= 500) log.warn(line, 'request failed');
    else log.debug(line, 'request');
  };

  /**
   * An error answered as the app's error handler answers it (`quiet`: as admission's deadline timer
   * does, without the handler's line of its own), counted and logged as its hooks do.
   */
  const fail = (
    request: IncomingMessage,
    response: ServerResponse,
    log: FastifyBaseLogger,
    startedAt: number,
    thrown: unknown,
    permit: Permit | undefined,
    options: { close?: boolean; quiet?: boolean } = {},
  ) => {
    if (response.headersSent || response.destroyed) return;
    const err = options.quiet && thrown instanceof AppError ? thrown : answerableError(thrown, log);
    if (guarded.has(err.code)) ctx.metrics.guardRefusals.inc({ code: err.code });
    const cause = err.details?.cause;
    answerRaw(response, err, { close: options.close === true || ctx.admission.isDraining });
    logged(request, log, startedAt, err.status, typeof cause === 'string' && !permit ? cause : undefined);
  };

  const serve = async (request: IncomingMessage, response: ServerResponse, handoverId: string, token: string, startedAt: number): Promise<boolean> => {
    const reqId = requestId(request, ++requests);
    let log = lazyChild(ctx.deps.log as FastifyBaseLogger, { reqId });
    let body: Buffer;
    try {
      const outcome = await readGuardedBody(request, response, () => clientAddress(request), ctx.bodyLimitBytes, ctx.bodies);
      if ('gone' in outcome) {
        // Node's own answer (a request that did not arrive in time: error-handler.ts, answerClientError)
        // is counted as Fastify's end-of-response hook counted it; a client that left has none.
        counts.served++;
        if (response.headersSent) logged(request, log, startedAt, response.statusCode);
        return true;
      }
      body = outcome.body;
    } catch (err) {
      counts.served++;
      fail(request, response, log, startedAt, err, undefined, { close: true });
      return true;
    }
    const message = plainMessage(body, Number(request.headers['content-length']));
    if (!message) {
      counts.handedOver++;
      bodiesReadAhead.set(request, { body, readMs: performance.now() - startedAt });
      return false;
    }
    counts.served++;
    // From here on as admission's hooks and the route have it: a deadline for the work the request
    // causes and for its answer, a slot, the credential, the handler; once answered (the deadline), no
    // further step starts.
    await runWithDeadline(ctx.deadlineMs, async () => {
      let permit: Permit | undefined;
      const deadline = setTimeout(() => {
        if (response.headersSent) return;
        log.warn({ method: 'POST', url: request.url }, `request ran past its ${ctx.deadlineMs} ms deadline`);
        const err = new AppError('deadline_exceeded', { message: `The request ran past its ${ctx.deadlineMs} ms deadline.` });
        fail(request, response, log, startedAt, err, permit, { quiet: true });
      }, ctx.deadlineMs);
      try {
        permit = await admitRequest(ctx.admission, credentialKey(request.headers.authorization!), request, response, true, () => {
          clearTimeout(deadline);
          permit?.release();
        });
        if (!permit) return clearTimeout(deadline);
        if (response.headersSent) return;
        const identity = await ctx.authenticateApiKey(token);
        mayChange(identity, 'POST');
        if (response.headersSent) return;
        log = lazyChild(ctx.deps.log as FastifyBaseLogger, { reqId, tenantId: identity.tenantId, handoverId });
        const { id } = await postUserMessage(ctx.deps, { tenantId: identity.tenantId, handoverId, clientId: message.id, text: message.text });
        if (response.headersSent || response.destroyed) return;
        writeJson(response, 202, JSON.stringify({ id }), ctx.admission.isDraining);
        logged(request, log, startedAt, 202);
      } catch (err) {
        fail(request, response, log, startedAt, err, permit);
      }
    });
    return true;
  };

  const route = (request: IncomingMessage, response: ServerResponse, fastify: Handler): boolean => {
    const handoverId = matchRequest(request, ctx.bodyLimitBytes);
    if (handoverId === undefined) return false;
    const token = BEARER.exec(request.headers.authorization!)?.[1];
    if (!token) return false;
    const startedAt = performance.now();
    serve(request, response, handoverId, token, startedAt)
      .then((taken) => {
        if (!taken) fastify(request, response);
      })
      .catch((err: unknown) => {
        ctx.deps.log.error({ err: toError(err) }, 'message route failed');
        if (!response.headersSent && !response.destroyed) answerRaw(response, new AppError('internal_error'));
      });
    return true;
  };
  return Object.assign(route, { counts });
}

/** The handover's id when the request's head is one this route serves; undefined otherwise. */
function matchRequest(request: IncomingMessage, bodyLimitBytes: number): string | undefined {
  if (request.method !== 'POST') return undefined;
  const path = MESSAGE_PATH.exec(request.url ?? '');
  if (!path) return undefined;
  const headers = request.headers;
  if (headers.authorization === undefined || headers['transfer-encoding'] !== undefined || headers.expect !== undefined) return undefined;
  const type = headers['content-type'];
  if (type === undefined || !JSON_TYPE.test(type)) return undefined;
  const length = headers['content-length'];
  if (length === undefined || !/^[1-9]\d{0,9}$/.test(length) || Number(length) > bodyLimitBytes) return undefined;
  return path[1];
}

/**
 * The message when the body is one this route serves: a JSON object of `text` (a string of at most
 * 20,000 characters) and an optional `id` (1–256 characters), which the app's parser and the route's
 * schema would take as it is. Lengths are compared in UTF-16 units, never fewer than the characters the
 * schema counts, so a string within them is within the schema's; one over them goes to Fastify to judge.
 */
function plainMessage(body: Buffer, announced: number): { text: string; id?: string } | undefined {
  // Bytes that are not UTF-8 go to Fastify's parser, which refuses them (decoded, they would be stored
  // with replacement characters in their place).
  if (body.length !== announced || !isUtf8(body)) return undefined;
  const text = body.toString('utf8');
  if (text.includes('__proto__') || text.includes('"constructor"') || surrogateEscape.test(text) || nestedDeeperThan(text, MAX_JSON_DEPTH)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const fields = parsed as Record<string, unknown>;
  for (const key in fields) if (key !== 'text' && key !== 'id') return undefined;
  const { text: message, id } = fields;
  if (typeof message !== 'string' || message.length > 20_000) return undefined;
  if (id === undefined) return { text: message };
  if (typeof id !== 'string' || id.length < 1 || id.length > 256) return undefined;
  return { text: message, id };
}

/** The client's address as Fastify's `request.ip` has it: the TCP peer, or the first untrusted hop. */
function addressOf(trustProxy: false | string): (request: IncomingMessage) => string {
  if (trustProxy === false) return (request) => request.socket.remoteAddress ?? '';
  const trust = proxyAddr.compile(trustProxy.split(',').map((entry) => entry.trim()));
  return (request) => {
    const addresses = proxyAddr.all(request, trust);
    return addresses[addresses.length - 1] ?? '';
  };
}

/** The request id its log lines carry: the caller's X-Request-Id, as Fastify takes it, or one of ours. */
function requestId(request: IncomingMessage, n: number): string {
  return givenRequestId(request) ?? `direct-${n.toString(36)}`;
}
