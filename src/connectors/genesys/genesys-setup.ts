import type { SetupContext } from '../connector.js';
import { integrationPath, type GenesysCall } from './genesys-api.js';
import type { GenesysConfig } from './genesys-config.js';

interface OpenIntegration {
  name?: string;
  outboundNotificationWebhookUrl?: string;
  status?: string;
  createStatus?: string;
}

/**
 * The Open Messaging integration's outbound webhook (docs/connectors/genesys.md), read with `GET
 * /api/v2/conversations/messaging/integrations/open/{integrationId}` and, with `apply`, pointed at the
 * inbound URL with `PATCH` of the same path: the URL and, with it, `webhookSecret` as its signature
 * secret token (Genesys never shows the token, so it is only ever set together with the URL). Needs a
 * role with `messaging:integration:edit` for the change. Genesys calls the webhook on port 443 only.
 */
export async function setUpGenesys(call: GenesysCall, config: GenesysConfig, context: SetupContext, signal: AbortSignal): Promise<void> {
  const { report } = context;
  const inbound = new URL(context.inboundUrl);
  if (inbound.protocol !== 'https:' || (inbound.port !== '' && inbound.port !== '443')) {
    report({
      setting: 'inbound URL',
      state: 'missing',
      detail: `${context.inboundUrl}: Genesys calls webhooks over HTTPS on port 443 only; put the service behind HTTPS and set HANDOVER_PUBLIC_URL`,
    });
  }
  const path = integrationPath(config.integrationId);
  const label = 'GET /api/v2/conversations/messaging/integrations/open/:id';
  const integration = (await call<OpenIntegration>('GET', path, undefined, signal, label)).body ?? {};
  if (integration.createStatus !== undefined && integration.createStatus !== 'Completed') {
    report({
      setting: 'integration createStatus',
      state: 'missing',
      detail: `${integration.createStatus}: the integration is not ready; see it in Admin → Message → Platforms`,
    });
  }
  if (integration.outboundNotificationWebhookUrl === context.inboundUrl) {
    report({ setting: 'integration outboundNotificationWebhookUrl', state: 'ok', detail: 'the inbound URL' });
    report({
      setting: 'integration outboundNotificationWebhookSignatureSecretToken',
      state: 'unknown',
      detail:
        "Genesys does not show it: it must be the connector's webhookSecret (a wrong one shows as 401 invalid_signature; --apply sets it when it sets the URL)",
    });
  } else if (context.apply) {
    await call(
      'PATCH',
      path,
      // `name` is required in the update (OpenIntegrationUpdateRequest): the integration's own, unchanged.
      {
        ...(integration.name !== undefined ? { name: integration.name } : {}),
        outboundNotificationWebhookUrl: context.inboundUrl,
        outboundNotificationWebhookSignatureSecretToken: config.webhookSecret,
      },
      signal,
      'PATCH /api/v2/conversations/messaging/integrations/open/:id',
    );
    report({
      setting: 'integration outboundNotificationWebhookUrl',
      state: 'changed',
      detail: `${integration.outboundNotificationWebhookUrl ?? 'none'} → the inbound URL`,
    });
    report({ setting: 'integration outboundNotificationWebhookSignatureSecretToken', state: 'changed', detail: "set to the connector's webhookSecret" });
  } else {
    report({
      setting: 'integration outboundNotificationWebhookUrl',
      state: 'missing',
      detail: `${integration.outboundNotificationWebhookUrl ?? 'none'}: agents' messages go elsewhere (--apply sets the inbound URL and webhookSecret as its token)`,
    });
  }
}
