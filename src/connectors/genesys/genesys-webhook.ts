import { createHmac } from 'node:crypto';
import type { InboundEventByRef, InboundRequest, InboundResult } from '../connector.js';
import { cutInboundText, equalSecrets, headerValue } from '../connector-helpers.js';
import { readAttachments } from './genesys-content.js';

interface OutboundMessage {
  id: string;
  type: string;
  direction?: unknown;
  text?: unknown;
  content?: unknown;
  originatingEntity?: unknown;
  status?: unknown;
  events?: unknown;
  channel: { to: { id: string }; time?: unknown; from?: { nickname?: unknown } | null };
}

/** A normalized message as the fields we act on need it; the rest is passed over. */
function readMessage(body: unknown): OutboundMessage | string {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return 'not a JSON object';
  const m = body as Record<string, unknown>;
  if (typeof m.id !== 'string' || !m.id) return '/id: a message id is required';
  if (typeof m.type !== 'string') return '/type: a message type is required';
  const channel = m.channel as { to?: { id?: unknown } } | null | undefined;
  if (!channel || typeof channel !== 'object' || !channel.to || typeof channel.to !== 'object' || typeof channel.to.id !== 'string' || !channel.to.id)
    return '/channel/to/id: the recipient is required';
  return body as OutboundMessage;
}

/**
 * Verify → parse one outbound webhook request of an Open Messaging integration. Genesys signs each
 * request with HMAC-SHA256 of its body under the integration's outbound notification webhook signature
 * secret token and sends `sha256=<base64>` in `X-Hub-Signature-256`; there is no timestamp, so a
 * redelivery (up to five retries after a timeout or a 429/5xx) is caught by the message id and time.
 *
 * Kept: agents' text and attachments (`type: Text` or `Structured`, `direction: Outbound`), typing
 * (`Event` with `Typing` `On`), the agent disconnecting (`Event` with `Presence` `Disconnect`).
 * Acknowledged and dropped: receipts of our own messages, other events and types.
 */
export function handleGenesysInbound(config: { webhookSecret: string }, request: InboundRequest): InboundResult {
  const signature = headerValue(request.headers, 'x-hub-signature-256');
  if (!signature) return { ok: false, reason: 'bad_signature', message: 'X-Hub-Signature-256 is required' };
  const expected = `sha256=${createHmac('sha256', config.webhookSecret).update(request.rawBody).digest('base64')}`;
  if (!equalSecrets(signature, expected)) return { ok: false, reason: 'bad_signature', message: 'X-Hub-Signature-256 does not match' };
  const message = readMessage(request.body);
  if (typeof message === 'string') return { ok: false, reason: 'invalid_body', message: `not an Open Messaging normalized message: ${message}` };
  const time = typeof message.channel.time === 'string' ? message.channel.time : '';
  const status = typeof message.status === 'string' ? `:${message.status}` : '';
  // A receipt names the message it is about: its status tells receipts of one message apart.
  const receiptId = `${message.type}:${message.id}${status}:${time}`;
  return { ok: true, receipts: [{ receiptId, events: message.direction === 'Outbound' ? toEvents(message) : [] }] };
}

function toEvents(message: OutboundMessage): InboundEventByRef[] {
  const externalRef = message.channel.to.id;
  switch (message.type) {
    case 'Text':
    case 'Structured': {
      const text = typeof message.text === 'string' ? message.text : '';
      const attachments = readAttachments(message.content);
      if (!text && attachments.length === 0) return [];
      // Messages of Genesys bots (Architect bot flows) are relayed too, without naming an agent.
      const human = message.originatingEntity !== 'Bot';
      const nickname = message.channel.from?.nickname;
      const agent = human ? { id: 'genesys:agent', ...(typeof nickname === 'string' && nickname ? { name: nickname } : {}) } : undefined;
      return [{ type: 'message.created', externalRef, message: { id: `${message.id}`, text: cutInboundText(text), attachments }, ...(agent ? { agent } : {}) }];
    }
    case 'Event': {
      if (!Array.isArray(message.events)) return [];
      return message.events.flatMap((event): InboundEventByRef[] => {
        const e = event as { eventType?: unknown; typing?: { type?: unknown } | null; presence?: { type?: unknown } | null } | null;
        if (e?.eventType === 'Typing' && e.typing?.type === 'On') return [{ type: 'agent.typing', externalRef, typing: true }];
        if (e?.eventType === 'Presence' && e.presence?.type === 'Disconnect') return [{ type: 'handover.ended', externalRef, reason: 'agent_ended' }];
        return [];
      });
    }
    default:
      return [];
  }
}
