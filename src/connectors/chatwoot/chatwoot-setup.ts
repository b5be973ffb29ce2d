import type { Agent } from 'undici';
import type { SetupContext } from '../connector.js';
import { requestJson } from '../http-json.js';
import type { ChatwootConfig } from './chatwoot-config.js';

/** The account webhook's events handover reads: replies, end, join and transfer, typing. */
const EVENTS = ['message_created', 'conversation_status_changed', 'conversation_updated', 'conversation_typing_on', 'conversation_typing_off'];

interface Webhook {
  id: number;
  url?: string;
  subscriptions?: string[];
}

/**
 * The account webhook that calls the inbound URL (docs/connectors/chatwoot.md), read with `GET
 * /api/v1/accounts/{account}/webhooks` (`{payload: {webhooks}}`, an administrator's token) and, with
 * `apply`, given its missing events with `PATCH …/webhooks/{id}` `{url, subscriptions}`. A webhook is not
 * created here: Chatwoot signs with a secret of the webhook's own that its API does not show back, and
 * that secret must be in `webhookSecret`.
 */
export async function setUpChatwoot(dispatcher: Agent, config: ChatwootConfig, context: SetupContext, signal: AbortSignal): Promise<void> {
  const base = `${config.baseUrl.replace(/\/$/, '')}/api/v1/accounts/${config.accountId}`;
  const headers = { api_access_token: config.userToken };
  const { report } = context;
  const listed = await requestJson<{ payload?: { webhooks?: Webhook[] } }>(dispatcher, { method: 'GET', url: `${base}/webhooks`, headers, signal });
  const webhook = (listed.body?.payload?.webhooks ?? []).find((w) => w.url === context.inboundUrl);
  if (!webhook) {
    report({
      setting: 'account webhook',
      state: 'missing',
      detail: `no webhook of account ${config.accountId} calls ${context.inboundUrl}: add it (Settings → Integrations → Webhooks) with the events ${EVENTS.join(', ')}, and copy its secret into webhookSecret`,
    });
    return;
  }
  report({ setting: 'account webhook', state: 'ok', detail: `${webhook.id} calls the inbound URL` });
  const subscriptions = webhook.subscriptions ?? [];
  const lacking = EVENTS.filter((e) => !subscriptions.includes(e));
  if (lacking.length === 0) report({ setting: 'account webhook events', state: 'ok', detail: subscriptions.join(', ') });
  else if (context.apply) {
    await requestJson(dispatcher, {
      method: 'PATCH',
      url: `${base}/webhooks/${webhook.id}`,
      headers,
      body: { url: context.inboundUrl, subscriptions: [...subscriptions, ...lacking] },
      signal,
    });
    report({ setting: 'account webhook events', state: 'changed', detail: `added ${lacking.join(', ')}` });
  } else {
    report({ setting: 'account webhook events', state: 'missing', detail: `${lacking.join(', ')} not among them (--apply adds them)` });
  }
  report({
    setting: 'account webhook secret',
    state: 'unknown',
    detail: "Chatwoot's API does not show it: it must be the connector's webhookSecret (a wrong one shows as 401 invalid_signature on the inbound URL)",
  });
}
