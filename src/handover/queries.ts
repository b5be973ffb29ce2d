import type { Queryable } from '../store/db.js';
import { AppError } from '../resilience/errors.js';
import { estimateWait, positionInQueue } from '../routing/availability.js';
import { toHandover, toMessage, type Handover, type HandoverRow, type Message, type MessageRow } from '../model/handover.js';

export interface HandoverView {
  handover: Handover;
  position: number | null;
  estimatedWaitSeconds: number | null;
}

/** A tenant's handover; another tenant's id is answered exactly like an unknown one. */
export async function findHandover(q: Queryable, tenantId: string, id: string): Promise<Handover> {
  // By the primary key alone (see LOCK_HANDOVER).
  const { rows } = await q.query<HandoverRow>('select * from handovers where id = $1 and (tenant_id = $2) is true', [id, tenantId]);
  if (!rows[0]) throw new AppError('handover_not_found');
  return toHandover(rows[0]);
}

export async function getHandover(q: Queryable, tenantId: string, id: string): Promise<HandoverView> {
  const handover = await findHandover(q, tenantId, id);
  if (handover.state !== 'queued') return { handover, position: null, estimatedWaitSeconds: null };
  const position = await positionInQueue(q, handover.queueId, handover.queuedAt, handover.id);
  return { handover, position, estimatedWaitSeconds: await estimateWait(q, handover.queueId, position) };
}

export async function listMessages(q: Queryable, tenantId: string, handoverId: string, afterSeq: number, limit: number): Promise<Message[]> {
  const { rows } = await q.query<MessageRow>(
    `select id, handover_id, seq, direction, sender, text, attachments, created_at from messages
     where tenant_id = $1 and handover_id = $2 and seq > $3 order by seq limit $4`,
    [tenantId, handoverId, afterSeq, limit],
  );
  return rows.map(toMessage);
}
