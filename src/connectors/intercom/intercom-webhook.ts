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
  // An unassignment names `{ type: 'nobody_admin', id: null }`.
  assigned_to: nullable(Type.Object({ type: Type.Optional(Type.String()), id: nullable(id) })),
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
/** A deleted conversation: its notification carries only the conversation's id. */
const deletedNotification = TypeCompiler.Compile(Type.Object({ data: Type.Object({ item: Type.Object({ id: id }) }) }));
type Notification = Static<typeof conversationNotification>;
type Part = Static<typeof part>;

/** Topics read; `conversation.user.replied` and `.created` are our own writes coming back. */
export const INTERCOM_TOPICS = [
  'conversation.admin.replied',
  'conversation.admin.assigned',
  'conversation.admin.open.assigned',
  'conversation.admin.closed',
  'conversation.deleted',
] as const;
const actedOn = new Set<string>(INTERCOM_TOPICS);

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
 * team (transfer), an admin closing it (the agent ended), the conversation deleted (ended too). The
 * message an admin may leave with an assignment or a close is relayed as a reply. Dropped, but
 * acknowledged: our own admin's assignment and close coming back, an unassignment (nobody is named),
 * notes, the `ping` a new subscription sends (its id is null), every other topic.
 */
export function handleIntercomInbound(config: IntercomInboundConfig, request: InboundRequest): InboundResult {
  const signature = headerValue(request.headers, 'x-hub-signature');
  if (!signature) return { ok: false, reason: 'bad_signature', message: 'X-Hub-Signature is required' };
  const expected = `sha1=${createHmac('sha1', config.clientSecret).update(request.rawBody).digest('hex')}`;
  if (!equalSecrets(signature, expected)) return { ok: false, reason: 'bad_signature', message: 'X-Hub-Signature does not match' };
  const body = request.body as { type?: unknown; id?: unknown; topic?: unknown } | null;
  if (!body || typeof body !== 'object' || body.type !== 'notification_event' || typeof body.topic !== 'string') {
    return { ok: false, reason: 'invalid_body', message: 'not an Intercom notification (type notification_event with a topic)' };
  }
  const hasId = typeof body.id === 'string' && body.id !== '';
  // Other topics are acknowledged unread, the ping too (whose id is null: nothing to keep a receipt of).
  if (!actedOn.has(body.topic)) return { ok: true, receipts: hasId ? [{ receiptId: `notification:${body.id as string}`, events: [] }] : [] };
  if (!hasId) return { ok: false, reason: 'invalid_body', message: `an Intercom ${body.topic} notification without an id` };
  const receiptId = `notification:${body.id as string}`;
  if (body.topic === 'conversation.deleted') {
    if (!deletedNotification.Check(body)) {
      return { ok: false, reason: 'invalid_body', message: firstSchemaError(deletedNotification, body) ?? 'not an Intercom conversation notification' };
    }
    const externalRef = String(body.data.item.id);
    return {
      ok: true,
      receipts: [{ receiptId, events: [{ type: 'handover.ended', externalRef, reason: 'agent_ended', detail: 'the conversation was deleted in Intercom' }] }],
    };
  }
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
      // Only comments written by a person; bots (Fin, workflows) and notes are not replies of an agent.
      return parts.flatMap((p) => (p.part_type === 'comment' ? leftWith(p, externalRef) : []));
    case 'conversation.admin.assigned':
    case 'conversation.admin.open.assigned':
      return parts.flatMap((p): InboundEventByRef[] => {
        if (!p.part_type.includes('assign') || byUs(p)) return [];
        const assigneeId = p.assigned_to?.id;
        // An unassignment (`nobody_admin`, no id) names nobody to join or transfer to. What an admin
        // wrote while passing the chat on (to nobody, or to a team) is not relayed: a message from an
        // agent before one joined would count as that admin taking the chat.
        if (assigneeId === undefined || assigneeId === null || p.assigned_to?.type === 'nobody_admin') return [];
        const assignee = String(assigneeId);
        if (p.assigned_to?.type === 'team') {
          const queue = Object.entries(config.teams ?? {}).find(([, team]) => team === assignee)?.[0];
          return [{ type: 'handover.transferred', externalRef, data: { teamId: assignee, ...(queue ? { queue } : {}) } }];
        }
        const said = leftWith(p, externalRef);
        // Intercom names the author, not the assignee: a name only when agents take the chat themselves.
        const self = p.author?.type === 'admin' && String(p.author.id) === assignee;
        return [
          { type: 'agent.joined', externalRef, agent: { id: `intercom:${assignee}`, ...(self && p.author?.name ? { name: p.author.name } : {}) } },
          ...said,
        ];
      });
    case 'conversation.admin.closed': {
      // Our own close (the user or the bot ended) comes back too: only that one is dropped.
      const closes = parts.filter((p) => p.part_type === 'close');
      if (closes.length > 0 && closes.every(byUs)) return [];
      // What the admin wrote as they closed it reaches the user before the end.
      return [...closes.filter((p) => !byUs(p)).flatMap((p) => leftWith(p, externalRef)), { type: 'handover.ended', externalRef, reason: 'agent_ended' }];
    }
    default:
      return [];
  }
}

/**
 * The message an admin left with an assignment or a close (Intercom's `body` of either call: "a message
 * in the conversation to provide additional context to the user"), as a reply; none when empty.
 */
function leftWith(p: Part, externalRef: string): InboundEventByRef[] {
  // Written by a person: bots (Fin, workflows) are not an agent.
  if (p.author?.type !== 'admin') return [];
  const attachments = readAttachments(p.attachments);
  const text = htmlToText(p.body ?? '');
  if (!text && attachments.length === 0) return [];
  return [{ type: 'message.created', externalRef, message: { id: String(p.id), text: cutInboundText(text), attachments }, agent: agentOf(p.author) }];
}

function agentOf(who: Static<typeof author> | null | undefined): { id: string; name?: string } {
  return { id: `intercom:${who?.id ?? 'admin'}`, ...(who?.name ? { name: who.name } : {}) };
}
