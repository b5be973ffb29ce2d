import { Type, type TSchema } from '@sinclair/typebox';
import { endReasons } from '../../model/handover.js';
import { inboundBodySchema } from '../../connectors/webhook/webhook-webhook.js';
import { Nullable, literalUnion } from '../schemas.js';

/**
 * The events the service sends, typed for the OpenAPI document: what a bot receives (signed webhook,
 * SSE stream, JSON poll) and what a generic-webhook helpdesk receives (docs/generic-webhook.md). Each
 * `title` becomes a named component; the document's `webhooks` section refers to them.
 *
 * To add an event type: add it to `botEventTypes` (model/handover.ts) and its schema here; the
 * document test fails until every type has one.
 */

const AgentRef = Type.Object({ id: Type.String(), name: Type.Optional(Type.String()) }, { title: 'AgentRef' });
const EventAttachment = Type.Object(
  {
    url: Type.String({
      description:
        'A file kept by this service (with `id`): a signed link, valid for HANDOVER_ATTACHMENT_LINK_TTL_SECONDS; after that, `GET /v1/handovers/{id}/attachments/{attachmentId}` with the API key.',
    }),
    name: Type.Optional(Type.String()),
    contentType: Type.Optional(Type.String()),
    id: Type.Optional(Type.String()),
    size: Type.Optional(Type.Integer()),
  },
  { title: 'EventAttachment' },
);

/** One bot event: the envelope with its type fixed and its data typed. */
function botEvent<T extends string, D extends TSchema>(type: T, title: string, description: string, data: D) {
  return Type.Object(
    {
      id: Type.String({ description: 'Stable event id (`evt_…`): the SSE `id`, the `webhook-id` of its webhook, the cursor to resume from.' }),
      type: Type.Literal(type),
      handoverId: Type.String(),
      conversationId: Type.String({ description: "The bot's own conversation id, as sent when the handover was requested." }),
      createdAt: Type.String({ format: 'date-time' }),
      data,
    },
    { title, description },
  );
}

export const botEventSchemas = {
  'handover.queued': botEvent(
    'handover.queued',
    'HandoverQueuedEvent',
    'The handover waits for an agent; the bot may tell the user their place in line.',
    Type.Object({ queue: Type.String(), position: Nullable(Type.Integer()), estimatedWaitSeconds: Nullable(Type.Integer()) }),
  ),
  'handover.accepted': botEvent(
    'handover.accepted',
    'HandoverAcceptedEvent',
    'An agent joined: the bot goes silent and relays the user.',
    Type.Object({ agent: AgentRef }),
  ),
  'message.created': botEvent(
    'message.created',
    'AgentMessageEvent',
    "The agent's message, for the bot to show to the user. Drop duplicates by `data.message.id`.",
    Type.Object({
      message: Type.Object({
        id: Type.String(),
        text: Type.String(),
        attachments: Type.Array(EventAttachment),
        createdAt: Type.String({ format: 'date-time' }),
      }),
      agent: AgentRef,
    }),
  ),
  'agent.typing': botEvent('agent.typing', 'AgentTypingEvent', 'The agent started or stopped typing.', Type.Object({ typing: Type.Boolean() })),
  'queue.updated': botEvent(
    'queue.updated',
    'QueueUpdatedEvent',
    'The place in line or the wait estimate changed.',
    Type.Object({ position: Nullable(Type.Integer()), estimatedWaitSeconds: Nullable(Type.Integer()) }),
  ),
  'handover.transferred': botEvent(
    'handover.transferred',
    'HandoverTransferredEvent',
    'The handover moved to another queue (from the desk: `fromQueueId` and `queue`; from an external helpdesk: what it sent).',
    Type.Object({ fromQueueId: Type.Optional(Type.String()), queue: Type.Optional(Type.String()) }, { additionalProperties: true }),
  ),
  'handover.ended': botEvent(
    'handover.ended',
    'HandoverEndedEvent',
    'The handover ended: the bot takes over the conversation again.',
    Type.Object({
      reason: literalUnion(endReasons),
      detail: Type.Optional(Type.String({ description: 'Why, when the agent side gave a reason (a failure, a refusal).' })),
    }),
  ),
} satisfies Record<string, TSchema>;

/** Any bot event: one of the above, told apart by `type`. */
export function botEventUnion(ref: (title: string) => unknown): Record<string, unknown> {
  const titles = Object.entries(botEventSchemas).map(([type, schema]) => [type, String(schema.title)] as const);
  return {
    title: 'BotEvent',
    description: "An event for the bot, as sent by webhook, on the SSE stream (the frame's `data`) and by the JSON poll.",
    oneOf: titles.map(([, title]) => ref(title)),
    discriminator: { propertyName: 'type', mapping: Object.fromEntries(titles.map(([type, title]) => [type, `#/components/schemas/${title}`])) },
  };
}

/** What the service sends a generic-webhook helpdesk (docs/generic-webhook.md). */
function helpdeskEvent(type: string, title: string, description: string, data: TSchema): TSchema {
  return Type.Object(
    {
      id: Type.String({ description: 'Stable event id: drop duplicates by it.' }),
      type: Type.Literal(type),
      handoverId: Type.String(),
      conversationId: Type.String(),
      createdAt: Type.String({ format: 'date-time' }),
      data,
    },
    { title, description },
  );
}

const HelpdeskUser = Type.Object(
  { id: Type.String(), name: Type.Optional(Type.String()), email: Type.Optional(Type.String()), locale: Type.Optional(Type.String()) },
  { title: 'HelpdeskUser' },
);
const HelpdeskTranscriptEntry = Type.Object(
  { role: literalUnion(['user', 'bot'] as const), text: Type.String(), at: Type.Optional(Type.String()) },
  { title: 'TranscriptEntry' },
);

export const helpdeskEventSchemas: Record<string, TSchema> = {
  'handover.requested': helpdeskEvent(
    'handover.requested',
    'HelpdeskHandoverRequested',
    'A user asks for a person: open a conversation for your agents and show the transcript.',
    Type.Object({
      queue: Type.String(),
      user: HelpdeskUser,
      transcript: Type.Array(HelpdeskTranscriptEntry),
      metadata: Type.Object({}, { additionalProperties: true }),
    }),
  ),
  'message.created': helpdeskEvent(
    'message.created',
    'HelpdeskUserMessage',
    "The user's message, for the agent.",
    Type.Object({
      message: Type.Object({
        id: Type.String(),
        text: Type.String(),
        attachments: Type.Array(EventAttachment),
        createdAt: Type.String({ format: 'date-time' }),
      }),
    }),
  ),
  'user.typing': helpdeskEvent(
    'user.typing',
    'HelpdeskUserTyping',
    'The user started or stopped typing (best effort: never retried).',
    Type.Object({ typing: Type.Boolean() }),
  ),
  'handover.ended': helpdeskEvent(
    'handover.ended',
    'HelpdeskHandoverEnded',
    'The bot side ended the handover: close the conversation.',
    Type.Object({ reason: literalUnion(endReasons) }),
  ),
};

export const HelpdeskBatch = Type.Object(
  { type: Type.Literal('batch'), events: Type.Array(Type.Unsafe({ $ref: '#/components/schemas/HelpdeskEvent' }), { minItems: 1 }) },
  { title: 'HelpdeskBatch', description: 'Batch mode: several events, of one or many handovers, in one call (never two of one handover).' },
);

export const HelpdeskBatchAnswer = Type.Object(
  {
    results: Type.Array(Type.Object({ id: Type.String(), status: literalUnion(['ok', 'retry', 'failed'] as const), error: Type.Optional(Type.String()) }), {
      description: 'A result per event, by its id; an event missing here is sent again.',
    }),
  },
  { title: 'HelpdeskBatchAnswer' },
);

/** The generic webhook protocol's inbound events (from the helpdesk to `POST /v1/connectors/{connectorId}/events`). */
export const GenericInboundEvent = {
  ...inboundBodySchema,
  title: 'GenericInboundEvent',
  description: 'An event from a generic-webhook helpdesk (docs/generic-webhook.md).',
};
