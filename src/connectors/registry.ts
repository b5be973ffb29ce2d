import type { Agent } from 'undici';
import type { ConnectorDefinition } from './connector.js';
import type { OutboundPolicy } from '../outbound/index.js';
import { webhookConnectorDefinition } from './webhook/webhook-connector.js';
import { salesforceConnectorDefinition } from './salesforce/salesforce-connector.js';
import { zendeskConnectorDefinition } from './zendesk/zendesk-connector.js';
import { chatwootConnectorDefinition } from './chatwoot/chatwoot-connector.js';
import { intercomConnectorDefinition } from './intercom/intercom-connector.js';
import { freshchatConnectorDefinition } from './freshchat/freshchat-connector.js';
import { genesysConnectorDefinition } from './genesys/genesys-connector.js';

/** Every connector type the service knows. Adding one: see the recipe at the top of connector.ts. */
export function connectorDefinitions(dispatcher: Agent, policy: OutboundPolicy): ConnectorDefinition<never>[] {
  return [
    webhookConnectorDefinition(dispatcher),
    zendeskConnectorDefinition(dispatcher),
    chatwootConnectorDefinition(dispatcher),
    salesforceConnectorDefinition(dispatcher, policy),
    intercomConnectorDefinition(dispatcher),
    freshchatConnectorDefinition(dispatcher),
    genesysConnectorDefinition(dispatcher),
  ] as ConnectorDefinition<never>[];
}
