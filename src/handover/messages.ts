import { newId } from '../store/ids.js';
import { inTransaction, type UnitOfWork } from '../store/unit-of-work.js';
import { AppError } from '../resilience/errors.js';
import { enqueue } from '../delivery/outbox.js';
import type { AgentSideWork } from '../connectors/connector.js';
import type { Deps } from './deps.js';
import { emitBotEvents } from './events.js';
import { lockHandover, nextSeq } from './handover-lock.js';
import { markAgentJoined } from './lifecycle.js';
import type { AgentInfo, Attachment, Handover, Message } from './model.js';

export interface PostMessageResult {
  id: string;
  /** true when this client id was already stored: nothing new was written. */
  duplicate: boolean;
}

async function insertMessage(
  uow: UnitOfWork,
  m: { id: string; tenantId: string; handoverId: string; seq: number; direction: Message['direction']; clientId: string | undefined; sender: Message['sender']; text: string; attachments: Attachment[]; at: Date },
): Promise<void> {
  await uow.q.query(
    `insert into messages (id, tenant_id, handover_id, seq, direction, client_id, sender, text, attachments, created_at)
     values ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9::jsonb, $10)`,
    [m.id, m.tenantId, m.handoverId, m.seq, m.direction, m.clientId ?? null, JSON.stringify(m.sender), m.text, JSON.stringify(m.attachments), m.at],
  );
}

async function findByClientId(uow: UnitOfWork, handoverId: string, direction: 'to_agent' | 'to_user', clientId: string | undefined) {
  if (!clientId) return null;
  const { rows } = await uow.q.query<{ id: string }>('select id from messages where handover_id = $1 and direction = $2 and client_id = $3', [handoverId, direction, clientId]);
  return rows[0]?.id ?? null;
}

/** A user's message, sent by the bot, towards the agent. */
export async function postUserMessage(
  deps: Deps,
  input: { tenantId: string; handoverId: string; clientId?: string | undefined; text: string; attachments?: Attachment[] | undefined },
): Promise<PostMessageResult> {
  return inTransaction(deps.db, async (uow) => {
    const handover = await lockHandover(uow.q, input.tenantId, input.handoverId);
    // A retry of a message stored before the handover ended is still answered with its id.
    const existing = await findByClientId(uow, handover.id, 'to_agent', input.clientId);
    if (existing) return { id: existing, duplicate: true };
    if (handover.state === 'ended') throw new AppError('handover_ended');
    const now = deps.now();
    const seq = await nextSeq(uow.q, handover.id);
    const id = newId('message', now.getTime());
    const attachments = input.attachments ?? [];
    await insertMessage(uow, { id, tenantId: input.tenantId, handoverId: handover.id, seq, direction: 'to_agent', clientId: input.clientId, sender: { type: 'user', id: handover.user.id, name: handover.user.name }, text: input.text, attachments, at: now });
    if (handover.connectorId) {
      const work: AgentSideWork = {
        kind: 'message.created',
        eventId: newId('event', now.getTime()),
        handoverId: handover.id,
        conversationId: handover.conversationId,
        message: { id, text: input.text, attachments, createdAt: now.toISOString() },
      };
      await enqueue(uow.q, { tenantId: input.tenantId, handoverId: handover.id, target: 'agent', connectorId: handover.connectorId, kind: work.kind, payload: work, maxAttempts: deps.config.delivery.maxAttempts });
      uow.afterCommit(() => deps.bus.publish('outbox', { tenantId: input.tenantId }));
    }
    uow.afterCommit(() => deps.bus.publish(`desk:${input.tenantId}`, { type: 'message.created', handoverId: handover.id, messageId: id, seq }));
    return { id, duplicate: false };
  });
}

/**
 * An agent's message towards the user. From the built-in desk the agent must hold the handover; from a
 * connector, a message before any join counts as the agent joining. Never sent back to the agent side.
 */
export interface AgentMessageInput {
  tenantId: string;
  handoverId: string;
  clientId?: string | undefined;
  text: string;
  attachments?: Attachment[] | undefined;
  agent: AgentInfo;
  source: 'desk' | 'connector';
}

export async function postAgentMessage(deps: Deps, input: AgentMessageInput): Promise<PostMessageResult> {
  return inTransaction(deps.db, (uow) => postAgentMessageIn(deps, uow, input));
}

/**
 * An agent's message towards the user. From the built-in desk the agent must hold the handover; from a
 * connector, a message before any join counts as the agent joining. Never sent back to the agent side.
 */
export async function postAgentMessageIn(deps: Deps, uow: UnitOfWork, input: AgentMessageInput): Promise<PostMessageResult> {
  let handover = await lockHandover(uow.q, input.tenantId, input.handoverId);
  const existing = await findByClientId(uow, handover.id, 'to_user', input.clientId);
  if (existing) return { id: existing, duplicate: true };
  if (handover.state === 'ended') throw new AppError('handover_ended');
  const now = deps.now();
  if (input.source === 'desk') assertHeldBy(handover, input.agent.id);
  else if (handover.state === 'queued') handover = await markAgentJoined(deps, uow, handover, input.agent, null, now);
  const seq = await nextSeq(uow.q, handover.id);
  const id = newId('message', now.getTime());
  const attachments = input.attachments ?? [];
  await insertMessage(uow, { id, tenantId: input.tenantId, handoverId: handover.id, seq, direction: 'to_user', clientId: input.clientId, sender: { type: 'agent', id: input.agent.id, name: input.agent.name }, text: input.text, attachments, at: now });
  await emitBotEvents(
    uow,
    deps.bus,
    input.tenantId,
    [{ type: 'message.created', handoverId: handover.id, conversationId: handover.conversationId, data: { message: { id, text: input.text, attachments, createdAt: now.toISOString() }, agent: input.agent } }],
    now,
  );
  const handoverId = handover.id;
  uow.afterCommit(() => deps.bus.publish(`desk:${input.tenantId}`, { type: 'message.created', handoverId, messageId: id, seq }));
  return { id, duplicate: false };
}

export function assertHeldBy(handover: Handover, agentId: string): void {
  if (handover.state === 'queued') throw new AppError('handover_not_active');
  if (handover.agentId !== agentId) throw new AppError('handover_not_yours');
}

/** The user is typing: shown to the agent; ephemeral, so a lost signal is never retried. */
export async function postUserTyping(deps: Deps, input: { tenantId: string; handoverId: string; typing: boolean }): Promise<void> {
  await inTransaction(deps.db, async (uow) => {
    const handover = await lockHandover(uow.q, input.tenantId, input.handoverId);
    if (handover.state === 'ended') throw new AppError('handover_ended');
    if (handover.connectorId) {
      const work: AgentSideWork = { kind: 'user.typing', eventId: newId('event'), handoverId: handover.id, conversationId: handover.conversationId, typing: input.typing };
      await enqueue(uow.q, { tenantId: input.tenantId, handoverId: handover.id, target: 'agent', connectorId: handover.connectorId, kind: work.kind, payload: work, maxAttempts: 1 });
      uow.afterCommit(() => deps.bus.publish('outbox', { tenantId: input.tenantId }));
    }
    uow.afterCommit(() => deps.bus.publish(`desk:${input.tenantId}`, { type: 'user.typing', handoverId: handover.id, typing: input.typing }));
  });
}

export interface AgentTypingInput {
  tenantId: string;
  handoverId: string;
  typing: boolean;
  agentId?: string | undefined;
  source: 'desk' | 'connector';
}

export async function postAgentTyping(deps: Deps, input: AgentTypingInput): Promise<void> {
  await inTransaction(deps.db, (uow) => postAgentTypingIn(deps, uow, input));
}

/** The agent is typing: an `agent.typing` event for the bot. */
export async function postAgentTypingIn(deps: Deps, uow: UnitOfWork, input: AgentTypingInput): Promise<void> {
  const handover = await lockHandover(uow.q, input.tenantId, input.handoverId);
  if (handover.state === 'ended') throw new AppError('handover_ended');
  if (input.source === 'desk') assertHeldBy(handover, input.agentId ?? '');
  await emitBotEvents(uow, deps.bus, input.tenantId, [{ type: 'agent.typing', handoverId: handover.id, conversationId: handover.conversationId, data: { typing: input.typing } }], deps.now());
}
