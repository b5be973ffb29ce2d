import type { Agent } from 'undici';
import { checkCall } from '../check-call.js';
import type { AgentSideWork, Connector, ConnectorDefinition } from '../connector.js';
import { randomUUID } from 'node:crypto';
import { getSignedJson, postSignedJson } from '../../outbound/index.js';
import { batchSettings, webhookConfigSchema, type WebhookConfig } from './webhook-config.js';
import { handleWebhookInbound } from './webhook-webhook.js';
import { WebhookBatcher } from './webhook-batch.js';

/**
 * The generic webhook protocol (docs/generic-webhook.md): our events are POSTed to the helpdesk in the
 * same envelope bots receive, signed with Standard Webhooks; the helpdesk POSTs its events back to
 * the connector's inbound URL, signed the same way with the same secret. With `batch` in the config, the
 * events handed over together go out in one call with a result per event (webhook-batch.ts).
 */
export function webhookConnectorDefinition(dispatcher: Agent): ConnectorDefinition<WebhookConfig> {
  return {
    type: 'webhook',
    configSchema: webhookConfigSchema,
    secretFields: ['secret'],
    urlFields: ['url', 'availabilityUrl'],
    create(config, deps): Connector {
      const batching = batchSettings(config);
      // One per instance, so per connector row: a batch never mixes tenants or secrets.
      const batcher = batching ? new WebhookBatcher({ ...batching, dispatcher, url: config.url, secret: config.secret, timeoutMs: deps.timeoutMs }) : null;
      // Every kind of work goes to the helpdesk the same way: as its event, with the data of its kind.
      const send = async (work: AgentSideWork, createdAt: string, data: Record<string, unknown>, signal: AbortSignal): Promise<void> => {
        const envelope = { id: work.eventId, type: work.kind, handoverId: work.handoverId, conversationId: work.conversationId, createdAt, data };
        if (batcher) await batcher.deliver(work.eventId, envelope, signal);
        else await postSignedJson(dispatcher, config.url, config.secret, work.eventId, envelope, signal);
      };
      const connector: Connector = {
        open: (work, context) =>
          send(work, work.createdAt, { queue: work.queue, user: work.user, transcript: work.transcript, metadata: work.metadata }, context.signal),
        sendMessage: (work, context) => send(work, work.message.createdAt, { message: work.message }, context.signal),
        // Typing and the end: when they happened, the same on every try (a retry carries the same body).
        sendTyping: (work, context) => send(work, work.createdAt, { typing: work.typing }, context.signal),
        end: (work, context) => send(work, work.createdAt, { reason: work.reason }, context.signal),
        handleInbound(request) {
          return handleWebhookInbound(config.secret, request);
        },
      };
      const availabilityUrl = config.availabilityUrl;
      if (availabilityUrl) {
        connector.availability = async (signal) => {
          const body = (await getSignedJson(dispatcher, availabilityUrl, config.secret, `avail_${randomUUID()}`, signal)) as { agentsOnline?: unknown };
          if (typeof body.agentsOnline !== 'number' || !Number.isFinite(body.agentsOnline))
            throw new Error('the availability answer has no numeric agentsOnline');
          return { agentsOnline: body.agentsOnline };
        };
      }
      // Only the availability URL can be asked without sending an event; the event URL cannot.
      connector.check = availabilityUrl
        ? (signal) =>
            checkCall('the availability URL (signed GET)', () => getSignedJson(dispatcher, availabilityUrl, config.secret, `check_${randomUUID()}`, signal), {
              credentials_rejected: 'the helpdesk refused the signature: both sides must hold the same secret',
            })
        : () =>
            Promise.resolve({
              verdict: 'unchecked',
              reason: 'a generic webhook cannot be checked without sending it an event; set availabilityUrl to have it checked',
            });
      return connector;
    },
  };
}
