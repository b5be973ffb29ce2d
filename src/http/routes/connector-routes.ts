import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../../handover/deps.js';
import type { Connectors } from '../../connectors/connector-store.js';
import { receiveInbound } from '../../handover/inbound.js';
import { errorResponses } from '../schemas.js';

/** Where external systems send their events. Authenticated by each connector's own scheme (a signature). */
export function connectorRoutes(deps: Deps, connectors: Connectors): FastifyPluginAsync {
  return async (plugin) => {
    const app = plugin.withTypeProvider<TypeBoxTypeProvider>();
    app.post(
      '/v1/connectors/:connectorId/events',
      {
        schema: {
          tags: ['Connector inbound'],
          summary: 'Events from the agent-side system (generic webhook protocol: docs/generic-webhook.md)',
          params: Type.Object({ connectorId: Type.String({ maxLength: 64 }) }),
          body: Type.Unknown(),
          response: { 200: Type.Object({ ok: Type.Boolean(), duplicate: Type.Boolean() }), ...errorResponses },
        },
      },
      async (request) => {
        const result = await receiveInbound(deps, connectors, {
          connectorId: request.params.connectorId,
          request: { headers: request.headers, rawBody: request.rawBody ?? '', body: request.body },
        });
        return { ok: true, duplicate: result.duplicate };
      },
    );
  };
}
