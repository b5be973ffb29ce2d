import type { Agent } from 'undici';
import { checkCall } from '../check-call.js';
import type { Connector, ConnectorDefinition, OpenWork } from '../connector.js';
import { DeliveryError } from '../connector.js';
import { handoverNoteLines, readKeptFiles, requireRef } from '../connector-helpers.js';
import { requestForm, requestJson, type JsonResponse } from '../http-json.js';
import { chatwootConfigSchema, type ChatwootConfig } from './chatwoot-config.js';
import { findContactBy, sourceIdIn } from './chatwoot-api.js';
import { DEFAULT_RECONCILE_INTERVAL_MS, reconcileConversation } from './chatwoot-stream.js';
import { setUpChatwoot } from './chatwoot-setup.js';
import { handleChatwootInbound } from './chatwoot-webhook.js';

/** The parts of Chatwoot answers the connector reads. */
interface ChatwootAnswer {
  id?: number;
  payload?:
    | { contact?: { id?: number }; contact_inbox?: { source_id?: string } }
    | Array<{ id?: number; identifier?: string | null; additional_attributes?: Record<string, unknown> }>;
}

/**
 * Chatwoot as an agent bot on an API-channel inbox (docs/connectors/chatwoot.md). A handover finds or
 * creates the contact, opens a `pending` conversation (routed to a team), adds the transcript as a
 * private note and sets the conversation `open` for the agents. The user's messages are `incoming`
 * messages; the user ending resolves the conversation. Contacts, the agents list and reading
 * conversations need a user's token; everything that changes a conversation is done with the bot's.
 * Each open conversation is also read now and then (see chatwoot-stream.ts): Chatwoot sends account
 * webhooks once. With the inbox identifier, the user's typing goes through the inbox's public API, as
 * the contact (whose id there is its `source_id`, kept as the session's credential).
 */
export function chatwootConnectorDefinition(dispatcher: Agent): ConnectorDefinition<ChatwootConfig> {
  return {
    type: 'chatwoot',
    configSchema: chatwootConfigSchema,
    secretFields: ['userToken', 'botToken', 'webhookSecret'],
    urlFields: ['baseUrl'],
    create(config, deps): Connector {
      const base = `${config.baseUrl.replace(/\/$/, '')}/api/v1/accounts/${config.accountId}`;
      const call = (token: string) => (method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal, accept?: number[]) =>
        requestJson<ChatwootAnswer>(dispatcher, {
          method,
          url: `${base}${path}`,
          headers: { api_access_token: token },
          ...(body !== undefined ? { body } : {}),
          signal,
          ...(accept ? { accept } : {}),
        });
      const asUser = call(config.userToken);
      const asBot = call(config.botToken);
      const sessions = deps.sessions;
      const connector: Connector = {
        async open(work, context) {
          const { conversationId, sourceId } = await openConversation(config, asUser, asBot, work, context.signal);
          await asBot(
            'POST',
            `/conversations/${conversationId}/messages`,
            { content: transcriptNote(work), message_type: 'outgoing', private: true },
            context.signal,
          );
          await asBot('POST', `/conversations/${conversationId}/toggle_status`, { status: 'open' }, context.signal);
          // The session keeps the contact's source_id (its credential on the public API) and asks
          // for the conversation to be read for what webhooks miss.
          await sessions?.save(work.handoverId, { externalId: String(conversationId), credential: sourceId, position: null, openStream: true });
          return { externalRef: String(conversationId) };
        },
        async sendMessage(work, context) {
          // Files this service keeps go as the message's own attachments (multipart `attachments[]`);
          // links given as such, and a file no longer kept, as URLs in its text.
          const { files, links } = await readKeptFiles(work.message.attachments, context);
          const text = [work.message.text, ...links.map((a) => a.url)].filter(Boolean).join('\n');
          const path = `/conversations/${requireRef(context, 'Chatwoot')}/messages`;
          if (files.length === 0) {
            await asBot('POST', path, { content: text, message_type: 'incoming', private: false }, context.signal);
            return;
          }
          await requestForm(dispatcher, {
            method: 'POST',
            url: `${base}${path}`,
            headers: { api_access_token: config.botToken },
            fields: [...(text ? [['content', text] as const] : []), ['message_type', 'incoming'], ['private', 'false']],
            files: files.map((f) => ({ field: 'attachments[]', name: f.name, contentType: f.contentType, bytes: f.bytes })),
            signal: context.signal,
            label: '/conversations/:id/messages',
          });
        },
        async end(_work, context) {
          await asBot('POST', `/conversations/${requireRef(context, 'Chatwoot')}/toggle_status`, { status: 'resolved' }, context.signal);
        },
        handleInbound(request) {
          return handleChatwootInbound(config, request);
        },
        // The inbox, read with the user token. The agent bot's token can read nothing (its endpoints
        // all act on a conversation), so it is proven by the first delivery only.
        check: (signal) =>
          checkCall(
            `inbox ${config.inboxId} of account ${config.accountId} (GET /api/v1/accounts/{account}/inboxes/{inbox}, user token)`,
            () => asUser('GET', `/inboxes/${config.inboxId}`, undefined, signal),
            {
              credentials_rejected:
                "userToken refused: copy an agent's or administrator's access token from Profile settings (the bot token cannot be checked without acting)",
              not_found: `no inbox ${config.inboxId} in account ${config.accountId} visible to this user: check accountId, inboxId and the user's inbox access`,
            },
          ),
        setup: (context, signal) => setUpChatwoot(dispatcher, config, context, signal),
        async availability(signal) {
          // A queue is judged by the agents of the team it is routed to (`teams`, else `teamId`), each
          // team asked once; without a team, by the whole account. (A team chosen by one handover's
          // metadata cannot count: availability is asked before the handover.)
          const byTeam = new Map<number, number>();
          const teamOnline = async (teamId: number) => {
            if (!byTeam.has(teamId)) byTeam.set(teamId, onlineCount(await asUser('GET', `/teams/${teamId}/team_members`, undefined, signal)));
            return byTeam.get(teamId)!;
          };
          const agentsOnline = config.teamId !== undefined ? await teamOnline(config.teamId) : onlineCount(await asUser('GET', '/agents', undefined, signal));
          const byQueue: Record<string, number> = {};
          for (const [queue, teamId] of Object.entries(config.teams ?? {})) byQueue[queue] = await teamOnline(teamId);
          return Object.keys(byQueue).length > 0 ? { agentsOnline, byQueue } : { agentsOnline };
        },
      };
      // The user's typing is shown only through the inbox's public API (the account API's typing toggle is
      // the agent's), so only with the inbox identifier; without it, typing work is dropped undelivered.
      const inboxIdentifier = config.inboxIdentifier;
      if (inboxIdentifier) {
        connector.sendTyping = async (work, context) => {
          const conversationId = requireRef(context, 'Chatwoot');
          const sourceId = (await sessions?.load(work.handoverId))?.credential;
          // A handover opened before sessions were kept has no source_id: its typing is not shown.
          if (!sourceId) return;
          const path = `/public/api/v1/inboxes/${encodeURIComponent(inboxIdentifier)}/contacts/${encodeURIComponent(sourceId)}/conversations/${encodeURIComponent(conversationId)}/toggle_typing`;
          // The reference lists `typing_status` as a query parameter and in the body: sent in both.
          const typingStatus = work.typing ? 'on' : 'off';
          await requestJson(dispatcher, {
            method: 'POST',
            url: `${config.baseUrl.replace(/\/$/, '')}${path}?typing_status=${typingStatus}`,
            headers: {},
            body: { typing_status: typingStatus },
            signal: context.signal,
            label: '/public/api/v1/inboxes/:inbox/contacts/:contact/conversations/:id/toggle_typing',
          });
        };
      }
      if (sessions)
        connector.pullStream = { read: (context) => reconcileConversation(asUser, context, config.reconcileIntervalMs ?? DEFAULT_RECONCILE_INTERVAL_MS) };
      return connector;
    },
  };
}

/** Agents able to take a chat in a list of agents (`availability_status`: `online`, or `available` as the swagger file has it). */
function onlineCount(res: JsonResponse<unknown>): number {
  const agents = res.body;
  if (!Array.isArray(agents)) throw new Error('the agents list is not an array');
  return agents.filter((a: { availability_status?: string }) => a.availability_status === 'online' || a.availability_status === 'available').length;
}

type Call = (method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal, accept?: number[]) => Promise<JsonResponse<ChatwootAnswer>>;
const asUnknown = (asUser: Call) => (method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal) =>
  asUser(method, path, body, signal) as Promise<JsonResponse<unknown>>;

/**
 * The contact (created, or found by its identifier when it exists) and a pending conversation tagged
 * with the handover id. A retried delivery finds the conversation an earlier try opened.
 */
async function openConversation(
  config: ChatwootConfig,
  asUser: Call,
  asBot: Call,
  work: OpenWork,
  signal: AbortSignal,
): Promise<{ conversationId: number; sourceId: string }> {
  const identifier = work.user.id;
  const created = await asUser(
    'POST',
    '/contacts',
    { inbox_id: config.inboxId, name: work.user.name ?? work.user.id, identifier, ...(work.user.email ? { email: work.user.email } : {}) },
    signal,
    [422],
  );
  const payload = !Array.isArray(created.body?.payload) ? created.body?.payload : undefined;
  let contactId = payload?.contact?.id;
  let sourceId = payload?.contact_inbox?.source_id;
  if (created.status === 422 || contactId === undefined) {
    // Taken: by an earlier handover of the same user (its identifier), or, as emails are unique in an
    // account, by a contact Chatwoot already knows by this email (from its widget or an email thread):
    // that one is the user's, and the agents see the conversation beside the user's history.
    const found =
      (await findContactBy(asUnknown(asUser), 'identifier', identifier, signal)) ??
      (work.user.email ? await findContactBy(asUnknown(asUser), 'email', work.user.email, signal) : undefined);
    contactId = found?.id;
    if (contactId === undefined)
      throw new DeliveryError("Chatwoot refused the contact and no contact has the identifier or the email of this handover's user", {
        retryable: false,
        statusCode: created.status,
      });
    sourceId =
      found?.contact_inboxes?.find((ci) => ci.inbox?.id === config.inboxId)?.source_id ??
      (await sourceIdIn(asUnknown(asUser), contactId, config.inboxId, signal));
    const conversations = await asUser('GET', `/contacts/${contactId}/conversations`, undefined, signal);
    const earlier = (Array.isArray(conversations.body?.payload) ? conversations.body.payload : []).find(
      (c) => c.additional_attributes?.handover_id === work.handoverId,
    );
    if (earlier?.id !== undefined) return { conversationId: earlier.id, sourceId };
  }
  if (!sourceId) sourceId = await sourceIdIn(asUnknown(asUser), contactId, config.inboxId, signal);
  const teamId = teamFor(config, work);
  const conversation = await asBot(
    'POST',
    '/conversations',
    {
      inbox_id: config.inboxId,
      contact_id: contactId,
      // The contact's inbox entry: the conversation belongs to it, so its public API reaches it.
      source_id: sourceId,
      status: 'pending',
      ...(teamId !== undefined ? { team_id: teamId } : {}),
      additional_attributes: { handover_id: work.handoverId, handover_queue: work.queue, handover_metadata: work.metadata },
    },
    signal,
  );
  const conversationId = conversation.body?.id;
  if (conversationId === undefined) throw new DeliveryError('Chatwoot returned no conversation id', { retryable: true });
  return { conversationId, sourceId };
}

/** Routing: `metadata.chatwootTeamId` beats the queue's team (`teams`), which beats `teamId`. */
function teamFor(config: ChatwootConfig, work: OpenWork): number | undefined {
  const fromMetadata = Number(work.metadata.chatwootTeamId);
  if (Number.isInteger(fromMetadata) && fromMetadata > 0) return fromMetadata;
  return config.teams?.[work.queue] ?? config.teamId;
}

/** The transcript and the bot's metadata, as a private note agents read before answering. */
export function transcriptNote(work: OpenWork): string {
  return handoverNoteLines(work.transcript, work.metadata).join('\n').slice(0, 150_000);
}
