import { namedStatement } from '../store/db.js';
import { externalIdKey, newId } from '../store/ids.js';
import { inTransaction, type UnitOfWork } from '../store/unit-of-work.js';
import { AppError } from '../resilience/errors.js';
import { enqueue } from '../delivery/outbox.js';
import type { AgentSideWork } from '../connectors/connector.js';
import type { Deps } from '../deps.js';
import { currentTraceparent } from '../telemetry/tracing.js';
import { emitBotEvents } from './events.js';
import { lockHandover, nextSeq } from './handover-lock.js';
import { writeUserMessagesOrEach, type UserMessageWrite, type UserMessageWritten } from './accept-user-messages.js';
import { markAgentJoined } from './lifecycle.js';
import { assertHeldBy } from './rules.js';
import type { AgentInfo, Attachment, Message } from '../model/handover.js';
import { publishDeskSignal } from '../bus/desk-signals.js';

export interface PostMessageResult {
  id: string;
  /** true when this client id was already stored: nothing new was written. */
  duplicate: boolean;
}

async function insertMessage(
  uow: UnitOfWork,
  m: {
    id: string;
    tenantId: string;
    handoverId: string;
    seq: number;
    direction: Message['direction'];
    clientId: string | undefined;
    sender: Message['sender'];
    text: string;
    attachments: Attachment[];
    at: Date;
  },
): Promise<void> {
  await uow.q.query(
    `insert into messages (id, tenant_id, handover_id, seq, direction, client_id, sender, text, attachments, created_at)
     values ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9::jsonb, $10)`,
    [m.id, m.tenantId, m.handoverId, m.seq, m.direction, m.clientId ?? null, JSON.stringify(m.sender), m.text, JSON.stringify(m.attachments), m.at],
  );
}

async function findByClientId(uow: UnitOfWork, handoverId: string, direction: 'to_agent' | 'to_user', clientId: string | undefined) {
  if (!clientId) return null;
  const { rows } = await uow.q.query<{ id: string }>(
    'select id from messages where array[handover_id, direction, client_id] = array[$1::text, $2::text, $3::text] and client_id is not null',
    [handoverId, direction, clientId],
  );
  return rows[0]?.id ?? null;
}

/**
 * A user's message, sent by the bot, towards the agent: the hottest path of the service. It joins a
 * group commit (`deps.userMessages`): messages that arrive together are written by one statement in
 * one commit (see writeUserMessages), and this call resolves once its own row is durable. Without a
 * group commit (domain tests) it writes alone, the same way. Only when nothing was written does a
 * second query find out why (a repeated id, an ended or unknown handover).
 */
export async function postUserMessage(
  deps: Deps,
  input: { tenantId: string; handoverId: string; clientId?: string | undefined; text: string; attachments?: Attachment[] | undefined },
): Promise<PostMessageResult> {
  const attachments = input.attachments ?? [];
  // Refused here, for this caller alone: in a batch, the database's refusal of it would fail the whole
  // statement, and with it every other message of the batch until each was written again on its own.
  if (holdsNul(input.text) || attachments.some((a) => holdsNul(a.url) || holdsNul(a.name) || holdsNul(a.contentType))) {
    throw new AppError('invalid_request', { message: 'The message holds text that cannot be stored (a NUL character, \\u0000).' });
  }
  const now = deps.now();
  const id = newId('message', now.getTime());
  const write: UserMessageWrite = {
    tenantId: input.tenantId,
    handoverId: input.handoverId,
    clientId: input.clientId ?? null,
    messageId: id,
    text: input.text,
    attachments,
    eventId: newId('event', now.getTime()),
    createdAt: now,
    traceParent: currentTraceparent() ?? null,
  };
  const written = deps.userMessages ? await deps.userMessages.submit(write) : await writeAlone(deps, write);
  if (!written) return explainUnwritten(deps, input);
  if (written.connectorId && !written.handed) deps.bus.publish('outbox', { tenantId: input.tenantId });
  publishDeskSignal(deps.bus, input.tenantId, { type: 'message.created', handoverId: input.handoverId, messageId: id, seq: written.seq });
  return { id, duplicate: false };
}

/** Whether text holds a NUL character, which PostgreSQL stores neither in text nor in jsonb. */
function holdsNul(text: string | undefined): boolean {
  return text !== undefined && text.includes('\u0000');
}

async function writeAlone(deps: Deps, write: UserMessageWrite): Promise<UserMessageWritten> {
  const [outcome] = await writeUserMessagesOrEach(deps.db, [write], deps.config.delivery.maxAttempts, null);
  if (!outcome!.ok) throw outcome!.error;
  return outcome!.value;
}

/**
 * Prepared like the accept statement: a bot that retries (a repeated id) or writes to a conversation
 * that ended or never was asks it once per message, as often as it likes. The handover by its primary key
 * alone (see LOCK_HANDOVER).
 */
export const EXPLAIN_UNWRITTEN = namedStatement(
  'explain-unwritten-message',
  `select h.state, (select m.id from messages m
           where array[m.handover_id, m.direction, m.client_id] = array[h.id, 'to_agent', $3::text] and m.client_id is not null) as existing
   from handovers h where h.id = $1 and (h.tenant_id = $2) is true`,
);

/** Why postUserMessage wrote nothing: a repeated message id (answered with the stored id), or no live handover. */
async function explainUnwritten(deps: Deps, input: { tenantId: string; handoverId: string; clientId?: string | undefined }): Promise<PostMessageResult> {
  const { rows } = await deps.db.query<{ state: string; existing: string | null }>(EXPLAIN_UNWRITTEN, [
    input.handoverId,
    input.tenantId,
    input.clientId ?? null,
  ]);
  const row = rows[0];
  if (!row) throw new AppError('handover_not_found');
  if (row.existing) return { id: row.existing, duplicate: true };
  if (row.state === 'ended') throw new AppError('handover_ended');
  throw new Error(`postUserMessage wrote nothing for live handover ${input.handoverId}`);
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
  // A connector passes the system's own message id, of whatever length the system sent.
  const clientId = input.clientId === undefined ? undefined : externalIdKey(input.clientId);
  // (A message id past 256 characters stored before ids were kept by digest was kept as it came.)
  const existing =
    (await findByClientId(uow, handover.id, 'to_user', clientId)) ??
    (input.clientId !== undefined && input.clientId !== clientId ? await findByClientId(uow, handover.id, 'to_user', input.clientId) : null);
  if (existing) return { id: existing, duplicate: true };
  if (handover.state === 'ended') throw new AppError('handover_ended');
  const now = deps.now();
  if (input.source === 'desk') assertHeldBy(handover, input.agent.id);
  else if (handover.state === 'queued') handover = await markAgentJoined(deps, uow, handover, input.agent, null, now);
  const seq = await nextSeq(uow.q, handover.id);
  const id = newId('message', now.getTime());
  const attachments = input.attachments ?? [];
  await insertMessage(uow, {
    id,
    tenantId: input.tenantId,
    handoverId: handover.id,
    seq,
    direction: 'to_user',
    clientId,
    sender: { type: 'agent', id: input.agent.id, name: input.agent.name },
    text: input.text,
    attachments,
    at: now,
  });
  await emitBotEvents(
    uow,
    deps.bus,
    input.tenantId,
    [
      {
        type: 'message.created',
        handoverId: handover.id,
        conversationId: handover.conversationId,
        data: { message: { id, text: input.text, attachments, createdAt: now.toISOString() }, agent: input.agent },
      },
    ],
    now,
  );
  const handoverId = handover.id;
  uow.afterCommit(() => publishDeskSignal(deps.bus, input.tenantId, { type: 'message.created', handoverId, messageId: id, seq }));
  return { id, duplicate: false };
}

/** The user is typing: shown to the agent; ephemeral, so a lost signal is never retried. */
export async function postUserTyping(deps: Deps, input: { tenantId: string; handoverId: string; typing: boolean }): Promise<void> {
  await inTransaction(deps.db, async (uow) => {
    const handover = await lockHandover(uow.q, input.tenantId, input.handoverId);
    if (handover.state === 'ended') throw new AppError('handover_ended');
    if (handover.connectorId) {
      const now = deps.now();
      const work: AgentSideWork = {
        kind: 'user.typing',
        eventId: newId('event', now.getTime()),
        handoverId: handover.id,
        conversationId: handover.conversationId,
        typing: input.typing,
        createdAt: now.toISOString(),
      };
      await enqueue(uow.q, {
        tenantId: input.tenantId,
        handoverId: handover.id,
        target: 'agent',
        connectorId: handover.connectorId,
        kind: work.kind,
        payload: work,
        maxAttempts: 1,
      });
      uow.afterCommit(() => deps.bus.publish('outbox', { tenantId: input.tenantId }));
    }
    uow.afterCommit(() => publishDeskSignal(deps.bus, input.tenantId, { type: 'user.typing', handoverId: handover.id, typing: input.typing }));
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
  await emitBotEvents(
    uow,
    deps.bus,
    input.tenantId,
    [{ type: 'agent.typing', handoverId: handover.id, conversationId: handover.conversationId, data: { typing: input.typing } }],
    deps.now(),
  );
}
