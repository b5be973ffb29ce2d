import type { Queryable } from '../store/db.js';
import { AppError } from '../resilience/errors.js';
import type { UnitOfWork } from '../store/unit-of-work.js';
import type { Bus } from '../bus/bus.js';
import { estimateWait } from '../routing/availability.js';
import { emitBotEvents } from './events.js';
import { toHandover, type Handover, type HandoverRow } from '../model/handover.js';

/**
 * By the primary key alone: matched as a column, the tenant also fits the indexes that start with it,
 * and on small tables not analysed yet the planner's costs of those and of the key were a tie, so a
 * plan could read every conversation of the tenant. (queries.ts and messages.ts match it the same way.)
 */
export const LOCK_HANDOVER = 'select * from handovers where id = $1 and (tenant_id = $2) is true for update';

/**
 * Locks one handover row for the rest of the transaction. Every write to a handover starts here, so
 * the writes of one conversation are serialised and its message sequence has no races.
 */
export async function lockHandover(q: Queryable, tenantId: string, id: string): Promise<Handover> {
  const { rows } = await q.query<HandoverRow>(LOCK_HANDOVER, [id, tenantId]);
  if (!rows[0]) throw new AppError('handover_not_found');
  return toHandover(rows[0]);
}

export async function nextSeq(q: Queryable, handoverId: string): Promise<number> {
  const { rows } = await q.query<{ last_seq: number }>('update handovers set last_seq = last_seq + 1 where id = $1 returning last_seq', [handoverId]);
  return rows[0]!.last_seq;
}

/**
 * Someone left the line of a queue (accepted, ended, transferred): everyone still waiting moved up, so
 * their bots get `queue.updated` with the new place and estimate.
 */
export async function announceQueuePositions(uow: UnitOfWork, bus: Bus, tenantId: string, queueId: string, now: Date): Promise<void> {
  const { rows } = await uow.q.query<{ id: string; conversation_id: string }>(
    `select id, conversation_id from handovers where queue_id = $1 and state = 'queued' order by queued_at, id`,
    [queueId],
  );
  if (rows.length === 0) return;
  const perPlace = await estimateWait(uow.q, queueId, 1);
  await emitBotEvents(
    uow,
    bus,
    tenantId,
    rows.map((row, i) => ({
      type: 'queue.updated' as const,
      handoverId: row.id,
      conversationId: row.conversation_id,
      data: { position: i + 1, estimatedWaitSeconds: perPlace === null ? null : perPlace * (i + 1) },
    })),
    now,
  );
}
