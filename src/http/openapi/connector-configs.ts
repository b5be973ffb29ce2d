import type { TSchema } from '@sinclair/typebox';
import { chatwootConfigSchema } from '../../connectors/chatwoot/chatwoot-config.js';
import { freshchatConfigSchema } from '../../connectors/freshchat/freshchat-config.js';
import { genesysConfigSchema } from '../../connectors/genesys/genesys-config.js';
import { intercomConfigSchema } from '../../connectors/intercom/intercom-config.js';
import { salesforceConfigSchema } from '../../connectors/salesforce/salesforce-config.js';
import { webhookConfigSchema } from '../../connectors/webhook/webhook-config.js';
import { zendeskConfigSchema } from '../../connectors/zendesk/zendesk-config.js';

/**
 * Each connector type's config as the document describes it: the schema the type validates its config
 * with (the same object), plus the `latency` objective every type takes. Adding a connector type: add
 * its config schema here, with the title the document names it by.
 */
const configs: Array<{ type: string; title: string; page: string; schema: TSchema }> = [
  { type: 'webhook', title: 'WebhookConnectorConfig', page: 'docs/generic-webhook.md', schema: webhookConfigSchema },
  { type: 'zendesk', title: 'ZendeskConnectorConfig', page: 'docs/connectors/zendesk.md', schema: zendeskConfigSchema },
  { type: 'chatwoot', title: 'ChatwootConnectorConfig', page: 'docs/connectors/chatwoot.md', schema: chatwootConfigSchema },
  { type: 'salesforce', title: 'SalesforceConnectorConfig', page: 'docs/connectors/salesforce.md', schema: salesforceConfigSchema },
  { type: 'intercom', title: 'IntercomConnectorConfig', page: 'docs/connectors/intercom.md', schema: intercomConfigSchema },
  { type: 'freshchat', title: 'FreshchatConnectorConfig', page: 'docs/connectors/freshchat.md', schema: freshchatConfigSchema },
  { type: 'genesys', title: 'GenesysConnectorConfig', page: 'docs/connectors/genesys.md', schema: genesysConfigSchema },
];

const latency = {
  type: 'object',
  description: "The connector's own latency objective: `callP99Ms`, `lagP99Ms`, `offerWhileSlow` (docs/connectors/README.md).",
};

/** The body of `POST /v1/admin/tenants/{tenantId}/connectors`: one shape per connector type. */
export const createConnectorBody = {
  oneOf: configs.map(({ type, title, page, schema }) => ({
    type: 'object',
    additionalProperties: false,
    required: ['type', 'name', 'config'],
    properties: {
      type: { const: type },
      name: { type: 'string', minLength: 1, maxLength: 200 },
      config: {
        ...schema,
        title,
        description: `The ${type} connector's settings (${page}); credential fields are stored encrypted and never returned.`,
        properties: { ...schema.properties, latency },
      },
    },
  })),
};
