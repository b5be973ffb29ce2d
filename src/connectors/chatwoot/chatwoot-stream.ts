import { setTimeout as sleep } from 'node:timers/promises';
import { DeliveryError, StreamLostError, type InboundEvent, type StreamContext } from '../connector.js';
import { cutInboundText } from '../connector-helpers.js';
import type { JsonResponse } from '../http-json.js';
import { chatwootAttachments } from './chatwoot-webhook.js';

/** Chatwoot answers at most this many messages after an id. */
const PAGE = 100;
export const DEFAULT_RECONCILE_INTERVAL_MS = 60_000;

type UserCall = (method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal) => Promise<JsonResponse<unknown>>;

/** A message as `GET …/conversations/{id}/messages` lists it (`message_type` is an integer there). */
interface ListedMessage {
  id?: number;
  content?: string | null;
  message_type?: number | string;
  private?: boolean;
  sender?: { id?: number | string; name?: string | null; type?: string | null } | null;
  attachments?: Array<{ data_url?: string | null }> | null;
}

/**
 * Account webhooks are sent once and never retried: what Chatwoot sent while this service was
 * unreachable would be lost. So each open conversation is also read, every `intervalMs` and at once
 * when its reader starts (after a restart or a takeover): the messages after the last one read, and the
 * conversation's status. Agents' replies found there go through the same path as the webhook's (their
 * Chatwoot message id is their id, so one already taken from a webhook is not taken twice); a
 * conversation found resolved ends the handover. The position stored is the last message id read.
 */
export async function reconcileConversation(asUser: UserCall, context: StreamContext, intervalMs: number): Promise<void> {
  const conversationId = context.session.externalId;
  let position = Number(context.session.position ?? 0) || 0;
  while (!context.signal.aborted) {
    try {
      position = await readMissed(asUser, context, conversationId, position);
      const shown = await asUser('GET', `/conversations/${conversationId}`, undefined, context.signal);
      if ((shown.body as { status?: unknown } | null)?.status === 'resolved') {
        await context.apply(String(position), [{ type: 'handover.ended', handoverId: context.handoverId, reason: 'agent_ended' }]);
        return;
      }
    } catch (err) {
      if (err instanceof DeliveryError && err.statusCode === 404)
        throw new StreamLostError(`Chatwoot no longer has conversation ${conversationId}.`, { cause: err });
      throw err;
    }
    await sleep(intervalMs, undefined, { signal: context.signal }).catch(() => {});
  }
}

async function readMissed(asUser: UserCall, context: StreamContext, conversationId: string, from: number): Promise<number> {
  let position = from;
  for (;;) {
    const res = await asUser('GET', `/conversations/${conversationId}/messages?after=${position}`, undefined, context.signal);
    const payload = (res.body as { payload?: unknown } | null)?.payload;
    const listed = Array.isArray(payload) ? (payload as ListedMessage[]) : [];
    const ids = listed.map((m) => m.id).filter((id): id is number => typeof id === 'number' && id > position);
    if (ids.length === 0) return position;
    const last = Math.max(...ids);
    await context.apply(
      String(last),
      listed.flatMap((m) => agentReply(m, context.handoverId)),
    );
    position = last;
    if (listed.length < PAGE) return position;
  }
}

/** An agent's public reply among the listed messages (the same rule as for the webhook). */
function agentReply(m: ListedMessage, handoverId: string): InboundEvent[] {
  const outgoing = m.message_type === 1 || m.message_type === 'outgoing';
  if (typeof m.id !== 'number' || !outgoing || m.private || m.sender?.type !== 'user') return [];
  const attachments = chatwootAttachments(m.attachments);
  const text = m.content ?? '';
  if (!text && attachments.length === 0) return [];
  const agent = { id: `chatwoot:${m.sender.id ?? 'agent'}`, ...(m.sender.name ? { name: m.sender.name } : {}) };
  return [{ type: 'message.created', handoverId, message: { id: String(m.id), text: cutInboundText(text), attachments }, agent }];
}
