import type { KeyObject } from 'node:crypto';
import { checkCall } from '../check-call.js';
import type { Agent } from 'undici';
import type { Connector, ConnectorDefinition, ConnectorSessions, OpenWork } from '../connector.js';
import { DeliveryError } from '../connector.js';
import { requireRef } from '../connector-helpers.js';
import { countAvailableAgents, freshchatCall, userFor, type FreshchatCall } from './freshchat-api.js';
import { DEFAULT_OPENING_TEXT, freshchatConfigSchema, type FreshchatConfig } from './freshchat-config.js';
import { transcriptNote, userParts } from './freshchat-content.js';
import { handleFreshchatInbound, readPublicKey } from './freshchat-webhook.js';

/** How far a start got, kept as the session's position so a retry goes on from there. */
type StartStep = 'opened' | 'noted' | 'assigned';

/**
 * Freshchat through its conversations and messages API (docs/connectors/freshchat.md). A handover finds
 * or creates the user, opens a conversation in the configured topic with a first message as the user,
 * leaves the transcript as a private note and assigns the conversation to a group, where agents take
 * it. The user's messages are the user's messages in the conversation; the user ending resolves it.
 * Agents' messages, assignments and resolving come back by webhook (freshchat-webhook.ts).
 *
 * The conversation and the user are kept in the handover's session as soon as the conversation exists,
 * with how far the start got: a retried start goes on in the same conversation.
 */
export function freshchatConnectorDefinition(dispatcher: Agent): ConnectorDefinition<FreshchatConfig> {
  return {
    type: 'freshchat',
    configSchema: freshchatConfigSchema,
    secretFields: ['apiToken'],
    urlFields: ['baseUrl'],
    create(config, deps): Connector {
      const call = freshchatCall(dispatcher, config);
      const sessions = deps.sessions;
      let publicKey: KeyObject | Error;
      try {
        publicKey = readPublicKey(config.webhookPublicKey);
      } catch (err) {
        publicKey = err instanceof Error ? err : new Error(String(err));
        deps.log.warn({ err: publicKey }, "the Freshchat connector's webhookPublicKey cannot be read: every webhook will be refused");
      }
      return {
        // No sendTyping: Freshchat's API has no typing indicator, either way.
        async open(work, context) {
          return { externalRef: await start(call, config, sessions, work, context.signal) };
        },
        async sendMessage(work, context) {
          const conversationId = requireRef(context, 'Freshchat');
          const userId = await userOf(call, sessions, work.handoverId, conversationId, context.signal);
          const parts = userParts(work.message.text, work.message.attachments);
          if (parts.length === 0) return;
          await call(
            'POST',
            `/conversations/${encodeURIComponent(conversationId)}/messages`,
            { message_parts: parts, message_type: 'normal', actor_type: 'user', actor_id: userId, user_id: userId },
            context.signal,
            { label: 'POST /conversations/:id/messages' },
          );
        },
        async end(_work, context) {
          await call('PUT', `/conversations/${encodeURIComponent(requireRef(context, 'Freshchat'))}`, { status: 'resolved' }, context.signal, {
            label: 'PUT /conversations/:id',
          });
        },
        handleInbound(request) {
          return handleFreshchatInbound(config, publicKey, request);
        },
        async availability(signal) {
          // Agents available in the group of the queue (`groups`, else `groupId`); without a group, all of them.
          const byGroup = new Map<string, number>();
          const inGroup = async (groupId: string) => {
            if (!byGroup.has(groupId)) byGroup.set(groupId, await countAvailableAgents(call, config.agentId, groupId, signal));
            return byGroup.get(groupId)!;
          };
          const agentsOnline =
            config.groupId !== undefined ? await inGroup(config.groupId) : await countAvailableAgents(call, config.agentId, undefined, signal);
          const byQueue: Record<string, number> = {};
          for (const [queue, groupId] of Object.entries(config.groups ?? {})) byQueue[queue] = await inGroup(groupId);
          return Object.keys(byQueue).length > 0 ? { agentsOnline, byQueue } : { agentsOnline };
        },
        // One agent of the account: the token is valid for this account's API.
        check: async (signal) => {
          if (publicKey instanceof Error)
            return {
              verdict: 'failing',
              problem: 'misconfigured',
              reason: `webhookPublicKey cannot be read (${publicKey.message}): every webhook would be refused; paste the key from Admin → Webhooks`,
            };
          return checkCall('the agents list (GET /agents?items_per_page=1)', () => call('GET', '/agents?items_per_page=1', undefined, signal), {
            credentials_rejected: "apiToken refused: generate one in Admin → API Tokens and check that baseUrl is this account's API host",
          });
        },
      };
    },
  };
}

/** Opens the conversation (or goes on with the one an earlier try opened) and hands it to the group. */
async function start(
  call: FreshchatCall,
  config: FreshchatConfig,
  sessions: ConnectorSessions | undefined,
  work: OpenWork,
  signal: AbortSignal,
): Promise<string> {
  const earlier = await sessions?.load(work.handoverId);
  let conversationId = earlier?.externalId;
  let step = (earlier?.position ?? undefined) as StartStep | undefined;
  if (!conversationId) {
    const userId = await userFor(call, work.user, signal);
    const opening = {
      message_parts: [{ text: { content: config.openingText ?? DEFAULT_OPENING_TEXT } }],
      message_type: 'normal',
      actor_type: 'user',
      actor_id: userId,
      user_id: userId,
      channel_id: config.channelId,
    };
    const created = await call<{ conversation_id?: string }>(
      'POST',
      '/conversations',
      { app_id: config.appId, channel_id: config.channelId, status: 'new', users: [{ id: userId }], messages: [opening] },
      signal,
    );
    if (!created.body?.conversation_id) throw new DeliveryError('Freshchat returned no conversation_id', { retryable: true });
    conversationId = created.body.conversation_id;
    step = 'opened';
    await sessions?.save(work.handoverId, { externalId: conversationId, credential: userId, position: step });
  }
  const path = `/conversations/${encodeURIComponent(conversationId)}`;
  const advance = async (next: StartStep) => {
    step = next;
    await sessions?.save(work.handoverId, { position: next });
  };
  if (step === 'opened') {
    const note = {
      message_parts: [{ text: { content: transcriptNote(work.handoverId, work.transcript, work.metadata) } }],
      message_type: 'private',
      actor_type: 'agent',
      actor_id: config.agentId,
    };
    await call('POST', `${path}/messages`, note, signal, { label: 'POST /conversations/:id/messages' });
    await advance('noted');
  }
  if (step === 'noted') {
    const groupId = groupFor(config, work);
    if (groupId !== undefined) await call('PUT', path, { assigned_group_id: groupId }, signal, { label: 'PUT /conversations/:id' });
    await advance('assigned');
  }
  return conversationId;
}

/** Routing: `metadata.freshchatGroupId` beats the queue's group (`groups`), which beats `groupId`. */
function groupFor(config: FreshchatConfig, work: OpenWork): string | undefined {
  const fromMetadata = work.metadata.freshchatGroupId;
  if (typeof fromMetadata === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(fromMetadata)) return fromMetadata;
  return config.groups?.[work.queue] ?? config.groupId;
}

/** The user the conversation was opened for: from the session, else read from the conversation. */
async function userOf(
  call: FreshchatCall,
  sessions: ConnectorSessions | undefined,
  handoverId: string,
  conversationId: string,
  signal: AbortSignal,
): Promise<string> {
  const kept = (await sessions?.load(handoverId))?.credential;
  if (kept) return kept;
  const shown = await call<{ users?: Array<{ id?: string }> }>('GET', `/conversations/${encodeURIComponent(conversationId)}`, undefined, signal, {
    label: 'GET /conversations/:id',
  });
  const userId = shown.body?.users?.[0]?.id;
  if (!userId) throw new DeliveryError('the Freshchat conversation names no user', { retryable: false });
  return userId;
}
