import { createHash, createHmac } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { InboundEventByRef, InboundRequest, InboundResult } from '../connector.js';
import { cutInboundText, equalSecrets, firstSchemaError, headerValue, nullable } from '../connector-helpers.js';
import type { Attachment } from '../../model/handover.js';

const TOLERANCE_SECONDS = 5 * 60;

const id = Type.Union([Type.Number(), Type.String()]);
const person = Type.Object({ id: Type.Optional(id), name: nullable(Type.String()), type: nullable(Type.String()) });

/**
 * The fields of a Chatwoot webhook that the events we act on are read from, with their types; the rest
 * of the body is passed over. Such an event whose fields have other types is refused rather than
 * guessed at; other events are acknowledged unread.
 */
const webhookSchema = Type.Object({
  event: Type.String(),
  id: Type.Optional(id),
  content: nullable(Type.String()),
  message_type: Type.Optional(Type.Union([Type.String(), Type.Number()])),
  private: nullable(Type.Boolean()),
  status: Type.Optional(Type.String()),
  sender: nullable(person),
  user: nullable(person),
  is_private: nullable(Type.Boolean()),
  conversation: nullable(Type.Object({ id: Type.Optional(id) })),
  attachments: nullable(Type.Array(Type.Object({ data_url: nullable(Type.String()) }))),
  changed_attributes: nullable(Type.Array(Type.Record(Type.String(), Type.Unknown()))),
  meta: nullable(Type.Object({ assignee: nullable(person), team: nullable(person) })),
});
const webhook = TypeCompiler.Compile(webhookSchema);
const actedOn = new Set(['message_created', 'conversation_status_changed', 'conversation_typing_on', 'conversation_typing_off', 'conversation_updated']);
type ChatwootWebhook = Static<typeof webhookSchema>;

/**
 * Verify → parse one Chatwoot webhook. Chatwoot signs `"{X-Chatwoot-Timestamp}.{raw body}"` with
 * HMAC-SHA256 under the webhook's secret and sends `sha256=<hex>` in `X-Chatwoot-Signature`. One event
 * per call; its receipt is the message id for messages, otherwise the signed timestamp and the body's
 * digest (never the unsigned `X-Chatwoot-Delivery`). Kept: agents' public replies, a conversation resolved (the agent ended), agents typing, an
 * assignment (the agent joined) and a team change (transfer). Dropped, but acknowledged: our own
 * incoming messages and status toggles coming back, private notes, bot messages, everything else.
 */
export function handleChatwootInbound(config: { webhookSecret: string }, request: InboundRequest, nowSeconds = Math.floor(Date.now() / 1000)): InboundResult {
  const signature = headerValue(request.headers, 'x-chatwoot-signature');
  const timestamp = headerValue(request.headers, 'x-chatwoot-timestamp');
  if (!signature || !timestamp || !/^\d+$/.test(timestamp))
    return { ok: false, reason: 'bad_signature', message: 'X-Chatwoot-Signature and X-Chatwoot-Timestamp are required' };
  const expected = `sha256=${createHmac('sha256', config.webhookSecret).update(`${timestamp}.${request.rawBody}`).digest('hex')}`;
  if (!equalSecrets(signature, expected)) return { ok: false, reason: 'bad_signature', message: 'X-Chatwoot-Signature does not match' };
  if (Math.abs(nowSeconds - Number(timestamp)) > TOLERANCE_SECONDS)
    return { ok: false, reason: 'stale_timestamp', message: 'X-Chatwoot-Timestamp is more than 5 minutes away from our clock' };
  const body = request.body as { event?: unknown } | null;
  if (!body || typeof body !== 'object' || typeof body.event !== 'string')
    return { ok: false, reason: 'invalid_body', message: 'not a Chatwoot webhook body (no event)' };
  // The receipt is made of what the signature covers: X-Chatwoot-Delivery is not signed, so a captured
  // webhook sent again with a new one would be taken again. A replay of the same signed request (same
  // timestamp, same body) is a duplicate; one with another timestamp does not verify; past five minutes
  // it is stale.
  const signed = `signed:${timestamp}:${createHash('sha256').update(request.rawBody).digest('hex')}`;
  if (!actedOn.has(body.event)) return { ok: true, receipts: [{ receiptId: signed, events: [] }] };
  if (!webhook.Check(body)) {
    return { ok: false, reason: 'invalid_body', message: firstSchemaError(webhook, body) ?? 'not a Chatwoot webhook body' };
  }
  const receiptId = body.event === 'message_created' && body.id !== undefined ? `message:${body.id}` : signed;
  return { ok: true, receipts: [{ receiptId, events: toEvents(body) }] };
}

function toEvents(body: ChatwootWebhook): InboundEventByRef[] {
  switch (body.event) {
    case 'message_created': {
      const conversationId = body.conversation?.id;
      // Only an agent's public reply; `incoming` are ours, echoed; notes are private; bots are not agents.
      if (conversationId === undefined || body.id === undefined || body.message_type !== 'outgoing' || body.private || body.sender?.type !== 'user') return [];
      const attachments = chatwootAttachments(body.attachments);
      const text = body.content ?? '';
      if (!text && attachments.length === 0) return [];
      return [
        {
          type: 'message.created',
          externalRef: String(conversationId),
          message: { id: String(body.id), text: cutInboundText(text), attachments },
          agent: agentOf(body.sender),
        },
      ];
    }
    case 'conversation_status_changed':
      // `open` and `pending` are our own toggles (or a reopen by our message); only resolving ends.
      return body.id !== undefined && body.status === 'resolved' ? [{ type: 'handover.ended', externalRef: String(body.id), reason: 'agent_ended' }] : [];
    case 'conversation_typing_on':
    case 'conversation_typing_off': {
      const conversationId = body.conversation?.id;
      if (conversationId === undefined || body.user?.type !== 'user' || body.is_private) return [];
      return [{ type: 'agent.typing', externalRef: String(conversationId), typing: body.event === 'conversation_typing_on' }];
    }
    case 'conversation_updated': {
      if (body.id === undefined) return [];
      const changed = new Set((body.changed_attributes ?? []).flatMap((c) => Object.keys(c)));
      const events: InboundEventByRef[] = [];
      const assignee = body.meta?.assignee;
      if (changed.has('assignee_id') && assignee?.id !== undefined)
        events.push({ type: 'agent.joined', externalRef: String(body.id), agent: agentOf(assignee) });
      const team = body.meta?.team;
      if (changed.has('team_id') && team?.id !== undefined)
        events.push({ type: 'handover.transferred', externalRef: String(body.id), data: { teamId: team.id, ...(team.name ? { team: team.name } : {}) } });
      return events;
    }
    default:
      return [];
  }
}

function agentOf(user: { id?: number | string; name?: string | null } | null | undefined): { id: string; name?: string } {
  return { id: `chatwoot:${user?.id ?? 'agent'}`, ...(user?.name ? { name: user.name } : {}) };
}

/**
 * A Chatwoot message's files as attachments: its `data_url` (the file in Chatwoot's storage), named by
 * the URL's last segment (Chatwoot lists no name of its own).
 */
export function chatwootAttachments(list: ReadonlyArray<{ data_url?: string | null }> | null | undefined): Attachment[] {
  return (list ?? []).flatMap((a) => {
    if (!a.data_url) return [];
    let name: string | undefined;
    try {
      name = decodeURIComponent(new URL(a.data_url).pathname.split('/').pop() ?? '') || undefined;
    } catch {
      name = undefined;
    }
    return [{ url: a.data_url, ...(name ? { name } : {}) }];
  });
}
