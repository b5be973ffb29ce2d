import { Agent } from 'undici';
import { guardedConnect, type OutboundPolicy } from './outbound-guard.js';

/** Connections kept per destination origin. */
const CONNECTIONS_PER_ORIGIN = 64;
/** How long an idle connection is kept for the next call (receivers' own idle timeouts are often 5 s). */
const KEEP_ALIVE_MS = 10_000;
/** Connecting (TCP and TLS) takes at most this long, or the call's timeout when shorter. */
const CONNECT_TIMEOUT_MS = 5000;

/**
 * One keep-alive pool for calls to the outside, with every wait bounded: connect, response headers and
 * body (the caller's AbortSignal carries the overall deadline on top). Destinations are checked where
 * the connection is made (the SSRF guard, outbound-guard.ts); redirects are never followed.
 */
export function createOutboundAgent(timeoutMs: number, policy: OutboundPolicy): Agent {
  return new Agent({
    connect: guardedConnect(policy, { timeoutMs: Math.min(timeoutMs, CONNECT_TIMEOUT_MS) }),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    keepAliveTimeout: KEEP_ALIVE_MS,
    connections: CONNECTIONS_PER_ORIGIN,
  });
}

/**
 * A pool for long-lived streams (an event stream held for a whole conversation): its own connections,
 * so streams never take those deliveries need; connects bounded and guarded. Its header and idle
 * bounds are given per stream (`openStream`).
 */
export function createStreamAgent(policy: OutboundPolicy): Agent {
  return new Agent({ connect: guardedConnect(policy, { timeoutMs: CONNECT_TIMEOUT_MS }), keepAliveTimeout: 1000 });
}
