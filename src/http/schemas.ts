import { Type, type TSchema } from '@sinclair/typebox';
import { botEventTypes, endReasons, handoverStates } from '../model/handover.js';
import { degradedCauses, unavailableReasons } from '../routing/availability.js';

/** Schemas shared by several routes. Route-specific ones live beside their route. */
export const Nullable = <T extends TSchema>(schema: T, options: { description?: string } = {}) => Type.Union([schema, Type.Null()], options);
/** A string enum typed as the union of its values (a plain `enum` in the OpenAPI document). */
export const literalUnion = <T extends readonly string[]>(values: T, options: { description?: string } = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });

export const ErrorSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable snake_case code to branch on (docs/errors.md).' }),
      message: Type.String({ description: 'What went wrong and what to do next, for people.' }),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Facts for the code: validation problems, the next opening time, …' })),
    }),
  },
  { title: 'Error', description: 'The error envelope of every 4xx and 5xx answer.' },
);

export const errorResponses = {
  400: ErrorSchema,
  401: ErrorSchema,
  404: ErrorSchema,
  409: ErrorSchema,
  413: ErrorSchema,
  503: ErrorSchema,
};

export const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });

export const UserSchema = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 256 }),
    name: Type.Optional(Type.String({ maxLength: 256 })),
    email: Type.Optional(Type.String({ maxLength: 320 })),
    locale: Type.Optional(Type.String({ maxLength: 35 })),
  },
  { additionalProperties: false, title: 'User', description: "The end user, as the bot knows them; `id` is the bot's own user id." },
);

export const AttachmentSchema = Type.Object(
  {
    // Fetched or shown as a link by the agent's side: an http(s) URL, never `javascript:` or `data:`.
    url: Type.String({ minLength: 1, maxLength: 2048, pattern: '^[Hh][Tt][Tt][Pp][Ss]?://[^\\s]+$', description: 'An http or https URL.' }),
    name: Type.Optional(Type.String({ maxLength: 256 })),
    contentType: Type.Optional(Type.String({ maxLength: 128 })),
  },
  { additionalProperties: false, title: 'Attachment' },
);

/** A file uploaded to the handover first (`POST …/attachments`), sent by its id. */
export const AttachmentRefSchema = Type.Object(
  { id: Type.String({ minLength: 1, maxLength: 64, description: 'The id the upload answered (`att_…`).' }) },
  { additionalProperties: false, title: 'AttachmentRef' },
);

/** An attachment as read: a file kept by this service has its id, size, and a link signed for a short time. */
export const MessageAttachmentSchema = Type.Object(
  {
    url: Type.String({ description: 'For a file kept by this service: a signed link, valid for HANDOVER_ATTACHMENT_LINK_TTL_SECONDS from this answer.' }),
    name: Type.Optional(Type.String()),
    contentType: Type.Optional(Type.String()),
    id: Type.Optional(Type.String({ description: 'A file kept by this service (`att_…`).' })),
    size: Type.Optional(Type.Integer()),
  },
  { title: 'MessageAttachment' },
);

export const TranscriptSchema = Type.Array(
  Type.Object(
    { role: literalUnion(['user', 'bot'] as const), text: Type.String({ maxLength: 20000 }), at: Type.Optional(Type.String({ maxLength: 40 })) },
    { additionalProperties: false },
  ),
  { maxItems: 500, title: 'Transcript', description: 'The conversation so far, oldest first, for the agent to read.' },
);

export const AgentInfoSchema = Type.Object({ id: Type.String(), name: Type.Optional(Type.String()) }, { title: 'AgentRef' });

export const HandoverSchema = Type.Object(
  {
    id: Type.String(),
    conversationId: Type.String(),
    queueId: Type.String(),
    state: literalUnion(handoverStates),
    user: Type.Record(Type.String(), Type.Unknown()),
    metadata: Type.Record(Type.String(), Type.Unknown()),
    agent: Nullable(AgentInfoSchema),
    endReason: Nullable(literalUnion(endReasons)),
    position: Nullable(Type.Integer()),
    estimatedWaitSeconds: Nullable(Type.Integer()),
    createdAt: Type.String(),
    acceptedAt: Nullable(Type.String()),
    endedAt: Nullable(Type.String()),
  },
  { title: 'Handover' },
);

export const EventSchema = Type.Object(
  {
    id: Type.String(),
    type: literalUnion(botEventTypes),
    handoverId: Type.String(),
    conversationId: Type.String(),
    createdAt: Type.String(),
    data: Type.Record(Type.String(), Type.Unknown()),
  },
  { title: 'BotEvent' },
);

export const AvailabilitySchema = Type.Object(
  {
    available: Type.Boolean(),
    reason: Type.Optional(literalUnion(unavailableReasons)),
    cause: Type.Optional(
      literalUnion(degradedCauses, {
        description:
          'With `degraded`: `failing` (the system is not answering; calls paused), `slow` (it answers, slower than its latency objective), `backlog` (too much waits for it).',
      }),
    ),
    details: Type.Optional(
      Type.Record(Type.String(), Nullable(Type.Number()), {
        description:
          'With `degraded`: the measured figures behind the cause (for `slow`: callP99Ms, normalCallP99Ms, callObjectiveMs, deliveryLagP99Ms, lagObjectiveMs).',
      }),
    ),
    agentsOnline: Nullable(Type.Integer(), {
      description:
        'Built-in desk: agents of the queue who are available and at a desk now (a desk console open, or closed less than HANDOVER_PRESENCE_GRACE_MS ago). An external system: what it last reported; null when it does not tell.',
    }),
    queueLength: Type.Integer(),
    estimatedWaitSeconds: Nullable(Type.Integer()),
    nextOpenAt: Nullable(Type.String()),
  },
  { title: 'Availability' },
);

export const MessageSchema = Type.Object(
  {
    id: Type.String(),
    seq: Type.Integer(),
    direction: literalUnion(['to_agent', 'to_user'] as const),
    sender: Type.Object({ type: Type.String(), id: Type.Optional(Type.String()), name: Type.Optional(Type.String()) }),
    text: Type.String(),
    attachments: Type.Array(MessageAttachmentSchema),
    createdAt: Type.String(),
  },
  { title: 'Message' },
);

export const NewMessageBody = Type.Object(
  {
    id: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'Your id for this message; a repeated id is stored once.' })),
    text: Type.String({ maxLength: 20000 }),
    attachments: Type.Optional(
      Type.Array(Type.Union([AttachmentRefSchema, AttachmentSchema]), {
        maxItems: 20,
        description: 'Files uploaded to this handover first, by id (`{ "id": "att_…" }`), or links the other side can fetch (`{ "url": … }`).',
      }),
    ),
  },
  { additionalProperties: false, title: 'NewMessage' },
);

export const TypingBody = Type.Object({ typing: Type.Boolean() }, { additionalProperties: false, title: 'Typing' });

/** A `preValidation` hook for a route whose body is optional: no body is validated as `{}`. */
export async function emptyBodyAsObject(request: { body: unknown }): Promise<void> {
  if (request.body === undefined || request.body === null) request.body = {};
}
