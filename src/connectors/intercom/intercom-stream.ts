import { setTimeout as sleep } from 'node:timers/promises';
import { DeliveryError, StreamLostError, type InboundEvent, type StreamContext } from '../connector.js';
import { cutInboundText } from '../connector-helpers.js';
import type { IntercomCall } from './intercom-api.js';
import { htmlToText, readAttachments, type IntercomPartAttachment } from './intercom-content.js';

/** A part as `GET /conversations/{id}` lists it (up to 500, oldest first). */
interface ListedPart {
  id?: string | number;
  part_type?: string;
  body?: string | null;
  author?: { type?: string; id?: string | number; name?: string | null } | null;
  assigned_to?: { type?: string; id?: string | number | null } | null;
  attachments?: IntercomPartAttachment[] | null;
}

/**
 * With `reconcileIntervalMs`, each open conversation is also read, every interval and at once when its
 * reader starts (after a restart or a takeover): what a notification Intercom gave up on would
 * otherwise lose. Admins' replies found there go through the same path as the webhook's (their part id
 * is their message id, so one already taken from a notification is not taken twice); a conversation
 * found closed by anyone but the connector's admin ends the handover. The position stored is the
 * highest part id read (the start's own steps before it read as none).
 */
export async function reconcileConversation(call: IntercomCall, adminId: string, context: StreamContext, intervalMs: number): Promise<void> {
  const conversationId = context.session.externalId;
  let position = Number(context.session.position ?? 0) || 0;
  while (!context.signal.aborted) {
    try {
      const shown = await call<{ state?: string; conversation_parts?: { conversation_parts?: ListedPart[] } }>(
        'GET',
        `/conversations/${encodeURIComponent(conversationId)}`,
        undefined,
        context.signal,
        { label: 'GET /conversations/:id' },
      );
      const parts = shown.body?.conversation_parts?.conversation_parts ?? [];
      const newer = parts.filter((p) => Number(p.id) > position);
      if (newer.length > 0) {
        const last = Math.max(...newer.map((p) => Number(p.id)));
        await context.apply(
          String(last),
          newer.flatMap((p) => adminReply(p, adminId, context.handoverId)),
        );
        position = last;
      }
      const lastClose = parts.filter((p) => p.part_type === 'close').at(-1);
      if (shown.body?.state === 'closed' && !(lastClose?.author?.type === 'admin' && String(lastClose.author.id) === adminId)) {
        await context.apply(String(position), [{ type: 'handover.ended', handoverId: context.handoverId, reason: 'agent_ended' }]);
        return;
      }
    } catch (err) {
      if (err instanceof DeliveryError && err.statusCode === 404)
        throw new StreamLostError(`Intercom no longer has conversation ${conversationId}.`, { cause: err });
      throw err;
    }
    await sleep(intervalMs, undefined, { signal: context.signal }).catch(() => {});
  }
}

/**
 * An admin's comment among the listed parts, or the message an admin other than the connector's left
 * with an assignment or a close (the same rules as for the webhook).
 */
function adminReply(p: ListedPart, adminId: string, handoverId: string): InboundEvent[] {
  if (p.id === undefined || p.author?.type !== 'admin') return [];
  const ours = String(p.author.id) === adminId;
  // An assignment's message only when it is to an admin (the agent joining), as for the webhook.
  const toAdmin = p.part_type?.includes('assign') === true && p.assigned_to?.type === 'admin' && p.assigned_to.id !== null && p.assigned_to.id !== undefined;
  if (p.part_type !== 'comment' && (ours || !(p.part_type === 'close' || toAdmin))) return [];
  const attachments = readAttachments(p.attachments);
  const text = htmlToText(p.body ?? '');
  if (!text && attachments.length === 0) return [];
  const agent = { id: `intercom:${p.author.id ?? 'admin'}`, ...(p.author.name ? { name: p.author.name } : {}) };
  return [{ type: 'message.created', handoverId, message: { id: String(p.id), text: cutInboundText(text), attachments }, agent }];
}
