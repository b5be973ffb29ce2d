import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AppError, errorCatalogue } from '../../resilience/errors.js';
import { findQueueByName } from '../../routing/queues.js';
import { agentSideHealth, checkAvailability } from '../../routing/availability.js';
import { requestHandover } from '../../handover/request-handover.js';
import { getHandover } from '../../handover/queries.js';
import { postUserMessage, postUserTyping } from '../../handover/messages.js';
import { endHandover } from '../../handover/lifecycle.js';
import { latestPosition, positionAfterErased, positionOf, readEvents } from '../../handover/events.js';
import type { Deps } from '../../deps.js';
import { bearerToken, botAuth } from '../auth.js';
import { apiKeyIsLive, CREDENTIALS_CHANNEL, digest, type ApiKeyIdentity } from '../../tenants/tenants.js';
import { openSse } from '../sse.js';
import { endWithCredential, StreamCounts } from '../stream-guard.js';
import { handoverJson } from '../views.js';
import { eraseUser, exportUser } from '../../privacy/user-data.js';
import { resolveAttachments } from '../../attachments/attachments.js';
import {
  AvailabilitySchema,
  EventSchema,
  HandoverSchema,
  IdParams,
  NewMessageBody,
  TranscriptSchema,
  TypingBody,
  UserSchema,
  emptyBodyAsObject,
  errorResponses,
  literalUnion,
} from '../schemas.js';

const tags = ['Bot API'];
const security = [{ apiKey: [] }];

/** Re-read of the event log when no signal came: the bus wakes streams, this only covers a bug or a lost signal. */
const SAFETY_POLL_MS = 30_000;
export function botRoutes(deps: Deps, authenticate: (apiKey: string) => Promise<ApiKeyIdentity>): FastifyPluginAsync {
  const openStreams = new StreamCounts(deps.config.http.streams.maxPerCredential);
  return async (plugin) => {
    const app = plugin.withTypeProvider<TypeBoxTypeProvider>();
    app.addHook('onRequest', botAuth(authenticate));

    const UserParams = Type.Object({ userId: Type.String({ minLength: 1, maxLength: 200 }) });
    app.get(
      '/v1/users/:userId/export',
      {
        schema: {
          tags: ['Privacy'],
          security,
          summary: "Everything stored of one end user (the bot's user.id): handovers, messages and events",
          params: UserParams,
          response: {
            200: Type.Object({ userId: Type.String(), exportedAt: Type.String(), handovers: Type.Array(Type.Record(Type.String(), Type.Unknown())) }),
            ...errorResponses,
          },
        },
      },
      async (request) => exportUser(deps.db, request.tenantId, request.params.userId, deps.now()),
    );
    app.delete(
      '/v1/users/:userId',
      {
        schema: {
          tags: ['Privacy'],
          security,
          summary: 'Erase everything stored of one end user (refused while the user is in a live handover)',
          params: UserParams,
          response: {
            200: Type.Object({ erased: Type.Object({ handovers: Type.Integer(), messages: Type.Integer(), events: Type.Integer() }) }),
            ...errorResponses,
          },
        },
      },
      async (request) => ({ erased: await eraseUser(deps, request.tenantId, request.params.userId, { actor: 'bot-api-key', address: request.ip }) }),
    );

    app.get(
      '/v1/availability',
      {
        schema: {
          tags,
          security,
          summary: 'Can a user reach a person in this queue now?',
          querystring: Type.Object({ queue: Type.String({ minLength: 1, maxLength: 200 }) }),
          response: { 200: AvailabilitySchema, ...errorResponses },
        },
      },
      async (request) => {
        const queue = await findQueueByName(deps.db, request.tenantId, request.query.queue);
        return checkAvailability(deps.db, queue, deps.now(), agentSideHealth(deps));
      },
    );

    app.post(
      '/v1/handovers',
      {
        schema: {
          tags,
          security,
          summary: 'Ask for a human',
          description:
            'Checks availability first: a closed queue, no agent online or a full line are answered 409 with the reason, so the bot can fall back. A conversation has at most one live handover: asking again returns it with 200. Honours Idempotency-Key.',
          headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) }),
          body: Type.Object(
            {
              conversationId: Type.String({ minLength: 1, maxLength: 256 }),
              queue: Type.String({ minLength: 1, maxLength: 200 }),
              user: UserSchema,
              transcript: Type.Optional(TranscriptSchema),
              metadata: Type.Optional(Type.Record(Type.String({ maxLength: 128 }), Type.Unknown(), { maxProperties: 100 })),
            },
            { additionalProperties: false },
          ),
          response: { 200: HandoverSchema, 201: HandoverSchema, ...errorResponses },
        },
      },
      async (request, reply) => {
        const result = await requestHandover(deps, { tenantId: request.tenantId, ...request.body, idempotencyKey: request.headers['idempotency-key'] });
        // A replay answers like the original request; an existing live handover is a 200 the bot can tell apart.
        if (result.outcome === 'existing') return reply.code(200).send(handoverJson(result));
        return reply.code(201).header('location', `/v1/handovers/${result.handover.id}`).send(handoverJson(result));
      },
    );

    app.get(
      '/v1/handovers/:id',
      { schema: { tags, security, summary: 'A handover and its state', params: IdParams, response: { 200: HandoverSchema, ...errorResponses } } },
      async (request) => handoverJson(await getHandover(deps.db, request.tenantId, request.params.id)),
    );

    app.post(
      '/v1/handovers/:id/messages',
      {
        schema: {
          tags,
          security,
          summary: "Relay the user's message to the agent",
          params: IdParams,
          body: NewMessageBody,
          response: { 202: Type.Object({ id: Type.String() }), ...errorResponses },
        },
      },
      async (request, reply) => {
        const attachments = await resolveAttachments(deps, {
          tenantId: request.tenantId,
          handoverId: request.params.id,
          attachments: request.body.attachments,
        });
        const { id } = await postUserMessage(deps, {
          tenantId: request.tenantId,
          handoverId: request.params.id,
          clientId: request.body.id,
          text: request.body.text,
          attachments,
        });
        // The answer is returned, not sent: an async handler that returns the reply makes Fastify wait
        // for the response's end with listeners of its own, on every message.
        reply.code(202);
        return { id };
      },
    );

    app.post(
      '/v1/handovers/:id/typing',
      {
        schema: {
          tags,
          security,
          summary: 'The user is typing (or stopped)',
          params: IdParams,
          body: TypingBody,
          response: { 202: Type.Object({}), ...errorResponses },
        },
      },
      async (request, reply) => {
        await postUserTyping(deps, { tenantId: request.tenantId, handoverId: request.params.id, typing: request.body.typing });
        reply.code(202);
        return {};
      },
    );

    app.post(
      '/v1/handovers/:id/end',
      {
        // The body is optional: none (or an empty one) ends with the default reason.
        preValidation: emptyBodyAsObject,
        schema: {
          tags,
          security,
          summary: 'End the handover from the bot side',
          params: IdParams,
          body: Type.Optional(
            Type.Object({ reason: Type.Optional(literalUnion(['bot_ended', 'user_ended', 'abandoned'] as const)) }, { additionalProperties: false }),
          ),
          response: { 200: HandoverSchema, ...errorResponses },
        },
      },
      async (request) => {
        const handover = await endHandover(deps, {
          tenantId: request.tenantId,
          handoverId: request.params.id,
          reason: request.body?.reason ?? 'bot_ended',
          by: 'bot',
        });
        return handoverJson({ handover, position: null, estimatedWaitSeconds: null });
      },
    );

    app.get(
      '/v1/handovers/:id/events',
      {
        schema: {
          tags,
          security,
          summary: "A handover's events, oldest first (JSON poll)",
          params: IdParams,
          querystring: Type.Object({ after: Type.Optional(Type.String({ maxLength: 64 })), limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })) }),
          response: { 200: Type.Object({ events: Type.Array(EventSchema), next: Type.Union([Type.String(), Type.Null()]) }), ...errorResponses },
        },
      },
      async (request) => {
        await getHandover(deps.db, request.tenantId, request.params.id);
        const afterPos = request.query.after ? await requirePosition(deps, request.tenantId, request.query.after) : 0;
        const limit = Math.min(Math.max(Number(request.query.limit ?? 100), 1), 1000);
        const events = await readEvents(deps.db, { tenantId: request.tenantId, afterPos, handoverId: request.params.id, limit });
        return { events: events.map(({ pos: _pos, ...e }) => e), next: events.at(-1)?.id ?? request.query.after ?? null };
      },
    );

    app.get(
      '/v1/events',
      {
        config: { admission: 'stream' },
        // A HEAD of a stream would open one that never sends its head: no such route (Fastify adds one per GET).
        exposeHeadRoute: false,
        schema: {
          tags,
          security,
          summary: "The tenant's live event stream (Server-Sent Events)",
          description:
            "Resumable: send the last event id you processed as Last-Event-ID (or ?after=). Without one, the stream starts with the next event. An event no longer stored (its user's data erased, or past the tenant's retention) still resumes the stream, from the events made up to five minutes before it (some may come again); an id that is no event of this service's is 400 invalid_cursor.",
          headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ maxLength: 64 })) }),
          querystring: Type.Object({ after: Type.Optional(Type.String({ maxLength: 64 })) }),
          response: errorResponses,
        },
      },
      async (request, reply) => {
        const tenantId = request.tenantId;
        const cursor = request.headers['last-event-id'] || request.query.after;
        let pos = cursor ? await requirePosition(deps, tenantId, cursor) : await latestPosition(deps.db, tenantId);
        const keyHash = digest(bearerToken(request));
        const release = openStreams.take(keyHash, 'API key');
        const stream = openSse(request, reply);
        stream.onClose(release);
        // The stream lives as long as its key: checked on every revocation signal and every few seconds.
        const watch = endWithCredential(stream, {
          everyMs: deps.config.http.streams.recheckMs,
          stillValid: () => apiKeyIsLive(deps.db, keyHash),
          finalEvent: () => ({ event: 'error', data: { error: { code: 'credential_revoked', message: errorCatalogue.credential_revoked.message } } }),
          log: request.log,
        });
        const unwatch = deps.bus.subscribe(CREDENTIALS_CHANNEL, (message) => {
          // A revocation of this tenant's keys, or the bus's own resync (signals may have been lost).
          const { type, tenantId: of } = message as { type?: string; tenantId?: string };
          if (of === tenantId || type === 'resync') watch.recheck();
        });
        // The key was read from a cache: a key revoked within its lifetime is found out now.
        watch.recheck();
        let reading = false;
        let again = false;
        const pump = async (): Promise<void> => {
          if (reading) {
            again = true;
            return;
          }
          reading = true;
          try {
            do {
              again = false;
              for (;;) {
                const events = await readEvents(deps.db, { tenantId, afterPos: pos, limit: 500 });
                for (const { pos: eventPos, ...event } of events) {
                  if (stream.closed) return;
                  await stream.send({ id: event.id, event: event.type, data: event });
                  pos = eventPos;
                }
                if (events.length < 500) break;
              }
            } while (again && !stream.closed);
          } catch (err) {
            request.log.warn({ err }, 'reading events for an SSE stream failed; the next wake-up retries');
          } finally {
            reading = false;
          }
        };
        // Every signal (including the bus's own resync while Redis is away) means "re-read from pos".
        const unsubscribe = deps.bus.subscribe(`events:${tenantId}`, () => void pump());
        // The bus is a wake-up, not the truth: a slow poll covers a signal lost anyway.
        const poll = setInterval(() => void pump(), SAFETY_POLL_MS);
        stream.onClose(() => {
          unsubscribe();
          unwatch();
          clearInterval(poll);
        });
        await pump();
      },
    );
  };
}

/** The position of an event id; of an erased event, from about its time (positionAfterErased). */
async function requirePosition(deps: Deps, tenantId: string, eventId: string): Promise<number> {
  const pos = (await positionOf(deps.db, tenantId, eventId)) ?? (await positionAfterErased(deps.db, tenantId, eventId));
  if (pos === null) throw new AppError('invalid_cursor', { message: `Event "${eventId}" is unknown for this tenant; resume from an id this service sent.` });
  return pos;
}
