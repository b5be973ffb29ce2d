import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { postSignedJson } from './signed-webhook.js';
import type { Logger } from '../telemetry/logger.js';
import { untraced } from '../telemetry/tracing.js';

/** Calls in flight at once during the warm-up. */
const PARALLEL = 8;
/** Each call's bound, and the whole warm-up's: a start is never held up longer by it. */
const CALL_TIMEOUT_MS = 1000;
const TOTAL_MS = 3000;

export interface WarmUpResult {
  calls: number;
  ms: number;
}

/**
 * Sends `calls` signed webhook calls, shaped like a helpdesk's message event, to a server of its own on
 * the loopback interface, through an HTTP client of its own: the code a delivery runs (the HTTP client,
 * its response parser, the signing) is compiled and optimised before the first real delivery needs it.
 * Nothing leaves the process, nothing is written, no span is made. Not warmed: TLS, and the connect
 * path of the service's own pool (its guard refuses loopback addresses), which a real helpdesk's first
 * calls still run cold.
 *
 * Measured on a new instance offered half its capacity at once (docs/overload.md, "The start"): for
 * its first second, the thread that delivers ran flat out on code not yet optimised, and on
 * PostgreSQL that thread also writes the accept path's batches, which then waited.
 *
 * Bounded in every wait (each call, the whole warm-up); a failure is the caller's to log, never a
 * reason not to start.
 */
export function warmUpDelivery(calls: number): Promise<WarmUpResult> {
  return untraced(() => warmUp(calls));
}

async function warmUp(calls: number): Promise<WarmUpResult> {
  const started = performance.now();
  // A secret of its own each time, used for these calls alone.
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  // Not the service's pool, whose guard refuses loopback addresses: the same client code, another instance.
  const agent = new Agent({
    keepAliveTimeout: TOTAL_MS,
    connections: PARALLEL,
    headersTimeout: CALL_TIMEOUT_MS,
    bodyTimeout: CALL_TIMEOUT_MS,
    connect: { timeout: CALL_TIMEOUT_MS },
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/warm-up`;
  const stop = new AbortController();
  const deadline = stop.signal;
  const timer = setTimeout(() => stop.abort(new Error(`the warm-up took longer than ${TOTAL_MS} ms`)), TOTAL_MS);
  let sent = 0;
  try {
    const caller = async () => {
      while (sent < calls && !deadline.aborted) {
        const i = sent++;
        const event = {
          kind: 'message.created',
          eventId: `evt_warm_up_${i}`,
          handoverId: 'ho_warm_up',
          conversationId: 'conv_warm_up',
          message: { id: `msg_warm_up_${i}`, text: 'hello, I need help with my order', attachments: [], createdAt: new Date().toISOString() },
        };
        await postSignedJson(agent, url, secret, event.eventId, event, deadline);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, caller));
  } finally {
    clearTimeout(timer);
    await agent.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  return { calls: sent, ms: Math.round(performance.now() - started) };
}

/** The warm-up, as a start runs it: `calls` 0 skips it; what it did, or why it stopped, is logged. */
export async function warmUpDeliveryAtStart(calls: number, log: Logger): Promise<void> {
  if (calls <= 0) return;
  try {
    const { calls: sent, ms } = await warmUpDelivery(calls);
    log.info({ calls: sent, ms }, `delivery warmed up: ${sent} loopback calls in ${ms} ms`);
  } catch (err) {
    log.warn({ err }, 'the delivery warm-up stopped early; the first deliveries run on code not yet optimised');
  }
}
