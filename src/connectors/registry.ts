import type { Agent } from 'undici';
import type { ConnectorDefinition } from './connector.js';
import type { OutboundPolicy } from '../security/outbound-guard.js';
import { webhookConnectorDefinition } from './webhook/webhook-connector.js';
import { salesforceConnectorDefinition } from './salesforce/salesforce-connector.js';

/** Every connector type the service knows. Adding one: see the recipe at the top of connector.ts. */
export function connectorDefinitions(dispatcher: Agent, policy: OutboundPolicy): ConnectorDefinition<never>[] {
  return [webhookConnectorDefinition(dispatcher), salesforceConnectorDefinition(dispatcher, policy)] as ConnectorDefinition<never>[];
}
