/**
 * The bot API's shapes, as the service's OpenAPI document (`/openapi.json`) names them. The client's
 * tests check its operations against that document.
 */

export type HandoverState = 'queued' | 'active' | 'ended';
export type EndReason = 'agent_ended' | 'bot_ended' | 'user_ended' | 'no_agent_answered' | 'unavailable' | 'failed' | 'abandoned';

export interface User {
  /** Your own id for the end user. */
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
  /** A file the service keeps (with `id`): a signed link, valid for a short time (HANDOVER_ATTACHMENT_LINK_TTL_SECONDS). */
  url: string;
  name?: string;
  contentType?: string;
  /** A file the service keeps (`att_…`); read it with `getAttachment` once its link has expired. */
  id?: string;
  size?: number;
}

/** A file uploaded with `uploadAttachment`, sent in a message by its id. */
export interface AttachmentRef {
  id: string;
}

/** The answer to an upload: the file as the service keeps it, with a signed link. */
export interface UploadedAttachment {
  id: string;
  name: string;
  /** The type read from the file's bytes. */
  contentType: string;
  size: number;
  url: string;
  expiresAt: string;
}

/** A file's bytes, as the service serves them. */
export interface AttachmentFile {
  bytes: Uint8Array;
  contentType: string;
  /** From the answer's Content-Disposition. */
  name: string | null;
}

export interface AgentRef {
  id: string;
  name?: string;
}

export interface Handover {
  id: string;
  conversationId: string;
  queueId: string;
  state: HandoverState;
  user: Record<string, unknown>;
  metadata: Record<string, unknown>;
  agent: AgentRef | null;
  endReason: EndReason | null;
  position: number | null;
  estimatedWaitSeconds: number | null;
  createdAt: string;
  acceptedAt: string | null;
  endedAt: string | null;
}

export interface Availability {
  available: boolean;
  reason?: 'closed' | 'no_agents' | 'at_capacity' | 'degraded';
  /** With `degraded`: the helpdesk is `failing` (not answering), `slow`, or has a `backlog`. */
  cause?: 'failing' | 'slow' | 'backlog';
  /** With `degraded`: the measured figures behind the cause. */
  details?: Record<string, number | null>;
  agentsOnline: number | null;
  queueLength: number;
  estimatedWaitSeconds: number | null;
  nextOpenAt: string | null;
}

export interface CreateHandoverInput {
  conversationId: string;
  queue: string;
  user: User;
  transcript?: TranscriptEntry[];
  metadata?: Record<string, unknown>;
}

export interface CreateHandoverResult {
  handover: Handover;
  /** `false`: the conversation already had this live handover (200), nothing new was created. */
  created: boolean;
}

export interface NewMessage {
  /** Your id for the message: a repeat is stored once. The client makes one when you give none. */
  id?: string;
  text: string;
  /** Files uploaded to the handover (`{ id }`), or links the agent can open (`{ url, name?, contentType? }`). */
  attachments?: Array<AttachmentRef | Attachment>;
}

interface EventBase<T extends string, D> {
  /** `evt_…`: the stream position, and the `webhook-id` of its webhook. */
  id: string;
  type: T;
  handoverId: string;
  conversationId: string;
  createdAt: string;
  data: D;
}

export type HandoverQueuedEvent = EventBase<'handover.queued', { queue: string; position: number | null; estimatedWaitSeconds: number | null }>;
export type HandoverAcceptedEvent = EventBase<'handover.accepted', { agent: AgentRef }>;
export type AgentMessageEvent = EventBase<
  'message.created',
  { message: { id: string; text: string; attachments: Attachment[]; createdAt: string }; agent: AgentRef }
>;
export type AgentTypingEvent = EventBase<'agent.typing', { typing: boolean }>;
export type QueueUpdatedEvent = EventBase<'queue.updated', { position: number | null; estimatedWaitSeconds: number | null }>;
export type HandoverTransferredEvent = EventBase<'handover.transferred', { fromQueueId?: string; queue?: string; [key: string]: unknown }>;
export type HandoverEndedEvent = EventBase<'handover.ended', { reason: EndReason; detail?: string }>;

/** Every event a bot receives, by stream, webhook or poll; switch on `type`. */
export type BotEvent =
  HandoverQueuedEvent | HandoverAcceptedEvent | AgentMessageEvent | AgentTypingEvent | QueueUpdatedEvent | HandoverTransferredEvent | HandoverEndedEvent;

/** A user's satisfaction rating of an ended handover. */
export interface RatingInput {
  /** 1 (very unhappy) to 5 (very happy). */
  score: number;
  comment?: string;
}

export interface Rating {
  handoverId: string;
  score: number;
  comment: string | null;
  createdAt: string;
}

export interface EventPage {
  events: BotEvent[];
  /** Pass as `after` for the next page; null when there was none. */
  next: string | null;
}

export interface UserExport {
  userId: string;
  exportedAt: string;
  handovers: Array<Record<string, unknown>>;
}

export interface Erasure {
  erased: { handovers: number; messages: number; events: number };
}
