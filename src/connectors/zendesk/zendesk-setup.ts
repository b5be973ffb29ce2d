import type { Agent } from 'undici';
import type { SetupContext } from '../connector.js';
import { requestJson } from '../http-json.js';
import type { ZendeskConfig } from './zendesk-config.js';

/**
 * The triggers handover reads: agents' messages, and control coming back (ticket closed, moved to email):
 * passed to the next integration, or released when the agent workspace has none after it.
 */
const TRIGGERS = ['conversation:message', 'switchboard:passControl', 'switchboard:releaseControl'];

interface Webhook {
  id: string;
  target?: string;
  triggers?: string[];
  secret?: string;
  version?: string;
}

interface SwitchboardIntegration {
  id: string;
  name?: string;
  integrationId?: string;
  integrationType?: string;
  deliverStandbyEvents?: boolean;
  nextSwitchboardIntegrationId?: string | null;
}

type Call = <T>(method: 'GET' | 'POST' | 'PATCH', path: string, body: unknown, signal: AbortSignal) => Promise<T | null>;

/**
 * The app's settings a switchboard integration needs (docs/connectors/zendesk.md), read and, with
 * `apply`, set through the Sunshine Conversations v2 API with the connector's app key:
 * - `settings.multiConvoEnabled` (GetApp, UpdateApp): irreversible, so set only with `irreversible`;
 * - the custom integration's webhook whose target is the inbound URL (ListIntegrations, ListWebhooks,
 *   UpdateWebhook): its triggers and payload version, and that its secret is `webhookSecret`;
 * - handover's switchboard integration (ListSwitchboards, ListSwitchboardIntegrations,
 *   CreateSwitchboardIntegration, UpdateSwitchboardIntegration): `deliverStandbyEvents`, and the agent
 *   workspace's `nextSwitchboardIntegrationId` pointing back at it.
 * A webhook is never created here: its secret would have to be copied into the connector's config.
 */
export async function setUpZendesk(dispatcher: Agent, config: ZendeskConfig, context: SetupContext, signal: AbortSignal): Promise<void> {
  const base = `${config.baseUrl.replace(/\/$/, '')}/v2/apps/${encodeURIComponent(config.appId)}`;
  const authorization = `Basic ${Buffer.from(`${config.keyId}:${config.keySecret}`).toString('base64')}`;
  const call: Call = async <T>(method: 'GET' | 'POST' | 'PATCH', path: string, body: unknown, callSignal: AbortSignal) =>
    (
      await requestJson<T>(dispatcher, {
        method,
        url: `${base}${path}`,
        headers: { authorization },
        ...(body !== undefined ? { body } : {}),
        signal: callSignal,
      })
    ).body;
  const { report, apply } = context;

  // 1. One personal conversation per handover needs several conversations per user.
  const app = await call<{ app?: { settings?: { multiConvoEnabled?: boolean } } }>('GET', '', undefined, signal);
  if (app?.app?.settings?.multiConvoEnabled === true) report({ setting: 'app settings.multiConvoEnabled', state: 'ok', detail: 'true' });
  else if (context.irreversible) {
    await call('PATCH', '', { settings: { multiConvoEnabled: true } }, signal);
    report({ setting: 'app settings.multiConvoEnabled', state: 'changed', detail: 'set to true (this cannot be turned off again)' });
  } else {
    report({
      setting: 'app settings.multiConvoEnabled',
      state: 'missing',
      detail:
        "false: a user's second handover gets no conversation of its own. It cannot be turned off once on and applies to the whole app: run with --apply --irreversible once that is decided",
    });
  }

  // 2. The webhook that calls the inbound URL, in the app's custom integrations.
  const integrations =
    (await call<{ integrations?: Array<{ id: string; type?: string }> }>('GET', '/integrations?filter[types]=custom', undefined, signal))?.integrations ?? [];
  let found: { integrationId: string; webhook: Webhook } | undefined;
  for (const integration of integrations.filter((i) => i.type === undefined || i.type === 'custom')) {
    const webhooks =
      (await call<{ webhooks?: Webhook[] }>('GET', `/integrations/${encodeURIComponent(integration.id)}/webhooks`, undefined, signal))?.webhooks ?? [];
    const webhook = webhooks.find((w) => w.target === context.inboundUrl);
    if (webhook) {
      found = { integrationId: integration.id, webhook };
      break;
    }
  }
  if (!found) {
    report({
      setting: 'integration webhook',
      state: 'missing',
      detail: `no custom integration has a webhook to ${context.inboundUrl}: create one (Admin Center → Apps and integrations → Conversations integrations), version v2, triggers ${TRIGGERS.join(', ')}, and put its secret into webhookSecret`,
    });
    report({ setting: 'switchboard integration (handover)', state: 'unknown', detail: "found through the webhook's integration: set up the webhook first" });
    return;
  }
  const { integrationId, webhook } = found;
  report({ setting: 'integration webhook', state: 'ok', detail: `${webhook.id} of integration ${integrationId} calls the inbound URL` });
  if (webhook.secret !== undefined && webhook.secret !== config.webhookSecret) {
    report({
      setting: 'integration webhook secret',
      state: 'missing',
      detail: "not the connector's webhookSecret: every call would be refused; copy the webhook's secret into webhookSecret (PATCH the connector)",
    });
  }
  const lacking = TRIGGERS.filter((t) => !(webhook.triggers ?? []).includes(t));
  const wrongVersion = webhook.version !== undefined && webhook.version !== 'v2';
  if (lacking.length === 0 && !wrongVersion) report({ setting: 'integration webhook triggers', state: 'ok', detail: (webhook.triggers ?? []).join(', ') });
  else if (wrongVersion) {
    // The payload version is fixed when the webhook is created.
    report({ setting: 'integration webhook version', state: 'missing', detail: `${webhook.version}: handover reads v2 bodies; create a v2 webhook instead` });
  } else if (apply) {
    await call(
      'PATCH',
      `/integrations/${encodeURIComponent(integrationId)}/webhooks/${encodeURIComponent(webhook.id)}`,
      { triggers: [...(webhook.triggers ?? []), ...lacking] },
      signal,
    );
    report({ setting: 'integration webhook triggers', state: 'changed', detail: `added ${lacking.join(', ')}` });
  } else {
    report({ setting: 'integration webhook triggers', state: 'missing', detail: `${lacking.join(', ')} not among them (--apply adds them)` });
  }

  // 3. The switchboard: handover's integration receives standby events, and the agents hand back to it.
  const switchboard = (await call<{ switchboards?: Array<{ id: string; enabled?: boolean }> }>('GET', '/switchboards', undefined, signal))?.switchboards?.[0];
  if (!switchboard) {
    report({
      setting: 'switchboard',
      state: 'missing',
      detail: 'the app has no switchboard: enable one in Admin Center (messaging with the agent workspace creates it)',
    });
    return;
  }
  const path = `/switchboards/${encodeURIComponent(switchboard.id)}/switchboardIntegrations`;
  const members = (await call<{ switchboardIntegrations?: SwitchboardIntegration[] }>('GET', path, undefined, signal))?.switchboardIntegrations ?? [];
  let ours = members.find((m) => m.integrationId === integrationId);
  if (!ours && apply) {
    const created = await call<{ switchboardIntegration?: SwitchboardIntegration }>(
      'POST',
      path,
      { name: 'handover', integrationId, deliverStandbyEvents: true },
      signal,
    );
    ours = created?.switchboardIntegration;
    report({
      setting: 'switchboard integration (handover)',
      state: 'changed',
      detail: `added ${ours?.id ?? ''} for integration ${integrationId}, deliverStandbyEvents true`,
    });
  } else if (!ours) {
    report({
      setting: 'switchboard integration (handover)',
      state: 'missing',
      detail: `integration ${integrationId} is not in the switchboard (--apply adds it, with deliverStandbyEvents)`,
    });
  } else if (ours.deliverStandbyEvents === true) {
    report({ setting: 'switchboard integration deliverStandbyEvents', state: 'ok', detail: 'true' });
  } else if (apply) {
    await call('PATCH', `${path}/${encodeURIComponent(ours.id)}`, { deliverStandbyEvents: true }, signal);
    report({ setting: 'switchboard integration deliverStandbyEvents', state: 'changed', detail: 'set to true' });
  } else {
    report({
      setting: 'switchboard integration deliverStandbyEvents',
      state: 'missing',
      detail: "false: agents' messages never reach handover after it passed control (--apply sets it)",
    });
  }
  const agents = members.find((m) => m.integrationType === 'zd:agentWorkspace');
  if (!agents || !ours) {
    if (!agents)
      report({
        setting: 'agent workspace nextSwitchboardIntegrationId',
        state: 'unknown',
        detail: 'no agent workspace (zd:agentWorkspace) in the switchboard',
      });
    return;
  }
  if (agents.nextSwitchboardIntegrationId === ours.id)
    report({ setting: 'agent workspace nextSwitchboardIntegrationId', state: 'ok', detail: `handover's ${ours.id}` });
  else if (apply) {
    await call('PATCH', `${path}/${encodeURIComponent(agents.id)}`, { nextSwitchboardIntegrationId: ours.id }, signal);
    report({
      setting: 'agent workspace nextSwitchboardIntegrationId',
      state: 'changed',
      detail: `${agents.nextSwitchboardIntegrationId ?? 'none'} → handover's ${ours.id}`,
    });
  } else {
    report({
      setting: 'agent workspace nextSwitchboardIntegrationId',
      state: 'missing',
      detail: `${agents.nextSwitchboardIntegrationId ?? 'none'}: closing a ticket would not give the conversation back to handover (--apply points it at ${ours.id})`,
    });
  }
}
