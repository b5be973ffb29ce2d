import { newId } from '../store/ids.js';
import { inTransaction, type UnitOfWork } from '../store/unit-of-work.js';
import { AppError } from '../resilience/errors.js';
import { enqueue } from '../delivery/outbox.js';
import type { AgentSideWork } from '../connectors/connector.js';
import type { Agent } from '../model/agent.js';
import { agentInQueueSql, consoleOpenSql, liveSessionSql } from '../routing/presence.js';
import { findQueueByName } from '../routing/queues.js';
import { insertNote } from './handover-notes.js';
import type { Deps } from '../deps.js';
import { emitBotEvents } from './events.js';
import { announceQueuePositions, lockHandover } from './handover-lock.js';
import { assertMayManage } from './rules.js';
import { toHandover, type AgentInfo, type EndReason, type Handover, type HandoverRow } from '../model/handover.js';
import { publishDeskSignal } from '../bus/desk-signals.js';

/** An agent joined (desk accept or the external system said so): the bot is told to stay silent. */
export async function markAgentJoined(
  deps: Deps,
  uow: UnitOfWork,
  handover: Handover,
  agent: AgentInfo,
  deskAgentId: string | null,
  now: Date,
): Promise<Handover> {
  const { rows } = await uow.q.query<HandoverRow>(
    `update handovers set state = 'active', agent_id = $2, agent_info = $3::jsonb, accepted_at = coalesce(accepted_at, $4), answer_deadline = null
     where id = $1 returning *`,
    [handover.id, deskAgentId, JSON.stringify(agent), now],
  );
  const updated = toHandover(rows[0]!);
  if (handover.state === 'queued') await announceQueuePositions(uow, deps.bus, handover.tenantId, handover.queueId, now);
  await emitBotEvents(
    uow,
    deps.bus,
    handover.tenantId,
    [{ type: 'handover.accepted', handoverId: handover.id, conversationId: handover.conversationId, data: { agent } }],
    now,
  );
  uow.afterCommit(() =>
    publishDeskSignal(deps.bus, handover.tenantId, { type: 'handover.accepted', handoverId: handover.id, agentId: deskAgentId, agentName: agent.name ?? null }),
  );
  if (handover.state === 'queued') uow.afterCommit(() => deps.funnel?.accepted((now.getTime() - handover.queuedAt.getTime()) / 1000));
  return updated;
}

/** A desk agent takes a waiting handover. Capacity is checked under the agent's row lock. */
export async function acceptHandover(deps: Deps, input: { agent: Agent; handoverId: string }): Promise<Handover> {
  return inTransaction(deps.db, async (uow) => {
    const { agent } = input;
    const { rows: agentRows } = await uow.q.query<{ presence: string; max_chats: number; queue_ids: string[] | null }>(
      'select presence, max_chats, queue_ids from agents where id = $1 for update',
      [agent.id],
    );
    const fresh = agentRows[0];
    if (!fresh) throw new AppError('unauthorized');
    if (fresh.presence !== 'available') throw new AppError('agent_away');
    const handover = await lockHandover(uow.q, agent.tenantId, input.handoverId);
    if (handover.connectorId || (fresh.queue_ids && !fresh.queue_ids.includes(handover.queueId))) throw new AppError('handover_not_found');
    if (handover.state === 'active' && handover.agentId === agent.id) return handover;
    if (handover.state !== 'queued') throw new AppError('handover_not_waiting');
    const { rows } = await uow.q.query<{ n: number }>(`select count(*)::int as n from handovers where agent_id = $1 and state = 'active'`, [agent.id]);
    if ((rows[0]?.n ?? 0) >= fresh.max_chats)
      throw new AppError('agent_at_capacity', { message: `You hold ${rows[0]?.n} chats; your limit is ${fresh.max_chats}.` });
    return markAgentJoined(deps, uow, handover, { id: agent.id, name: agent.name }, agent.id, deps.now());
  });
}

/** FIFO: the agent takes whoever has waited longest in the queues they serve. */
export async function acceptNext(deps: Deps, input: { agent: Agent; queue?: string | undefined }): Promise<Handover | null> {
  const queueId = input.queue ? (await findQueueByName(deps.db, input.agent.tenantId, input.queue)).id : null;
  // The queue's condition only when one is named: as "$n is null or …" its index (queue, time queued)
  // could not serve it in a plan made without the values (the sessions' plans are: db.ts).
  const params: unknown[] = [input.agent.tenantId, input.agent.id];
  const byQueue = queueId === null ? '' : `and h.queue_id = $${params.push(queueId)}`;
  // A few tries: another agent may take the head of the line between our read and our lock.
  for (let attempt = 0; attempt < 5; attempt++) {
    const { rows } = await deps.db.query<{ id: string }>(
      `select h.id from handovers h join queues q on q.id = h.queue_id
       where h.tenant_id = $1 and h.state = 'queued' and q.connector_id is null ${byQueue}
         and ((select queue_ids from agents where id = $2) is null
              or h.queue_id in (select jsonb_array_elements_text(queue_ids) from agents where id = $2))
       order by h.queued_at, h.id limit 1`,
      params,
    );
    const next = rows[0];
    if (!next) return null;
    try {
      return await acceptHandover(deps, { agent: input.agent, handoverId: next.id });
    } catch (err) {
      if (err instanceof AppError && err.code === 'handover_not_waiting') continue;
      throw err;
    }
  }
  return null;
}

export type EndedBy = 'bot' | 'desk' | 'connector' | 'system';

/**
 * Ends a handover once; ending an ended one returns it unchanged. The bot is told why; the agent side is
 * told too unless the end came from there (never echo a signal back to where it came from), or the
 * handover failed there — except where `tellAgentSide` says it has the conversation all the same (an
 * item of it given up after the start was taken), so that its agent is not left in a conversation
 * nobody answers.
 */
export async function endHandover(
  deps: Deps,
  input: {
    tenantId: string;
    handoverId: string;
    reason: EndReason;
    by: EndedBy;
    agent?: Pick<Agent, 'id' | 'role'> | undefined;
    detail?: string | undefined;
    tellAgentSide?: boolean;
  },
): Promise<Handover> {
  return inTransaction(deps.db, async (uow) => {
    const handover = await lockHandover(uow.q, input.tenantId, input.handoverId);
    if (handover.state === 'ended') return handover;
    if (input.by === 'desk') assertMayManage(handover, input.agent);
    return endLocked(deps, uow, handover, input.reason, input.by, input.detail, input.tellAgentSide === true);
  });
}

export async function endLocked(
  deps: Deps,
  uow: UnitOfWork,
  handover: Handover,
  reason: EndReason,
  by: EndedBy,
  detail?: string,
  tellFailure = false,
): Promise<Handover> {
  const now = deps.now();
  const { rows } = await uow.q.query<HandoverRow>(
    `update handovers set state = 'ended', end_reason = $2, ended_at = $3, answer_deadline = null where id = $1 returning *`,
    [handover.id, reason, now],
  );
  if (handover.connectorId && by !== 'connector' && (reason !== 'failed' || tellFailure)) {
    const work: AgentSideWork = {
      kind: 'handover.ended',
      eventId: newId('event', now.getTime()),
      handoverId: handover.id,
      conversationId: handover.conversationId,
      reason,
      createdAt: now.toISOString(),
    };
    await enqueue(uow.q, {
      tenantId: handover.tenantId,
      handoverId: handover.id,
      target: 'agent',
      connectorId: handover.connectorId,
      kind: work.kind,
      payload: work,
      maxAttempts: deps.config.delivery.maxAttempts,
    });
    uow.afterCommit(() => deps.bus.publish('outbox', { tenantId: handover.tenantId }));
  }
  if (handover.state === 'queued') await announceQueuePositions(uow, deps.bus, handover.tenantId, handover.queueId, now);
  await emitBotEvents(
    uow,
    deps.bus,
    handover.tenantId,
    [{ type: 'handover.ended', handoverId: handover.id, conversationId: handover.conversationId, data: detail ? { reason, detail } : { reason } }],
    now,
  );
  uow.afterCommit(() => publishDeskSignal(deps.bus, handover.tenantId, { type: 'handover.ended', handoverId: handover.id, reason }));
  uow.afterCommit(() => deps.funnel?.ended(reason, handover.state === 'queued'));
  return toHandover(rows[0]!);
}

/**
 * A desk agent (or a supervisor) sends the chat to another desk queue: it waits there like a new request.
 * A `note` goes with it, for the agent who takes it next (an internal note: never sent to the user).
 */
export async function transferHandover(deps: Deps, input: { agent: Agent; handoverId: string; queue: string; note?: string | undefined }): Promise<Handover> {
  const target = await findQueueByName(deps.db, input.agent.tenantId, input.queue);
  if (target.connectorId) throw new AppError('invalid_request', { message: 'Transfers go to queues of the built-in desk.' });
  return inTransaction(deps.db, async (uow) => {
    const handover = await lockHandover(uow.q, input.agent.tenantId, input.handoverId);
    if (handover.state === 'ended') throw new AppError('handover_ended');
    assertMayManage(handover, input.agent);
    const note = input.note?.trim();
    if (note) {
      await insertNote(uow.q, {
        tenantId: handover.tenantId,
        handoverId: handover.id,
        agent: input.agent,
        kind: 'transfer',
        queueName: target.name,
        text: note,
      });
      uow.afterCommit(() => publishDeskSignal(deps.bus, handover.tenantId, { type: 'note.created', handoverId: handover.id }));
    }
    // A waiting user moved to the line they already wait in keeps their place.
    if (handover.state === 'queued' && handover.queueId === target.id) return handover;
    const now = deps.now();
    const { rows } = await uow.q.query<HandoverRow>(
      `update handovers set state = 'queued', queue_id = $2, agent_id = null, agent_info = null, queued_at = $3, answer_deadline = $4
       where id = $1 returning *`,
      [handover.id, target.id, now, new Date(now.getTime() + target.noAnswerTimeoutSeconds * 1000)],
    );
    await emitBotEvents(
      uow,
      deps.bus,
      handover.tenantId,
      [
        {
          type: 'handover.transferred',
          handoverId: handover.id,
          conversationId: handover.conversationId,
          data: { fromQueueId: handover.queueId, queue: target.name },
        },
      ],
      now,
    );
    await announceQueuePositions(uow, deps.bus, handover.tenantId, target.id, now);
    // Moved out of a line (by a supervisor): those behind in the line it left move up.
    if (handover.state === 'queued') await announceQueuePositions(uow, deps.bus, handover.tenantId, handover.queueId, now);
    uow.afterCommit(() => publishDeskSignal(deps.bus, handover.tenantId, { type: 'handover.transferred', handoverId: handover.id, queueId: target.id }));
    return toHandover(rows[0]!);
  });
}

/** Ends handovers nobody answered within their queue's timeout. Returns how many it ended. */
export async function expireUnanswered(deps: Deps, limit = 100): Promise<number> {
  const { rows } = await deps.db.query<{ id: string; tenant_id: string }>(
    `select id, tenant_id from handovers where state = 'queued' and answer_deadline < $1 order by answer_deadline limit $2`,
    [deps.now(), limit],
  );
  let ended = 0;
  for (const row of rows) {
    await inTransaction(deps.db, async (uow) => {
      const handover = await lockHandover(uow.q, row.tenant_id, row.id);
      // Re-checked under the lock: an agent may have accepted it a moment ago.
      if (handover.state !== 'queued' || !handover.answerDeadline || handover.answerDeadline >= deps.now()) return;
      await endLocked(deps, uow, handover, 'no_agent_answered', 'system');
      ended++;
    });
  }
  return ended;
}

/**
 * SQL condition: someone could still answer the users waiting in desk queue `h.queue_id` — an agent of
 * the queue, signed in, at a desk (docs/desk.md, "Presence"), and available or set away less than the
 * grace (`$1`, ms) ago, so a mistaken click that is taken back leaves the line as it was.
 */
const someoneServesSql = `exists (select 1 from agents a where ${agentInQueueSql('h.queue_id')}
    and (a.presence = 'available' or a.presence_changed_at > now() - $1 * interval '1 millisecond')
    and exists (select 1 from agent_sessions s where s.agent_id = a.id and ${liveSessionSql})
    and ${consoleOpenSql})`;

/**
 * Ends, at once, the waits of users in desk queues that nobody online serves any more (the last agent
 * closed the desk, or went away): waiting out the no-answer timeout would only tell them later what is
 * already known. The bot is told `no_agent_answered` with a detail saying why. Returns how many it ended.
 */
export async function expireUnserved(deps: Deps, limit = 100): Promise<number> {
  const graceMs = deps.config.desk.presenceGraceMs;
  // Judged once per queue with anyone waiting (not once per user): this runs every tick.
  const { rows } = await deps.db.query<{ id: string; tenant_id: string }>(
    `with unserved as materialized (
       select h.queue_id from (select distinct queue_id from handovers where state = 'queued' and connector_id is null) h
       where not ${someoneServesSql}
     )
     select id, tenant_id from handovers
     where state = 'queued' and queue_id in (select queue_id from unserved)
     order by queued_at limit $2`,
    [graceMs, limit],
  );
  let ended = 0;
  for (const row of rows) {
    await inTransaction(deps.db, async (uow) => {
      const handover = await lockHandover(uow.q, row.tenant_id, row.id);
      if (handover.state !== 'queued' || handover.connectorId) return;
      // Re-checked under the lock: an agent may have come back (or accepted it) a moment ago.
      const { rows: still } = await uow.q.query<{ unserved: boolean }>(`select not ${someoneServesSql} as unserved from handovers h where h.id = $2`, [
        graceMs,
        handover.id,
      ]);
      if (!still[0]?.unserved) return;
      await endLocked(deps, uow, handover, 'no_agent_answered', 'system', 'No agent of this queue is online any more.');
      ended++;
    });
  }
  return ended;
}
