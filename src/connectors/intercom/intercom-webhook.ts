import { createHmac } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { InboundEventByRef, InboundRequest, InboundResult } from '../connector.js';
import { cutInboundText, equalSecrets, firstSchemaError, headerValue, nullable } from '../connector-helpers.js';
import { htmlToText, readAttachments } from './intercom-content.js';

const id = Type.Union([Type.String(), Type.Number()]);
const author = Type.Object({ type: Type.Optional(Type.String()), id: Type.Optional(id), name: nullable(Type.String()) });
const part = Type.Object({
  id: id,
  part_type: Type.String(),
  body: nullable(Type.String()),
  author: nullable(author),
  assigned_to: nullable(Type.Object({ type: Type.Optional(Type.String()), id: Type.Optional(id) })),
  attachments: nullable(Type.Array(Type.Object({ name: nullable(Type.String()), url: nullable(Type.String()), content_type: nullable(Type.String()) }))),
});

/**
 * The fields of an Intercom notification that the topics we act on are read from; the rest of the
 * body is passed over. Such a notification whose fields have other types is refused rather than
 * guessed at; other topics are acknowledged unread.
 */
const conversationNotification = Type.Object({
  id: Type.String({ minLength: 1 }),
  topic: Type.String(),
  data: Type.Object({
    item: Type.Object({
      id: id,
      conversation_parts: nullable(Type.Object({ conversation_parts: Type.Array(part) })),
    }),
  }),
});
const notification = TypeCompiler.Compile(conversationNotification);
type Notification = Static<typeof conversationNotification>;
type Part = Static<typeof part>;

/** Topics read; `conversation.user.replied` and `.created` are our own writes coming back. */
const actedOn = new Set(['conversation.admin.replied', 'conversation.admin.assigned', 'conversation.admin.open.assigned', 'conversation.admin.closed']);

export interface IntercomInboundConfig {
  clientSecret: string;
  adminId: string;
  teams?: Record<string, string> | undefined;
}

/**
 * Verify → parse one Intercom webhook notification. Intercom signs the raw body with HMAC-SHA1 under the
 * app's client secret and sends `sha1=<hex>` in `X-Hub-Signature`; there is no timestamp, so a
 * replayed notification is caught by its id (the receipt: `notif_…`, the same on every redelivery).
 *
 * Kept: admins' replies (`conversation.admin.replied`, each comment part by an admin, its part id the
 * message id), an admin's assignment of the conversation to an admin (the agent joined) or to another
 * team (transfer), an admin closing it (the agent ended). Dropped, but acknowledged: our own admin's
 * assignment and close coming back, notes, the `ping` a new subscription sends, every other topic.
 */
export function handleIntercomInbound(config: IntercomInboundConfig, request: InboundRequest): InboundResult {
  const signature = headerValue(request.headers, 'x-hub-signature');
  if (!signature) return { ok: false, reason: 'bad_signature', message: 'X-Hub-Signature is required' };
  const expected = `sha1=${createHmac('sha1', config.clientSecret).update(request.rawBody).digest('hex')}`;
  if (!equalSecrets(signature, expected)) return { ok: false, reason: 'bad_signature', message: 'X-Hub-Signature does not match' };
  const body = request.body as { type?: unknown; id?: unknown; topic?: unknown } | null;
  if (!body || typeof body !== 'object' || body.type !== 'notification_event' || typeof body.id !== 'string' || !body.id || typeof body.topic !== 'string') {
    return { ok: false, reason: 'invalid_body', message: 'not an Intercom notification (type notification_event with an id and a topic)' };
  }
  const receiptId = `notification:${body.id}`;
  if (!actedOn.has(body.topic)) return { ok: true, receipts: [{ receiptId, events: [] }] };
  if (!notification.Check(body)) {
    return { ok: false, reason: 'invalid_body', message: firstSchemaError(notification, body) ?? 'not an Intercom conversation notification' };
  }
  return { ok: true, receipts: [{ receiptId, events: toEvents(config, body) }] };
}

function toEvents(config: IntercomInboundConfig, body: Notification): InboundEventByRef[] {
  const externalRef = String(body.data.item.id);
  const parts = body.data.item.conversation_parts?.conversation_parts ?? [];
  const byUs = (p: Part) => p.author?.type === 'admin' && String(p.author.id) === config.adminId;
  switch (body.topic) {
    case 'conversation.admin.replied':
      return parts.flatMap((p): InboundEventByRef[] => {
        // Only comments written by a person; bots (Fin, workflows) and notes are not replies of an agent.
        if (p.part_type !== 'comment' || p.author?.type !== 'admin') return [];
        const attachments = readAttachments(p.attachments);
        const text = htmlToText(p.body ?? '');
        if (!text && attachments.length === 0) return [];
        return [{ type: 'message.created', externalRef, message: { id: String(p.id), text: cutInboundText(text), attachments }, agent: agentOf(p.author) }];
      });
    case 'conversation.admin.assigned':
    case 'conversation.admin.open.assigned':
      return parts.flatMap((p): InboundEventByRef[] => {
        if (!p.part_type.includes('assign') || byUs(p) || p.assigned_to?.id === undefined) return [];
        const assignee = String(p.assigned_to.id);
        if (p.assigned_to.type === 'team') {
          const queue = Object.entries(config.teams ?? {}).find(([, team]) => team === assignee)?.[0];
          return [{ type: 'handover.transferred', externalRef, data: { teamId: assignee, ...(queue ? { queue } : {}) } }];
        }
        // Intercom names the author, not the assignee: a name only when agents take the chat themselves.
        const self = p.author?.type === 'admin' && String(p.author.id) === assignee;
        return [{ type: 'agent.joined', externalRef, agent: { id: `intercom:${assignee}`, ...(self && p.author?.name ? { name: p.author.name } : {}) } }];
      });
    case 'conversation.admin.closed': {
      // Our own close (the user or the bot ended) comes back too: only that one is dropped.
      const closes = parts.filter((p) => p.part_type === 'close');
      return closes.length > 0 && closes.every(byUs) ? [] : [{ type: 'handover.ended', externalRef, reason: 'agent_ended' }];
    }
    default:
      return [];
  }
}

function agentOf(who: Static<typeof author> | null | undefined): { id: string; name?: string } {
  return { id: `intercom:${who?.id ?? 'admin'}`, ...(who?.name ? { name: who.name } : {}) };
}
