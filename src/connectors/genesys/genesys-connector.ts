import type { Agent } from 'undici';
import { checkCall } from '../check-call.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../telemetry/logger.js';
import { DeliveryError, type Connector, type ConnectorDefinition, type ConnectorSessions, type EndWork, type StreamContext } from '../connector.js';
import { requireRef } from '../connector-helpers.js';
import { genesysCall, integrationPath, type GenesysCall } from './genesys-api.js';
import { genesysTokens } from './genesys-auth.js';
import { genesysConfigSchema, type GenesysConfig } from './genesys-config.js';
import { attachmentContent, customAttributes, openingText } from './genesys-content.js';
import { setUpGenesys } from './genesys-setup.js';
import { handleGenesysInbound } from './genesys-webhook.js';

/**
 * Genesys Cloud through an Open Messaging integration (docs/connectors/genesys.md). We are the
 * integration's middleware: the user's side of the conversation is posted to Genesys as inbound open
 * messages, and what agents send comes to our inbound URL as the integration's outbound webhook
 * (genesys-webhook.ts). Routing to a queue is Genesys's: the integration's inbound message flow.
 *
 * The user is known to Genesys as `channel.from.id` = the handover id (`Opaque`): each handover opens a
 * conversation of its own, and the outbound webhook names it back in `channel.to.id` (our externalRef).
 * Each message carries a `messageId` and `time` that stay the same on a retry, so Genesys can tell a
 * retried message from a new one. The open messaging webhook carries no transfer signal: moves between
 * Genesys queues are not told to the bot (no `handover.transferred`).
 */
export function genesysConnectorDefinition(dispatcher: Agent): ConnectorDefinition<GenesysConfig> {
  return {
    type: 'genesys',
    configSchema: genesysConfigSchema,
    secretFields: ['clientSecret', 'webhookSecret'],
    urlFields: ['apiBaseUrl', 'loginBaseUrl'],
    create(config, deps): Connector {
      const call = genesysCall(dispatcher, config.apiBaseUrl, genesysTokens(dispatcher, config, deps.timeoutMs));
      const inbound = (kind: 'message' | 'event') => `/api/v2/conversations/messages/${encodeURIComponent(config.integrationId)}/inbound/open/${kind}`;
      const from = (id: string, nickname?: string) => ({ id, idType: 'Opaque', ...(nickname ? { nickname } : {}) });
      const endPollMs = (config.endPollSeconds ?? DEFAULT_END_POLL_SECONDS) * 1000;
      return {
        async open(work, context) {
          const userRef = work.handoverId;
          // `prefetchConversationId=true`: the answer names the conversation (it does not otherwise).
          const sent = await call<{ conversationId?: unknown }>(
            'POST',
            `${inbound('message')}?prefetchConversationId=true`,
            {
              channel: {
                messageId: work.eventId,
                from: from(userRef, work.user.name ?? work.user.id),
                time: work.createdAt,
                metadata: { customAttributes: customAttributes(work) },
              },
              text: openingText(work.transcript),
            },
            context.signal,
          );
          // The conversation's id is needed to disconnect it when the user or the bot ends, and to read
          // whether the agent ended it (the stream below, held by one instance).
          if (typeof sent.body?.conversationId === 'string' && sent.body.conversationId)
            await deps.sessions?.save(work.handoverId, { externalId: sent.body.conversationId, openStream: endPollMs > 0 });
          return { externalRef: userRef };
        },
        async sendMessage(work, context) {
          const text = work.message.text;
          await call(
            'POST',
            inbound('message'),
            {
              channel: { messageId: work.eventId, from: from(requireRef(context, 'Genesys')), time: work.message.createdAt },
              ...(text ? { text } : {}),
              ...(work.message.attachments.length > 0 ? { content: attachmentContent(work.message.attachments) } : {}),
            },
            context.signal,
          );
        },
        async sendTyping(work, context) {
          // Open Messaging knows typing `On` only (it lapses by itself): a stop is not sent.
          if (!work.typing) return;
          await call(
            'POST',
            inbound('event'),
            {
              channel: { from: from(requireRef(context, 'Genesys')), time: new Date().toISOString() },
              events: [{ eventType: 'Typing', typing: { type: 'On' } }],
            },
            context.signal,
          );
        },
        async end(work, context) {
          if (work.reason === 'agent_ended') return;
          await endConversation(call, deps.sessions, work, requireRef(context, 'Genesys'), context.signal, inbound('message'));
        },
        handleInbound(request) {
          return handleGenesysInbound(config, request);
        },
        ...(endPollMs > 0 ? { pullStream: { read: (context: StreamContext) => watchForEnd(call, context, endPollMs, deps.log) } } : {}),
        // The token proves the OAuth client; reading the integration proves its id, region and role.
        check: (signal) =>
          checkCall(
            `the Open Messaging integration ${config.integrationId} (a client-credentials token, then GET /api/v2/conversations/messaging/integrations/open/{integrationId})`,
            () => call('GET', integrationPath(config.integrationId), undefined, signal, 'GET /api/v2/conversations/messaging/integrations/open/:id'),
            {
              credentials_rejected:
                "clientId/clientSecret refused, or the OAuth client's role lacks messaging:integration:view: check the client (Admin → Integrations → OAuth) and that loginBaseUrl is the org's region",
              not_found: `no Open Messaging integration ${config.integrationId} in this org: check integrationId and that apiBaseUrl is the org's region`,
            },
          ),
        setup: (context, signal) => setUpGenesys(call, config, context, signal),
      };
    },
  };
}

/** How often an open conversation is read for its end, unless the config says otherwise. */
const DEFAULT_END_POLL_SECONDS = 30;

/**
 * Reads the conversation every `everyMs` until its customer's side is disconnected, then ends the
 * handover as the agent's doing. Open Messaging's webhook carries messages and typing but no event
 * when the agent ends the chat (which disconnects the whole messaging interaction); a transfer
 * disconnects one agent and brings another, and the customer stays connected. One instance holds this
 * per handover (a lease, as for Salesforce's event stream), and it stops when the handover ends.
 */
async function watchForEnd(call: GenesysCall, context: StreamContext, everyMs: number, log: Logger): Promise<void> {
  const conversationId = context.session.externalId;
  for (;;) {
    // The conversation was just opened, or read a moment ago: wait first.
    await sleep(everyMs, undefined, { signal: context.signal });
    let conversation: { participants?: Array<{ purpose?: unknown; state?: unknown; endTime?: unknown }> } | null;
    try {
      conversation = (
        await call<typeof conversation>(
          'GET',
          `/api/v2/conversations/messages/${encodeURIComponent(conversationId)}`,
          undefined,
          context.signal,
          'GET /api/v2/conversations/messages/:id',
        )
      ).body;
    } catch (err) {
      // Not readable with this OAuth client (a role without the permission to view conversations) or
      // not found: reading again will not change that. The handover goes on; only the agent's end is
      // not learnt this way (as with endPollSeconds 0), and the operator is told once per handover.
      if (err instanceof DeliveryError && (err.statusCode === 403 || err.statusCode === 404)) {
        log.warn(
          { handoverId: context.handoverId, status: err.statusCode },
          "cannot read the Genesys conversation to learn when the agent ends it (check the OAuth client's role); the bot is not told of the agent's end",
        );
        await sleep(UNREADABLE_PAUSE_MS, undefined, { signal: context.signal });
        continue;
      }
      throw err;
    }
    const customer = conversation?.participants?.find((p) => p.purpose === 'customer');
    if (customer && (customer.state === 'disconnected' || customer.state === 'terminated' || typeof customer.endTime === 'string')) {
      await context.apply('ended', [{ type: 'handover.ended', handoverId: context.handoverId, reason: 'agent_ended' }]);
      return;
    }
  }
}

/** How long a conversation that could not be read is left before it is tried again. */
const UNREADABLE_PAUSE_MS = 60 * 60_000;

/**
 * Disconnects the conversation when its id is known (`POST /api/v2/conversations/{id}/disconnect`);
 * else tells the agent in the conversation that the user has gone, so nobody waits for an answer.
 */
async function endConversation(
  call: GenesysCall,
  sessions: ConnectorSessions | undefined,
  work: EndWork,
  userRef: string,
  signal: AbortSignal,
  inboundPath: string,
): Promise<void> {
  const conversationId = (await sessions?.load(work.handoverId))?.externalId;
  if (conversationId) {
    await call(
      'POST',
      `/api/v2/conversations/${encodeURIComponent(conversationId)}/disconnect`,
      undefined,
      signal,
      'POST /api/v2/conversations/:id/disconnect',
    );
    return;
  }
  await call(
    'POST',
    inboundPath,
    // The end's own time, the same on every try: Genesys knows a repeat by its message id and time.
    { channel: { messageId: work.eventId, from: { id: userRef, idType: 'Opaque' }, time: work.createdAt }, text: 'The user ended the conversation.' },
    signal,
  );
}
