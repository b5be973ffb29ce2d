import type { Agent } from 'undici';
import type { AgentSideWork, Connector, ConnectorDefinition } from '../connector.js';
import { postSignedJson } from '../../delivery/http-post.js';
import { webhookConfigSchema, type WebhookConfig } from './webhook-config.js';
import { handleWebhookInbound } from './webhook-inbound.js';

/**
 * The generic webhook protocol (docs/generic-webhook.md): our events are POSTed to the helpdesk in the
 * same envelope bots receive, signed with Standard Webhooks; the helpdesk POSTs its events back to
 * the connector's inbound URL, signed the same way with the same secret.
 */
export function webhookConnectorDefinition(dispatcher: Agent): ConnectorDefinition<WebhookConfig> {
  return {
    type: 'webhook',
    configSchema: webhookConfigSchema,
    secretFields: ['secret'],
    urlFields: ['url'],
    create(config): Connector {
      return {
        async deliver(work, context) {
          const envelope = {
            id: work.eventId,
            type: work.kind,
            handoverId: work.handoverId,
            conversationId: work.conversationId,
            createdAt: createdAtOf(work),
            data: dataOf(work),
          };
          await postSignedJson(dispatcher, config.url, config.secret, work.eventId, envelope, context.signal);
        },
        handleInbound(request) {
          return handleWebhookInbound(config.secret, request);
        },
      };
    },
  };
}

function dataOf(work: AgentSideWork): Record<string, unknown> {
  switch (work.kind) {
    case 'handover.requested':
      return { queue: work.queue, user: work.user, transcript: work.transcript, metadata: work.metadata };
    case 'message.created':
      return { message: work.message };
    case 'user.typing':
      return { typing: work.typing };
    case 'handover.ended':
      return { reason: work.reason };
  }
}

function createdAtOf(work: AgentSideWork): string {
  if (work.kind === 'handover.requested') return work.createdAt;
  if (work.kind === 'message.created') return work.message.createdAt;
  return new Date().toISOString();
}
