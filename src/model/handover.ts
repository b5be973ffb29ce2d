/** The handover's states, end reasons and bot event types: the vocabulary of the public contract. */
export const handoverStates = ['queued', 'active', 'ended'] as const;
export type HandoverState = (typeof handoverStates)[number];

export const endReasons = ['agent_ended', 'bot_ended', 'user_ended', 'no_agent_answered', 'unavailable', 'failed', 'abandoned'] as const;
export type EndReason = (typeof endReasons)[number];

export const botEventTypes = [
  'handover.queued',
  'handover.accepted',
  'message.created',
  'agent.typing',
  'queue.updated',
  'handover.transferred',
  'handover.ended',
] as const;
export type BotEventType = (typeof botEventTypes)[number];

export interface UserInfo {
  id: string;
  name?: string;
  email?: string;
  locale?: string;
}

export interface TranscriptEntry {
  role: 'user' | 'bot';
  text: string;
  at?: string;
}

export interface Attachment {
  url: string;
  name?: string;
  contentType?: string;
  /** A file kept by this service (`att_…`): its `url` is a short-lived signed link, signed anew on each read. */
  id?: string;
  size?: number;
}

export interface AgentInfo {
  id: string;
  name?: string;
}

/** A handover row as the domain sees it. */
export interface Handover {
  id: string;
  tenantId: string;
  conversationId: string;
  queueId: string;
  connectorId: string | null;
  state: HandoverState;
  user: UserInfo;
  transcript: TranscriptEntry[];
  metadata: Record<string, unknown>;
  agentId: string | null;
  agent: AgentInfo | null;
  externalRef: string | null;
  endReason: EndReason | null;
  createdAt: Date;
  queuedAt: Date;
  acceptedAt: Date | null;
  endedAt: Date | null;
  answerDeadline: Date | null;
}

export interface HandoverRow {
  id: string;
  tenant_id: string;
  conversation_id: string;
  queue_id: string;
  connector_id: string | null;
  state: HandoverState;
  user_info: UserInfo;
  transcript: TranscriptEntry[];
  metadata: Record<string, unknown>;
  agent_id: string | null;
  agent_info: AgentInfo | null;
  external_ref: string | null;
  end_reason: EndReason | null;
  created_at: Date;
  queued_at: Date;
  accepted_at: Date | null;
  ended_at: Date | null;
  answer_deadline: Date | null;
}

export function toHandover(row: HandoverRow): Handover {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    conversationId: row.conversation_id,
    queueId: row.queue_id,
    connectorId: row.connector_id,
    state: row.state,
    user: row.user_info,
    transcript: row.transcript,
    metadata: row.metadata,
    agentId: row.agent_id,
    agent: row.agent_info,
    externalRef: row.external_ref,
    endReason: row.end_reason,
    createdAt: row.created_at,
    queuedAt: row.queued_at,
    acceptedAt: row.accepted_at,
    endedAt: row.ended_at,
    answerDeadline: row.answer_deadline,
  };
}

export interface Message {
  id: string;
  handoverId: string;
  seq: number;
  direction: 'to_agent' | 'to_user';
  sender: { type: 'user' | 'agent'; id?: string; name?: string };
  text: string;
  attachments: Attachment[];
  createdAt: Date;
}

export interface MessageRow {
  id: string;
  handover_id: string;
  seq: number;
  direction: 'to_agent' | 'to_user';
  sender: Message['sender'];
  text: string;
  attachments: Attachment[];
  created_at: Date;
}

export function toMessage(row: MessageRow): Message {
  return {
    id: row.id,
    handoverId: row.handover_id,
    seq: row.seq,
    direction: row.direction,
    sender: row.sender,
    text: row.text,
    attachments: row.attachments,
    createdAt: row.created_at,
  };
}
