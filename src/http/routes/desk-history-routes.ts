import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../../deps.js';
import { getHandover } from '../../handover/queries.js';
import { getQueue } from '../../routing/queues.js';
import { earlierHandovers, historyScopes, searchHistory, HISTORY_PAGE_MAX, type HistoryItem } from '../../desk/history.js';
import { assertDeskVisible } from '../../desk/visibility.js';
import { findRating } from '../../desk/ratings.js';
import { AppError } from '../../resilience/errors.js';
import { deskAuth } from '../auth.js';
import { handoverJson } from '../views.js';
import { AgentInfoSchema, HandoverSchema, IdParams, Nullable, TranscriptSchema, errorResponses, literalUnion } from '../schemas.js';
import { endReasons } from '../../model/handover.js';

const tags = ['Desk API'];
const security = [{ deskSession: [] }];

const RatingSummarySchema = Type.Object(
  { score: Type.Integer({ minimum: 1, maximum: 5 }), comment: Nullable(Type.String()) },
  { title: 'RatingSummary', description: "The user's satisfaction rating, recorded by the bot after the chat ended (null: none)." },
);
const HistoryItemSchema = Type.Object(
  {
    id: Type.String(),
    conversationId: Type.String(),
    user: Type.Record(Type.String(), Type.Unknown()),
    queue: Type.String(),
    agent: Nullable(AgentInfoSchema),
    endReason: Nullable(literalUnion(endReasons)),
    createdAt: Type.String(),
    endedAt: Type.String(),
    preview: Nullable(Type.String({ description: 'The last message (or the last line of the conversation with the bot), up to 200 characters.' })),
    rating: Nullable(RatingSummarySchema),
  },
  { title: 'HistoryItem' },
);
const DateParam = (description: string) =>
  Type.Optional(Type.String({ maxLength: 40, pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+(Z|[+-][0-9]{2}:?[0-9]{2})?)?$', description }));

const itemJson = (i: HistoryItem) => ({
  id: i.id,
  conversationId: i.conversationId,
  user: { ...i.user },
  queue: i.queue,
  agent: i.agent,
  endReason: i.endReason,
  createdAt: i.createdAt.toISOString(),
  endedAt: i.endedAt.toISOString(),
  preview: i.preview,
  rating: i.rating,
});

/** A date or date-time of the query; a bare date is midnight UTC, and as `to` the whole day counts. */
function parseDate(value: string | undefined, name: string, endOfDay: boolean): Date | undefined {
  if (value === undefined) return undefined;
  const dateOnly = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(value);
  const at = new Date(dateOnly ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(at.getTime())) throw new AppError('invalid_request', { message: `\`${name}\` is not a date: ${value}.` });
  const moment = dateOnly && endOfDay ? new Date(at.getTime() + 86_400_000) : at;
  if (moment.getTime() < FIRST_DAY || moment.getTime() > PAST_LAST_DAY) {
    throw new AppError('invalid_request', { message: `\`${name}\` is out of range: ${value} (years 0001 to 9998).` });
  }
  return moment;
}

/** The dates a query may name: the database holds years 1 to 9999, and `to` may move a day on. */
const FIRST_DAY = new Date(0).setUTCFullYear(1, 0, 1);
const PAST_LAST_DAY = Date.UTC(9999, 0, 1);

/** The desk's history of closed chats, and a chat read on its own (docs/desk.md, "History"). */
export function deskHistoryRoutes(deps: Deps): FastifyPluginAsync {
  return async (plugin) => {
    const desk = plugin.withTypeProvider<TypeBoxTypeProvider>();
    desk.addHook('onRequest', deskAuth(deps.db, deps.config.desk.sessionIdleSeconds));

    desk.get(
      '/v1/desk/history',
      {
        schema: {
          tags,
          security,
          querystring: Type.Object({
            scope: Type.Optional(
              literalUnion(historyScopes, {
                description: '`mine` (default): chats you held last; `team`: every closed chat of the queues you serve (a supervisor: every desk queue).',
              }),
            ),
            user: Type.Optional(Type.String({ maxLength: 256, description: "A user id (exactly), or part of the user's name or email." })),
            q: Type.Optional(Type.String({ maxLength: 200, description: 'Part of a message or of the conversation with the bot (case-insensitive).' })),
            from: DateParam('Ended at or after this date or time (a date: from its start, UTC).'),
            to: DateParam('Ended before this time; a date counts whole (UTC).'),
            before: Type.Optional(Type.String({ maxLength: 200, description: 'The `next` of the previous page.' })),
            limit: Type.Optional(Type.String({ pattern: '^([1-9]|[1-4][0-9]|50)$', description: `Chats per page, 1 to ${HISTORY_PAGE_MAX} (default 20).` })),
          }),
          response: {
            200: Type.Object({
              handovers: Type.Array(HistoryItemSchema),
              next: Nullable(Type.String({ description: 'Pass as `before` for the next page; null: no more.' })),
            }),
            ...errorResponses,
          },
        },
      },
      async (request) => {
        const query = request.query;
        const { items, next } = await searchHistory(deps.db, request.agent, {
          scope: query.scope ?? 'mine',
          user: query.user,
          text: query.q,
          from: parseDate(query.from, 'from', false),
          to: parseDate(query.to, 'to', true),
          cursor: query.before,
          limit: Number(query.limit ?? 20),
        });
        return { handovers: items.map(itemJson), next };
      },
    );

    desk.get(
      '/v1/desk/handovers/:id',
      {
        schema: {
          tags,
          security,
          params: IdParams,
          response: {
            200: Type.Intersect([HandoverSchema, Type.Object({ transcript: TranscriptSchema, queue: Type.String(), rating: Nullable(RatingSummarySchema) })], {
              title: 'DeskHandoverDetail',
            }),
            ...errorResponses,
          },
        },
      },
      async (request) => {
        const view = await getHandover(deps.db, request.tenantId, request.params.id);
        assertDeskVisible(request.agent, view.handover);
        const [queue, rating] = await Promise.all([
          getQueue(deps.db, request.tenantId, view.handover.queueId),
          findRating(deps.db, request.tenantId, view.handover.id),
        ]);
        return {
          ...handoverJson(view),
          transcript: view.handover.transcript,
          queue: queue.name,
          rating: rating && { score: rating.score, comment: rating.comment },
        };
      },
    );

    desk.get(
      '/v1/desk/handovers/:id/earlier',
      { schema: { tags, security, params: IdParams, response: { 200: Type.Object({ handovers: Type.Array(HistoryItemSchema) }), ...errorResponses } } },
      async (request) => ({ handovers: (await earlierHandovers(deps.db, request.agent, request.params.id)).map(itemJson) }),
    );
  };
}
