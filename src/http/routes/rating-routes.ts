import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../../deps.js';
import type { ApiKeyIdentity } from '../../tenants/tenants.js';
import { rateHandover, RATING_COMMENT_MAX, RATING_MAX, RATING_MIN, type Rating } from '../../desk/ratings.js';
import { botAuth } from '../auth.js';
import { IdParams, Nullable, errorResponses } from '../schemas.js';

export const RatingSchema = Type.Object(
  {
    handoverId: Type.String(),
    score: Type.Integer({ minimum: RATING_MIN, maximum: RATING_MAX }),
    comment: Nullable(Type.String()),
    createdAt: Type.String(),
  },
  { title: 'Rating' },
);

export const ratingJson = (r: Rating) => ({ handoverId: r.handoverId, score: r.score, comment: r.comment, createdAt: r.createdAt.toISOString() });

/** The bot records the user's satisfaction rating of an ended handover (docs/api.md, "Satisfaction ratings"). */
export function ratingRoutes(deps: Deps, authenticate: (apiKey: string) => Promise<ApiKeyIdentity>): FastifyPluginAsync {
  return async (plugin) => {
    const app = plugin.withTypeProvider<TypeBoxTypeProvider>();
    app.addHook('onRequest', botAuth(authenticate));
    app.post(
      '/v1/handovers/:id/rating',
      {
        schema: {
          tags: ['Bot API'],
          security: [{ apiKey: [] }],
          summary: "Record the user's satisfaction rating (1 to 5, with an optional comment) of an ended handover, once",
          description:
            'The same rating sent again answers 200 with the one recorded; a different one is `409 rating_conflict`. A live handover is `409 handover_not_ended`.',
          params: IdParams,
          body: Type.Object(
            {
              score: Type.Integer({ minimum: RATING_MIN, maximum: RATING_MAX, description: '1 (very unhappy) to 5 (very happy).' }),
              comment: Type.Optional(Type.String({ maxLength: RATING_COMMENT_MAX, description: "The user's words, if they gave any." })),
            },
            { additionalProperties: false },
          ),
          response: { 200: RatingSchema, 201: RatingSchema, ...errorResponses },
        },
      },
      async (request, reply) => {
        const { rating, created } = await rateHandover(deps, {
          tenantId: request.tenantId,
          handoverId: request.params.id,
          score: request.body.score,
          comment: request.body.comment,
        });
        return reply.code(created ? 201 : 200).send(ratingJson(rating));
      },
    );
  };
}
