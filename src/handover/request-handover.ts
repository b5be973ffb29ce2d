import { isUniqueViolation } from '../store/pg-errors.js';
import { newId } from '../store/ids.js';
import { inTransaction } from '../store/unit-of-work.js';
import { AppError } from '../resilience/errors.js';
import { findQueueByName } from '../routing/queues.js';
import { enqueue } from '../delivery/outbox.js';
import type { AgentSideWork } from '../connectors/connector.js';
import type { Deps } from '../deps.js';
import { agentSideHealth, checkAvailability, estimateWait, positionInQueue, type Availability } from '../routing/availability.js';
import { emitBotEvents } from './events.js';
import { toHandover, type Handover, type HandoverRow, type TranscriptEntry, type UserInfo } from '../model/handover.js';
import { getHandover } from './queries.js';
import { publishDeskSignal } from '../bus/desk-signals.js';

export interface RequestHandoverInput {
  tenantId: string;
  conversationId: string;
  queue: string;
  user: UserInfo;
  transcript?: TranscriptEntry[] | undefined;
  metadata?: Record<string, unknown> | undefined;
  idempotencyKey?: string | undefined;
}

export interface RequestHandoverResult {
  handover: Handover;
  position: number | null;
  estimatedWaitSeconds: number | null;
  /** created; replayed: same Idempotency-Key as an earlier request; existing: the conversation's live handover. */
  outcome: 'created' | 'replayed' | 'existing';
}

const unavailableCodes = {
  closed: 'queue_closed',
  no_agents: 'no_agents_available',
  at_capacity: 'queue_full',
  degraded: 'connector_degraded',
} as const;

export async function requestHandover(deps: Deps, input: RequestHandoverInput): Promise<RequestHandoverResult> {
  const existing = await findExisting(deps, input);
  if (existing) return existing;
  deps.funnel?.requested();

  const queue = await findQueueByName(deps.db, input.tenantId, input.queue);
  const now = deps.now();
  const availability = await checkAvailability(deps.db, queue, now, agentSideHealth(deps));
  if (!availability.available) {
    const refusal = unavailableError(availability);
    deps.funnel?.rejected(refusal.code);
    throw refusal;
  }

  const id = newId('handover', now.getTime());
  const answerDeadline = new Date(now.getTime() + queue.noAnswerTimeoutSeconds * 1000);
  try {
    return await inTransaction(deps.db, async (uow) => {
      const { rows } = await uow.q.query<HandoverRow>(
        `insert into handovers (id, tenant_id, conversation_id, queue_id, connector_id, state, user_info, transcript, metadata,
                                idempotency_key, queued_at, created_at, answer_deadline)
         values ($1, $2, $3, $4, $5, 'queued', $6::jsonb, $7::jsonb, $8::jsonb, $9, $10, $10, $11) returning *`,
        [
          id,
          input.tenantId,
          input.conversationId,
          queue.id,
          queue.connectorId,
          JSON.stringify(input.user),
          JSON.stringify(input.transcript ?? []),
          JSON.stringify(input.metadata ?? {}),
          input.idempotencyKey ?? null,
          now,
          answerDeadline,
        ],
      );
      const handover = toHandover(rows[0]!);
      const position = await positionInQueue(uow.q, queue.id, handover.queuedAt, handover.id);
      await uow.q.query('update handovers set queue_position_at_start = $2 where id = $1', [id, position]);
      const estimatedWaitSeconds = await estimateWait(uow.q, queue.id, position);
      if (queue.connectorId) {
        const work: AgentSideWork = {
          kind: 'handover.requested',
          eventId: newId('event', now.getTime()),
          handoverId: id,
          conversationId: input.conversationId,
          queue: queue.name,
          user: input.user,
          transcript: input.transcript ?? [],
          metadata: input.metadata ?? {},
          createdAt: now.toISOString(),
        };
        await enqueue(uow.q, {
          tenantId: input.tenantId,
          handoverId: id,
          target: 'agent',
          connectorId: queue.connectorId,
          kind: work.kind,
          payload: work,
          maxAttempts: deps.config.delivery.maxAttempts,
        });
        uow.afterCommit(() => deps.bus.publish('outbox', { tenantId: input.tenantId }));
      }
      await emitBotEvents(
        uow,
        deps.bus,
        input.tenantId,
        [{ type: 'handover.queued', handoverId: id, conversationId: input.conversationId, data: { queue: queue.name, position, estimatedWaitSeconds } }],
        now,
      );
      uow.afterCommit(() => publishDeskSignal(deps.bus, input.tenantId, { type: 'handover.queued', handoverId: id, queueId: queue.id }));
      uow.afterCommit(() => deps.funnel?.queued());
      return { handover, position, estimatedWaitSeconds, outcome: 'created' as const };
    });
  } catch (err) {
    // Two requests raced for the same conversation or key: the loser returns the winner's handover.
    if (isUniqueViolation(err)) {
      const winner = await findExisting(deps, input);
      if (winner) return winner;
    }
    throw err;
  }
}

async function findExisting(deps: Deps, input: RequestHandoverInput): Promise<RequestHandoverResult | null> {
  if (input.idempotencyKey) {
    const { rows } = await deps.db.query<{ id: string; conversation_id: string }>(
      'select id, conversation_id from handovers where tenant_id = $1 and idempotency_key = $2',
      [input.tenantId, input.idempotencyKey],
    );
    const row = rows[0];
    if (row) {
      if (row.conversation_id !== input.conversationId) throw new AppError('idempotency_conflict');
      return describeExisting(deps, input.tenantId, row.id, 'replayed');
    }
  }
  const { rows } = await deps.db.query<{ id: string }>(`select id from handovers where tenant_id = $1 and conversation_id = $2 and state <> 'ended'`, [
    input.tenantId,
    input.conversationId,
  ]);
  return rows[0] ? describeExisting(deps, input.tenantId, rows[0].id, 'existing') : null;
}

async function describeExisting(deps: Deps, tenantId: string, id: string, outcome: 'replayed' | 'existing'): Promise<RequestHandoverResult> {
  const view = await getHandover(deps.db, tenantId, id);
  return { handover: view.handover, position: view.position, estimatedWaitSeconds: view.estimatedWaitSeconds, outcome };
}

function unavailableError(a: Availability): AppError {
  const reason = a.reason ?? 'degraded';
  const detail =
    reason === 'closed'
      ? `The queue is closed now${a.nextOpenAt ? `; it opens at ${a.nextOpenAt}` : ' and has no opening time in the next year'}.`
      : reason === 'no_agents'
        ? 'No agent of this queue is available at a desk (signed in with the desk open).'
        : reason === 'at_capacity'
          ? `Every agent is at their chat limit and ${a.queueLength} users are already waiting.`
          : 'The agent-side system is not answering or is far behind; offer another channel.';
  return new AppError(unavailableCodes[reason], { message: detail, details: { ...a } });
}
