import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../../deps.js';
import { deskOverview, takeHandover } from '../../desk/supervision.js';
import { deskAuth, supervisorOnly } from '../auth.js';
import { handoverJson } from '../views.js';
import { HandoverSchema, IdParams, Nullable, errorResponses, literalUnion } from '../schemas.js';

const tags = ['Desk API'];
const security = [{ deskSession: [] }];

const OverviewSchema = Type.Object(
  {
    queues: Type.Array(
      Type.Object({
        id: Type.String(),
        name: Type.String(),
        waiting: Type.Integer({ description: 'Users waiting in the queue now.' }),
        longestWaitSeconds: Nullable(Type.Integer({ description: 'How long the user waiting longest has waited (null: nobody waits).' })),
        oldestQueuedAt: Nullable(Type.String({ description: 'When that user started waiting.' })),
        activeChats: Type.Integer({ description: 'Chats of the queue an agent holds.' }),
        agentsOnline: Type.Integer({ description: 'Agents of the queue who can answer now: available, signed in, at a desk.' }),
      }),
    ),
    agentsOnline: Type.Integer({ description: 'Agents of the tenant who can answer now, each counted once.' }),
    agents: Type.Array(
      Type.Object({
        id: Type.String(),
        name: Type.String(),
        presence: Type.String(),
        online: Type.Boolean(),
        activeChats: Type.Integer(),
        maxChats: Type.Integer(),
      }),
    ),
    chats: Type.Array(
      Type.Object({
        id: Type.String(),
        state: literalUnion(['queued', 'active'] as const),
        queue: Type.String(),
        user: Type.Record(Type.String(), Type.Unknown()),
        agent: Nullable(Type.Object({ id: Type.String(), name: Type.String() })),
        since: Type.String({ description: 'Waiting since (queued) or held since (active).' }),
      }),
      { description: 'Every live chat of the built-in desk (at most 500): waiting ones first, longest waiting first.' },
    ),
  },
  { title: 'DeskOverview' },
);

/** Supervisors: queue figures, every live chat, and taking a chat over (docs/desk.md, "Supervisors"). */
export function deskSupervisorRoutes(deps: Deps): FastifyPluginAsync {
  return async (plugin) => {
    const desk = plugin.withTypeProvider<TypeBoxTypeProvider>();
    desk.addHook('onRequest', deskAuth(deps.db, deps.config.desk.sessionIdleSeconds));

    desk.get(
      '/v1/desk/supervisor/overview',
      { preValidation: supervisorOnly, schema: { tags, security, response: { 200: OverviewSchema, ...errorResponses } } },
      async (request) => {
        const overview = await deskOverview(deps.db, request.tenantId);
        const now = deps.now().getTime();
        return {
          queues: overview.queues.map((q) => ({
            ...q,
            longestWaitSeconds: q.oldestQueuedAt ? Math.max(0, Math.round((now - q.oldestQueuedAt.getTime()) / 1000)) : null,
            oldestQueuedAt: q.oldestQueuedAt?.toISOString() ?? null,
          })),
          agentsOnline: overview.agentsOnline,
          agents: overview.agents,
          chats: overview.chats.map((c) => ({ ...c, user: { ...c.user }, since: c.since.toISOString() })),
        };
      },
    );

    desk.post(
      '/v1/desk/handovers/:id/take',
      { preValidation: supervisorOnly, schema: { tags, security, params: IdParams, response: { 200: HandoverSchema, ...errorResponses } } },
      async (request) => {
        const handover = await takeHandover(deps, { supervisor: request.agent, handoverId: request.params.id });
        return handoverJson({ handover, position: null, estimatedWaitSeconds: null });
      },
    );
  };
}
