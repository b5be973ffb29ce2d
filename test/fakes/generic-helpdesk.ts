import { createHmac, randomUUID } from 'node:crypto';
import { keyOf, startSignedWebhookServer, type SignedWebhookServer } from './signed-webhook-server.js';

/** The result a helpdesk in batch mode gives one event: or `omit` to leave it out of the answer. */
export type BatchEventAnswer = { status: 'ok' | 'retry' | 'failed'; error?: string } | 'omit';

export interface BatchCallReceived {
  webhookId: string;
  /** The call's events as they came (envelopes). */
  events: Array<{ id: string; type: string; handoverId: string; [field: string]: unknown }>;
  receivedAt: number;
}

/**
 * A helpdesk speaking the generic webhook protocol: receives our signed events and sends its own,
 * signed with the same secret, to the connector's inbound URL.
 *
 * With `{ batch: true }` it speaks batch mode: every call must be `{"type":"batch","events":[…]}` (a
 * single event is refused as a problem, and a batch without it), the signature is checked over the batch
 * body, and it answers `{"results":[…]}` with `answerEvent`'s result per event. Events answered `ok` are
 * recorded in `received` one by one, as a receiver that took them; the others are not.
 */
export interface GenericHelpdesk extends SignedWebhookServer {
  secret: string;
  inboundUrl: string;
  /** Batch calls answered with results (not those `respond` refused), in the order answered (batch mode only). */
  batches: BatchCallReceived[];
  /** Batch mode: the result of one event; `attempt` counts the arrivals of its event id (default ok). */
  answerEvent: (event: Record<string, unknown>, attempt: number) => BatchEventAnswer;
  /** Sends one event; returns the HTTP status and body the service answered. */
  send(
    event: { type: string; handoverId: string; data?: unknown },
    options?: { webhookId?: string; secret?: string; timestamp?: number },
  ): Promise<{ status: number; body: any }>;
  /** Events of one type received for one handover, in arrival order. */
  eventsFor(handoverId: string, type?: string): Array<Record<string, unknown>>;
}

export async function startGenericHelpdesk(secret: string, options: { batch?: boolean } = {}): Promise<GenericHelpdesk> {
  const server = await startSignedWebhookServer(() => secret);
  const helpdesk = server as GenericHelpdesk;
  helpdesk.secret = secret;
  helpdesk.inboundUrl = '';
  helpdesk.batches = [];
  helpdesk.answerEvent = () => ({ status: 'ok' });
  const arrivals = new Map<string, number>();
  helpdesk.unpack = (body, webhookId) => {
    const isBatch = body.type === 'batch';
    if (!options.batch) return isBatch ? { refuse: 'a batch call to a helpdesk not in batch mode' } : null;
    if (!isBatch || !Array.isArray(body.events)) return { refuse: `a call of type ${String(body.type)} in batch mode` };
    const events = body.events as Array<Record<string, unknown>>;
    helpdesk.batches.push({ webhookId, events: events as BatchCallReceived['events'], receivedAt: Date.now() });
    const taken: Array<Record<string, unknown>> = [];
    const results: Array<Record<string, unknown>> = [];
    for (const event of events) {
      const id = String(event.id);
      const attempt = (arrivals.get(id) ?? 0) + 1;
      arrivals.set(id, attempt);
      const answer = helpdesk.answerEvent(event, attempt);
      if (answer === 'omit') continue;
      if (answer.status === 'ok') taken.push(event);
      results.push({ id, ...answer });
    }
    return { taken, answer: JSON.stringify({ results }) };
  };
  helpdesk.send = async (event, options = {}) => {
    const body = JSON.stringify({ data: {}, ...event });
    const id = options.webhookId ?? `hd_${randomUUID()}`;
    const ts = options.timestamp ?? Math.floor(Date.now() / 1000);
    const signature = createHmac('sha256', keyOf(options.secret ?? secret))
      .update(`${id}.${ts}.${body}`)
      .digest('base64');
    const res = await fetch(helpdesk.inboundUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `v1,${signature}` },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  helpdesk.eventsFor = (handoverId, type) =>
    helpdesk.received.map((r) => r.body).filter((b) => b.handoverId === handoverId && (type === undefined || b.type === type));
  return helpdesk;
}
