import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../../handover/deps.js';
import type { Connectors } from '../../connectors/connector-store.js';
import { receiveInbound } from '../../handover/inbound.js';
import { errorResponses } from '../schemas.js';
import { TokenBuckets } from '../../resilience/token-bucket.js';
import { AppError } from '../../resilience/errors.js';

/** Where external systems send their events. Authenticated by each connector's own scheme (a signature). */
export function connectorRoutes(deps: Deps, connectors: Connectors): FastifyPluginAsync {
  const inbound = new TokenBuckets(deps.config.connectors.inboundPerSecond, deps.config.connectors.inboundBurst);
  return async (plugin) => {
    const app = plugin.withTypeProvider<TypeBoxTypeProvider>();
    app.post(
      '/v1/connectors/:connectorId/events',
      {
        // Vendors' text is stored repaired (applyInbound), so one bad character cannot refuse a whole batch.
        config: { repairsText: true },
        schema: {
          tags: ['Connector inbound'],
          summary: 'Events from the agent-side system (generic webhook protocol: docs/generic-webhook.md)',
          params: Type.Object({ connectorId: Type.String({ maxLength: 64 }) }),
          body: Type.Unknown(),
          response: { 200: Type.Object({ ok: Type.Boolean(), duplicate: Type.Boolean() }), ...errorResponses },
        },
      },
      async (request) => {
        // Per connector, so one system (or someone flooding its URL) cannot take the others' capacity.
        if (!inbound.take(request.params.connectorId)) {
          throw new AppError('inbound_rate_limited', {
            message: `Connector ${request.params.connectorId} is receiving more than ${deps.config.connectors.inboundPerSecond} events per second here; retry later.`,
            retryAfterSeconds: inbound.retryAfterSeconds(request.params.connectorId),
          });
        }
        const result = await receiveInbound(deps, connectors, {
          connectorId: request.params.connectorId,
          request: { headers: request.headers, rawBody: request.rawBody ?? '', body: request.body },
        });
        return { ok: true, duplicate: result.duplicate };
      },
    );
  };
}
