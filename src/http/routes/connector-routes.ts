import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../../deps.js';
import type { Connectors } from '../../connectors/connector-store.js';
import { storeInbound, verifyInbound } from '../../handover/inbound.js';
import { errorResponses } from '../schemas.js';
import { TokenBuckets } from '../../resilience/token-bucket.js';
import { AppError } from '../../resilience/errors.js';
import { parseJsonText } from '../error-handler.js';
import { TtlCache } from '../../store/ttl-cache.js';

/** An address that sent a verified request this recently is never refused before verification. */
const VOUCHED_MS = 24 * 3600 * 1000;

/**
 * Where external systems send their events. Authenticated by each connector's own scheme (a signature),
 * checked before anything else is spent: the connector's rate is spent only by requests that verify,
 * so forgeries cannot use it up; requests that do not verify spend a small budget of their sender's
 * address instead.
 */
export function connectorRoutes(deps: Deps, connectors: Connectors): FastifyPluginAsync {
  const { inboundPerSecond, inboundBurst, inboundUnverifiedPerSecond, inboundUnverifiedBurst } = deps.config.connectors;
  const verified = new TokenBuckets(inboundPerSecond, inboundBurst);
  const unverified = new TokenBuckets(inboundUnverifiedPerSecond, inboundUnverifiedBurst);
  // A helpdesk's egress address may be shared with its other customers, who can point their own
  // webhooks (with a wrong secret) at our URL: an address known to send authentic requests is
  // always checked, so forgeries relayed through it can never lock the real events out.
  const vouched = new TtlCache<string, true>(VOUCHED_MS, 10_000);
  return async (plugin) => {
    const app = plugin.withTypeProvider<TypeBoxTypeProvider>();
    app.post(
      '/v1/connectors/:connectorId/events',
      {
        // Vendors' text is stored repaired (applyInbound), so one bad character cannot refuse a whole batch.
        // The body is parsed here, once the address's budget for requests that do not verify is taken.
        config: { repairsText: true, parsesBodyItself: true },
        schema: {
          tags: ['Connector inbound'],
          summary: 'Events from the agent-side system (generic webhook protocol: docs/generic-webhook.md)',
          params: Type.Object({ connectorId: Type.String({ maxLength: 64 }) }),
          body: Type.Unknown(),
          response: { 200: Type.Object({ ok: Type.Boolean(), duplicate: Type.Boolean() }), ...errorResponses },
        },
      },
      async (request) => {
        const { connectorId } = request.params;
        const address = request.ip;
        // Taken before verifying, not after: forgeries sent in parallel would otherwise all pass the
        // check before any spent the budget. A genuine helpdesk spends one token, then is vouched for.
        if (!vouched.has(address) && !unverified.take(address)) {
          throw new AppError('inbound_unverified_rate_limited', {
            message: `This address sent more than ${inboundUnverifiedPerSecond} inbound requests per second that did not verify; check the connector's secret, then retry.`,
            retryAfterSeconds: unverified.retryAfterSeconds(address),
          });
        }
        const rawBody = request.rawBody ?? '';
        const verdict = await verifyInbound(connectors, {
          connectorId,
          request: { headers: request.headers, rawBody, body: parseJsonText(rawBody, { repairsText: true }) },
        });
        if (!verdict.ok && !verdict.authentic) throw verdict.error;
        vouched.set(address, true);
        // Per connector, so one system (or one flooding it with authentic events) cannot take the others' capacity.
        if (!verified.take(connectorId)) {
          throw new AppError('inbound_rate_limited', {
            message: `Connector ${connectorId} is receiving more than ${inboundPerSecond} events per second here; retry later.`,
            retryAfterSeconds: verified.retryAfterSeconds(connectorId),
          });
        }
        if (!verdict.ok) throw verdict.error;
        const result = await storeInbound(deps, verdict.record, verdict.receipts);
        return { ok: true, duplicate: result.duplicate };
      },
    );

    // Intercom checks a webhook URL with a HEAD request when it is saved: a connector that exists
    // answers 200 with no body, one that does not 404 (connector_not_found), as a POST would.
    app.head(
      '/v1/connectors/:connectorId/events',
      { schema: { hide: true, params: Type.Object({ connectorId: Type.String({ maxLength: 64 }) }) } },
      async (request, reply) => {
        await connectors.get(request.params.connectorId);
        return reply.code(200).send();
      },
    );
  };
}
