import { createHmac, randomUUID } from 'node:crypto';
import { keyOf, startSignedWebhookServer, type SignedWebhookServer } from './signed-webhook-server.js';

/**
 * A helpdesk speaking the generic webhook protocol: receives our signed events and sends its own,
 * signed with the same secret, to the connector's inbound URL.
 */
export interface GenericHelpdesk extends SignedWebhookServer {
  secret: string;
  inboundUrl: string;
  /** Sends one event; returns the HTTP status and body the service answered. */
  send(event: { type: string; handoverId: string; data?: unknown }, options?: { webhookId?: string; secret?: string; timestamp?: number }): Promise<{ status: number; body: any }>;
  /** Events of one type received for one handover, in arrival order. */
  eventsFor(handoverId: string, type?: string): Array<Record<string, unknown>>;
}

export async function startGenericHelpdesk(secret: string): Promise<GenericHelpdesk> {
  const server = await startSignedWebhookServer(() => secret);
  const helpdesk = server as GenericHelpdesk;
  helpdesk.secret = secret;
  helpdesk.inboundUrl = '';
  helpdesk.send = async (event, options = {}) => {
    const body = JSON.stringify({ data: {}, ...event });
    const id = options.webhookId ?? `hd_${randomUUID()}`;
    const ts = options.timestamp ?? Math.floor(Date.now() / 1000);
    const signature = createHmac('sha256', keyOf(options.secret ?? secret)).update(`${id}.${ts}.${body}`).digest('base64');
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
