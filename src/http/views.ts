import type { HandoverView } from '../handover/queries.js';
import type { Attachment, Message } from '../model/handover.js';

/** The public JSON shape of a handover (HandoverSchema). */
export function handoverJson(view: HandoverView) {
  const h = view.handover;
  return {
    id: h.id,
    conversationId: h.conversationId,
    queueId: h.queueId,
    state: h.state,
    user: { ...h.user },
    metadata: h.metadata,
    agent: h.agent,
    endReason: h.endReason,
    position: view.position,
    estimatedWaitSeconds: view.estimatedWaitSeconds,
    createdAt: h.createdAt.toISOString(),
    acceptedAt: h.acceptedAt?.toISOString() ?? null,
    endedAt: h.endedAt?.toISOString() ?? null,
  };
}

/** A message as read; `links` signs its kept files' links anew (attachments.ts, withFreshLinks). */
export function messageJson(m: Message, links: (attachments: Attachment[]) => Attachment[] = (a) => a) {
  return {
    id: m.id,
    seq: m.seq,
    direction: m.direction,
    sender: m.sender,
    text: m.text,
    attachments: links(m.attachments),
    createdAt: m.createdAt.toISOString(),
  };
}
