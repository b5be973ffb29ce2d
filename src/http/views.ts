import type { HandoverView } from '../handover/queries.js';
import type { Message } from '../handover/model.js';

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

export function messageJson(m: Message) {
  return { id: m.id, seq: m.seq, direction: m.direction, sender: m.sender, text: m.text, attachments: m.attachments, createdAt: m.createdAt.toISOString() };
}
