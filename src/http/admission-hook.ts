import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import type { AdmissionController, Permit } from '../resilience/admission.js';
import { AppError } from '../resilience/errors.js';
import { runWithDeadline } from '../resilience/deadline.js';
import { sendError } from './error-handler.js';
import { loggedUrl } from './request-telemetry.js';

declare module 'fastify' {
  interface FastifyRequest {
    admissionPermit?: Permit;
    deadlineTimer?: NodeJS.Timeout;
  }
  interface FastifyContextConfig {
    /** 'exempt': health and metrics, always answered; 'stream': checked, but holds no slot. */
    admission?: 'exempt' | 'stream';
    /** The route stores text repaired (see storableText) instead of refusing a body with half a surrogate pair. */
    repairsText?: true;
  }
}

/**
 * Who a request is for fairness: the credential it carries (one per tenant key or agent session), or
 * its address. Derived without any lookup, so it costs nothing when the service is busiest.
 */
function callerKey(request: FastifyRequest): string {
  const auth = request.headers.authorization;
  if (auth) return createHash('sha1').update(auth).digest('base64').slice(0, 16);
  return `ip:${request.ip}`;
}

/**
 * Puts admission control in front of every route but health, readiness and metrics, and gives every
 * admitted request a deadline: past it the caller gets `503 deadline_exceeded` at once instead of
 * waiting on whatever is slow (the work already started is abandoned by its own bounds).
 */
export function installAdmission(app: FastifyInstance, admission: AdmissionController, options: { deadlineMs: number }): void {
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
    if (mode !== 'stream') {
      request.deadlineTimer = setTimeout(() => {
        if (reply.sent || reply.raw.headersSent) return;
        request.log.warn({ method: request.method, url: loggedUrl(request) }, `request ran past its ${options.deadlineMs} ms deadline`);
        sendError(reply, new AppError('deadline_exceeded', { message: `The request ran past its ${options.deadlineMs} ms deadline.` }));
      }, options.deadlineMs);
    }
    const permit = await admission.acquire(callerKey(request), mode !== 'stream');
    request.admissionPermit = permit;
    // A stream's reply is taken over (no onResponse): its end is the socket's.
    if (mode === 'stream') request.raw.once('close', () => permit.release());
  });
  const release = async (request: FastifyRequest) => {
    clearTimeout(request.deadlineTimer);
    request.admissionPermit?.release();
  };
  // While shutting down, every response closes its connection: keep-alive clients reconnect (to
  // another instance) instead of holding this one open with requests it can only refuse.
  app.addHook('onSend', async (_request, reply) => {
    if (admission.isDraining) reply.header('connection', 'close');
  });
  app.addHook('onResponse', release);
  app.addHook('onRequestAbort', release);
}
