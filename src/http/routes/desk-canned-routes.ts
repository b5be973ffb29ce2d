import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../../deps.js';
import { findHandover } from '../../handover/queries.js';
import {
  cannedScopes,
  createCannedResponse,
  deleteCannedResponse,
  fillPlaceholders,
  searchCannedResponses,
  updateCannedResponse,
  CANNED_LIST_MAX,
  type CannedResponse,
} from '../../desk/canned.js';
import { assertDeskVisible } from '../../desk/visibility.js';
import { deskAuth } from '../auth.js';
import { errorResponses, literalUnion } from '../schemas.js';

const tags = ['Desk API'];
const security = [{ deskSession: [] }];

const Shortcut = Type.String({
  minLength: 1,
  maxLength: 40,
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
  description: 'What the agent types after `/` to find it: letters, digits, `_`, `.`, `-`.',
});
const CannedText = Type.String({
  minLength: 1,
  maxLength: 5000,
  description:
    'The reply. Placeholders `{{user.name}}`, `{{user.id}}`, `{{user.email}}`, `{{agent.name}}`, `{{agent.email}}` are filled from the chat it is used in.',
});
const CannedResponseSchema = Type.Object(
  {
    id: Type.String(),
    scope: literalUnion(cannedScopes, { description: "`tenant`: everyone's, managed by supervisors; `personal`: yours only." }),
    shortcut: Type.String(),
    text: Type.String(),
    rendered: Type.Optional(Type.String({ description: 'With `handoverId`: the text with its placeholders filled from that chat.' })),
    updatedAt: Type.String(),
  },
  { title: 'CannedResponse' },
);
const CannedParams = Type.Object({ cannedId: Type.String({ minLength: 1, maxLength: 64 }) });

const cannedJson = (c: CannedResponse, rendered?: string) => ({
  id: c.id,
  scope: c.scope,
  shortcut: c.shortcut,
  text: c.text,
  ...(rendered === undefined ? {} : { rendered }),
  updatedAt: c.updatedAt.toISOString(),
});

/** Canned responses of the desk (docs/desk.md, "Canned responses"). */
export function deskCannedRoutes(deps: Deps): FastifyPluginAsync {
  return async (plugin) => {
    const desk = plugin.withTypeProvider<TypeBoxTypeProvider>();
    desk.addHook('onRequest', deskAuth(deps.db, deps.config.desk.sessionIdleSeconds));

    desk.get(
      '/v1/desk/canned-responses',
      {
        schema: {
          tags,
          security,
          querystring: Type.Object({
            q: Type.Optional(
              Type.String({ maxLength: 100, description: 'Shortcuts starting with it come first, then texts containing it (case-insensitive); empty: all.' }),
            ),
            limit: Type.Optional(Type.String({ pattern: '^([1-9][0-9]?|100)$', description: `How many at most, 1 to ${CANNED_LIST_MAX} (default 20).` })),
            handoverId: Type.Optional(
              Type.String({
                minLength: 1,
                maxLength: 64,
                description: 'A chat you can read: each answer carries `rendered`, its placeholders filled from it.',
              }),
            ),
          }),
          response: { 200: Type.Object({ cannedResponses: Type.Array(CannedResponseSchema) }), ...errorResponses },
        },
      },
      async (request) => {
        const { agent } = request;
        let values: Parameters<typeof fillPlaceholders>[1] | undefined;
        if (request.query.handoverId) {
          const handover = await findHandover(deps.db, agent.tenantId, request.query.handoverId);
          assertDeskVisible(agent, handover);
          values = { user: handover.user, agent: { name: agent.name, email: agent.email } };
        }
        const found = await searchCannedResponses(deps.db, agent, { query: request.query.q ?? '', limit: Number(request.query.limit ?? 20) });
        return { cannedResponses: found.map((c) => cannedJson(c, values ? fillPlaceholders(c.text, values) : undefined)) };
      },
    );

    desk.post(
      '/v1/desk/canned-responses',
      {
        schema: {
          tags,
          security,
          body: Type.Object(
            {
              shortcut: Shortcut,
              text: CannedText,
              scope: Type.Optional(literalUnion(cannedScopes, { description: 'Default `personal`; `tenant` needs the supervisor role.' })),
            },
            { additionalProperties: false },
          ),
          response: { 201: CannedResponseSchema, ...errorResponses },
        },
      },
      async (request, reply) =>
        reply.code(201).send(cannedJson(await createCannedResponse(deps.db, request.agent, { ...request.body, scope: request.body.scope ?? 'personal' }))),
    );

    desk.patch(
      '/v1/desk/canned-responses/:cannedId',
      {
        schema: {
          tags,
          security,
          params: CannedParams,
          body: Type.Object({ shortcut: Type.Optional(Shortcut), text: Type.Optional(CannedText) }, { additionalProperties: false, minProperties: 1 }),
          response: { 200: CannedResponseSchema, ...errorResponses },
        },
      },
      async (request) => cannedJson(await updateCannedResponse(deps.db, request.agent, request.params.cannedId, request.body)),
    );

    desk.delete(
      '/v1/desk/canned-responses/:cannedId',
      { schema: { tags, security, params: CannedParams, response: { 204: Type.Null(), ...errorResponses } } },
      async (request, reply) => {
        await deleteCannedResponse(deps.db, request.agent, request.params.cannedId);
        return reply.code(204).send(null);
      },
    );
  };
}
