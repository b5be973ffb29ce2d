import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdmissionController, GoneSignal, Permit } from '../resilience/admission.js';
import { AppError } from '../resilience/errors.js';
import { TtlCache } from '../store/ttl-cache.js';
import { runWithDeadline } from '../resilience/deadline.js';
import { sendError } from './error-handler.js';
import { loggedUrl } from './request-telemetry.js';
import { installUploadGuard, type BodyGuard } from './upload-guard.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's admission controller, reachable from the app alone (tests inject faults through it). */
    admission: AdmissionController;
  }
  interface FastifyRequest {
    admissionPermit?: Permit;
    deadlineTimer?: NodeJS.Timeout;
  }
  interface FastifyContextConfig {
    /** 'exempt': health and metrics, always answered; 'stream': checked, but holds no slot while it is open. */
    admission?: 'exempt' | 'stream';
    /** The route stores text repaired (see storableText) instead of refusing a body with half a surrogate pair. */
    repairsText?: true;
    /**
     * The route parses its JSON body itself (`parseJsonText`), once it has decided to: the parser only
     * checks it is UTF-8 and keeps its text as `rawBody`. For the connectors' inbound URL, so that a
     * caller whose requests do not verify costs the budget before its body is parsed.
     */
    parsesBodyItself?: true;
  }
}

/**
 * Who a request is for fairness: the credential it carries (one per tenant key or agent session), or
 * its address. Derived without any lookup, so it costs nothing when the service is busiest.
 */
export function callerKey(request: FastifyRequest): string {
  const auth = request.headers.authorization;
  if (auth) return credentialKey(auth);
  return `ip:${request.ip}`;
}

/**
 * Requests admission already judged in Node's request event (shed-before-routing.ts) and let through:
 * the loop's cap counted them there, so `acquire` does not count them again.
 */
export const judgedBeforeRouting = new WeakSet<IncomingMessage>();

/** Keys of the credentials seen lately: more than an instance's live tenants and sessions. */
const credentialKeys = new TtlCache<string, string>(Infinity, 10_000);

/**
 * The caller key of a request carrying this Authorization header (also used before routing): a digest,
 * so admission's lines and figures never name a credential. Kept per header in this process's memory,
 * because hashing it twice per request was about 8 µs of each one's CPU here; bounded, so a stream of
 * made-up credentials cannot grow it.
 */
export function credentialKey(authorization: string): string {
  // Headers longer than any credential this service issues are digested each time, never kept: a flood
  // of long made-up ones must not fill memory.
  const kept = authorization.length <= MAX_KEPT_CREDENTIAL;
  let key = kept ? credentialKeys.get(authorization) : undefined;
  if (key === undefined) {
    key = createHash('sha1').update(authorization).digest('base64').slice(0, 16);
    if (kept) credentialKeys.set(authorization, key);
  }
  return key;
}

/** Longer than `Bearer ` and any key, session or admin token this service issues or is configured with. */
const MAX_KEPT_CREDENTIAL = 256;

/**
 * Puts admission control in front of every route but health, readiness and metrics, and gives every
 * admitted request a deadline: past it the caller gets `503 deadline_exceeded` at once instead of
 * waiting on whatever is slow (the work already started is abandoned by its own bounds).
 *
 * A slot is given back exactly once, when the response closes: Node's `close` comes after the answer is
 * sent and also when the connection is lost first (Fastify's `onResponse` runs only for the former). A
 * request whose client goes while it waits leaves the line; one handed a slot after its client went
 * gives it back at once and does no work.
 */
export function installAdmission(app: FastifyInstance, admission: AdmissionController, options: { deadlineMs: number; bodies: BodyGuard }): void {
  app.decorate('admission', admission);
  // First, so a slot is never held while a client's body trickles in (src/http/upload-guard.ts).
  installUploadGuard(app, options.bodies);
  // The deadline also travels with the work the request causes (resilience/deadline.ts): the rest of
  // the request's hooks and its handler run inside this scope, so the store can honour it.
  app.addHook('onRequest', (request, _reply, done) => {
    const mode = request.routeOptions.config?.admission;
    if (mode === 'exempt' || mode === 'stream') return done();
    runWithDeadline(options.deadlineMs, done);
  });
  app.addHook('onRequest', async (request, reply) => {
    const mode = request.routeOptions.config?.admission;
    if (mode === 'exempt') return;
    const response = reply.raw;
    if (mode !== 'stream') {
      request.deadlineTimer = setTimeout(() => {
        if (reply.sent || response.headersSent) return;
        request.log.warn({ method: request.method, url: loggedUrl(request) }, `request ran past its ${options.deadlineMs} ms deadline`);
        sendError(reply, new AppError('deadline_exceeded', { message: `The request ran past its ${options.deadlineMs} ms deadline.` }));
      }, options.deadlineMs);
    }
    const permit = await admitRequest(admission, callerKey(request), request.raw, response, mode !== 'stream', () => {
      clearTimeout(request.deadlineTimer);
      request.admissionPermit?.release();
    });
    if (!permit) {
      clearTimeout(request.deadlineTimer);
      return void reply.hijack();
    }
    request.admissionPermit = permit;
  });
  // While shutting down, every response closes its connection: keep-alive clients reconnect (to
  // another instance) instead of holding this one open with requests it can only refuse.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (admission.isDraining) reply.header('connection', 'close');
    done(null, payload);
  });
}

/**
 * Why a request's wait for a slot ended when its response closed: one error for all of them, as nobody
 * reads it (the client has gone), and every admitted request's response closes, so an error made per
 * close, its stack captured, was a few per cent of the HTTP thread.
 */
const RESPONSE_CLOSED = new Error('the response closed');

/**
 * Asks admission for a slot for one request (or, `holdsSlot` false, a stream's check), and ties it to
 * the response: a slot is given back exactly once, when the response closes (Node's `close` comes after
 * the answer is sent and also when the connection is lost first), through `onClose`, which the caller
 * gives the permit to release. Resolves to the permit, or to undefined when the client went before or
 * while it waited (nobody to answer; the work is not started). Rejects with admission's refusal.
 */
export async function admitRequest(
  admission: AdmissionController,
  key: string,
  raw: IncomingMessage,
  response: ServerResponse,
  holdsSlot: boolean,
  onClose: () => void,
): Promise<Permit | undefined> {
  // The connection may have gone while the body was read: then 'close' has fired already.
  if (response.closed || response.destroyed) return undefined;
  const gone = goneSignal();
  response.once('close', () => {
    gone.abort(RESPONSE_CLOSED);
    onClose();
  });
  // Readiness asks this of every held slot: a connection Node has torn down has no client left.
  const live = () => !response.destroyed && raw.socket?.destroyed !== true;
  let permit: Permit;
  try {
    permit = await admission.acquire(key, holdsSlot, { signal: gone, live, loopShareTaken: judgedBeforeRouting.has(raw) });
  } catch (err) {
    // Its client left while it waited: nobody to answer.
    if (gone.aborted) return undefined;
    throw err;
  }
  if (gone.aborted) {
    permit.release();
    return undefined;
  }
  return permit;
}

/**
 * Told when a request's response closes, with what admission reads of an AbortSignal. Every admitted
 * request needs one, and an AbortController (an EventTarget) cost more than the rest of admission.
 */
function goneSignal(): GoneSignal & { abort(reason: Error): void } {
  let listener: (() => void) | undefined;
  const gone = {
    aborted: false,
    reason: undefined as unknown,
    addEventListener(_type: 'abort', fn: () => void) {
      listener = fn;
    },
    removeEventListener(_type: 'abort', fn: () => void) {
      if (listener === fn) listener = undefined;
    },
    abort(reason: Error) {
      if (gone.aborted) return;
      gone.aborted = true;
      gone.reason = reason;
      const fn = listener;
      listener = undefined;
      fn?.();
    },
  };
  return gone;
}
