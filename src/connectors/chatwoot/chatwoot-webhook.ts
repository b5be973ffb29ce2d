import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { InboundEventByRef, InboundRequest, InboundResult } from '../connector.js';
import { cutInboundText } from '../connector.js';
import { headerValue } from '../http-json.js';

const TOLERANCE_SECONDS = 5 * 60;

interface ChatwootWebhook {
  event?: string;
  id?: number | string;
  content?: string | null;
  message_type?: string;
  private?: boolean;
  status?: string;
  sender?: { id?: number; name?: string; type?: string };
  user?: { id?: number; name?: string; type?: string };
  is_private?: boolean;
  conversation?: { id?: number | string };
  attachments?: Array<{ data_url?: string; file_type?: string }>;
  changed_attributes?: Array<Record<string, { previous_value?: unknown; current_value?: unknown }>>;
  meta?: { assignee?: { id?: number; name?: string } | null; team?: { id?: number; name?: string } | null };
}

/**
 * Verify → parse one Chatwoot webhook. Chatwoot signs `"{X-Chatwoot-Timestamp}.{raw body}"` with
 * HMAC-SHA256 under the webhook's secret and sends `sha256=<hex>` in `X-Chatwoot-Signature`. One event
 * per call; its receipt is the message id for messages, otherwise `X-Chatwoot-Delivery` (or the body's
 * hash). Kept: agents' public replies, a conversation resolved (the agent ended), agents typing, an
 * assignment (the agent joined) and a team change (transfer). Dropped, but acknowledged: our own
 * incoming messages and status toggles coming back, private notes, bot messages, everything else.
 */
export function handleChatwootInbound(config: { webhookSecret: string }, request: InboundRequest, nowSeconds = Math.floor(Date.now() / 1000)): InboundResult {
  const signature = headerValue(request.headers, 'x-chatwoot-signature');
  const timestamp = headerValue(request.headers, 'x-chatwoot-timestamp');
  if (!signature || !timestamp || !/^\d+$/.test(timestamp)) return { ok: false, reason: 'bad_signature', message: 'X-Chatwoot-Signature and X-Chatwoot-Timestamp are required' };
  const expected = `sha256=${createHmac('sha256', config.webhookSecret).update(`${timestamp}.${request.rawBody}`).digest('hex')}`;
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, Buffer.from(expected))) return { ok: false, reason: 'bad_signature', message: 'X-Chatwoot-Signature does not match' };
  if (Math.abs(nowSeconds - Number(timestamp)) > TOLERANCE_SECONDS) return { ok: false, reason: 'stale_timestamp', message: 'X-Chatwoot-Timestamp is more than 5 minutes away from our clock' };
  const body = request.body as ChatwootWebhook | null;
  if (!body || typeof body !== 'object' || typeof body.event !== 'string') return { ok: false, reason: 'invalid_body', message: 'not a Chatwoot webhook body (no event)' };
  const receiptId =
    body.event === 'message_created' && body.id !== undefined
      ? `message:${body.id}`
      : (headerValue(request.headers, 'x-chatwoot-delivery') ?? `body:${createHash('sha256').update(request.rawBody).digest('hex')}`);
  return { ok: true, receipts: [{ receiptId, events: toEvents(body) }] };
}

function toEvents(body: ChatwootWebhook): InboundEventByRef[] {
  switch (body.event) {
    case 'message_created': {
      const conversationId = body.conversation?.id;
      // Only an agent's public reply; `incoming` are ours, echoed; notes are private; bots are not agents.
      if (conversationId === undefined || body.id === undefined || body.message_type !== 'outgoing' || body.private || body.sender?.type !== 'user') return [];
      const attachments = (body.attachments ?? []).flatMap((a) => (a.data_url ? [{ url: a.data_url }] : []));
      const text = body.content ?? '';
      if (!text && attachments.length === 0) return [];
      return [{ type: 'message.created', externalRef: String(conversationId), message: { id: String(body.id), text: cutInboundText(text), attachments }, agent: agentOf(body.sender) }];
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
      if (changed.has('assignee_id') && assignee?.id !== undefined) events.push({ type: 'agent.joined', externalRef: String(body.id), agent: agentOf(assignee) });
      const team = body.meta?.team;
      if (changed.has('team_id') && team?.id !== undefined) events.push({ type: 'handover.transferred', externalRef: String(body.id), data: { teamId: team.id, ...(team.name ? { team: team.name } : {}) } });
      return events;
    }
    default:
      return [];
  }
}

function agentOf(user: { id?: number; name?: string } | undefined): { id: string; name?: string } {
  return { id: `chatwoot:${user?.id ?? 'agent'}`, ...(user?.name ? { name: user.name } : {}) };
}
