import type { Agent } from 'undici';
import type { ConnectorDefinition } from './connector.js';
import { webhookConnectorDefinition } from './webhook/webhook-connector.js';
import { zendeskConnectorDefinition } from './zendesk/zendesk-connector.js';
import { chatwootConnectorDefinition } from './chatwoot/chatwoot-connector.js';

/** Every connector type the service knows. Adding one: see the recipe at the top of connector.ts. */
export function connectorDefinitions(dispatcher: Agent): ConnectorDefinition<never>[] {
  return [webhookConnectorDefinition(dispatcher), zendeskConnectorDefinition(dispatcher), chatwootConnectorDefinition(dispatcher)] as ConnectorDefinition<never>[];
}
