import type { Agent } from 'undici';
import type { AgentSideWork, Connector, ConnectorDefinition, DeliveryContext } from '../connector.js';
import { DeliveryError } from '../connector.js';
import { requestJson, type JsonResponse } from '../http-json.js';
import { chatwootConfigSchema, type ChatwootConfig } from './chatwoot-config.js';
import { handleChatwootInbound } from './chatwoot-webhook.js';

type Requested = Extract<AgentSideWork, { kind: 'handover.requested' }>;

/** The parts of Chatwoot answers the connector reads. */
interface ChatwootAnswer {
  id?: number;
  payload?: { contact?: { id?: number }; contact_inbox?: { source_id?: string } } | Array<{ id?: number; identifier?: string | null; additional_attributes?: Record<string, unknown> }>;
}

/**
 * Chatwoot as an agent bot on an API-channel inbox (docs/connectors/chatwoot.md). A handover finds or
 * creates the contact, opens a `pending` conversation (routed to a team), adds the transcript as a
 * private note and sets the conversation `open` for the agents. The user's messages are `incoming`
 * messages; the user ending resolves the conversation. Contacts and the agents list need a user's
 * token; everything on conversations is done with the bot's.
 */
export function chatwootConnectorDefinition(dispatcher: Agent): ConnectorDefinition<ChatwootConfig> {
  return {
    type: 'chatwoot',
    configSchema: chatwootConfigSchema,
    secretFields: ['userToken', 'botToken', 'webhookSecret'],
    urlFields: ['baseUrl'],
    create(config): Connector {
      const base = `${config.baseUrl.replace(/\/$/, '')}/api/v1/accounts/${config.accountId}`;
      const call = (token: string) => (method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal, accept?: number[]) =>
        requestJson<ChatwootAnswer>(dispatcher, { method, url: `${base}${path}`, headers: { api_access_token: token }, ...(body !== undefined ? { body } : {}), signal, ...(accept ? { accept } : {}) });
      const asUser = call(config.userToken);
      const asBot = call(config.botToken);
      return {
        capabilities: { userTyping: false, transfer: true },
        async deliver(work: AgentSideWork, context: DeliveryContext) {
          switch (work.kind) {
            case 'handover.requested': {
              const conversationId = await openConversation(config, asUser, asBot, work, context.signal);
              await asBot('POST', `/conversations/${conversationId}/messages`, { content: transcriptNote(work), message_type: 'outgoing', private: true }, context.signal);
              await asBot('POST', `/conversations/${conversationId}/toggle_status`, { status: 'open' }, context.signal);
              return { externalRef: String(conversationId) };
            }
            case 'message.created': {
              const text = [work.message.text, ...work.message.attachments.map((a) => a.url)].filter(Boolean).join('\n');
              await asBot('POST', `/conversations/${requireRef(context)}/messages`, { content: text, message_type: 'incoming', private: false }, context.signal);
              return;
            }
            case 'user.typing':
              // An API channel cannot show the contact typing through the account API (capabilities say so).
              return;
            case 'handover.ended':
              await asBot('POST', `/conversations/${requireRef(context)}/toggle_status`, { status: 'resolved' }, context.signal);
              return;
          }
        },
        handleInbound(request) {
          return handleChatwootInbound(config, request);
        },
        async availability(signal) {
          const res = await asUser('GET', '/agents', undefined, signal);
          const agents = res.body as unknown;
          if (!Array.isArray(agents)) throw new Error('the agents list is not an array');
          return { agentsOnline: agents.filter((a: { availability_status?: string }) => a.availability_status === 'online' || a.availability_status === 'available').length };
        },
      };
    },
  };
}

type Call = (method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal, accept?: number[]) => Promise<JsonResponse<ChatwootAnswer>>;

/**
 * The contact (created, or found by its identifier when it exists) and a pending conversation tagged
 * with the handover id. A retried delivery finds the conversation an earlier try opened.
 */
async function openConversation(config: ChatwootConfig, asUser: Call, asBot: Call, work: Requested, signal: AbortSignal): Promise<number> {
  const identifier = work.user.id;
  const created = await asUser('POST', '/contacts', { inbox_id: config.inboxId, name: work.user.name ?? work.user.id, identifier, ...(work.user.email ? { email: work.user.email } : {}) }, signal, [422]);
  let contactId = !Array.isArray(created.body?.payload) ? created.body?.payload?.contact?.id : undefined;
  if (created.status === 422 || contactId === undefined) {
    const found = await asUser('GET', `/contacts/search?q=${encodeURIComponent(identifier)}`, undefined, signal);
    const list = Array.isArray(found.body?.payload) ? found.body.payload : [];
    contactId = list.find((c) => c.identifier === identifier)?.id;
    if (contactId === undefined) throw new DeliveryError("Chatwoot refused the contact and no contact has the identifier of this handover's user", { retryable: false, statusCode: created.status });
    const conversations = await asUser('GET', `/contacts/${contactId}/conversations`, undefined, signal);
    const earlier = (Array.isArray(conversations.body?.payload) ? conversations.body.payload : []).find((c) => c.additional_attributes?.handover_id === work.handoverId);
    if (earlier?.id !== undefined) return earlier.id;
  }
  const teamId = teamFor(config, work);
  const conversation = await asBot(
    'POST',
    '/conversations',
    {
      inbox_id: config.inboxId,
      contact_id: contactId,
      status: 'pending',
      ...(teamId !== undefined ? { team_id: teamId } : {}),
      additional_attributes: { handover_id: work.handoverId, handover_queue: work.queue, handover_metadata: work.metadata },
    },
    signal,
  );
  const conversationId = conversation.body?.id;
  if (conversationId === undefined) throw new DeliveryError('Chatwoot returned no conversation id', { retryable: true });
  return conversationId;
}

/** Routing: `metadata.chatwootTeamId` beats the queue's team (`teams`), which beats `teamId`. */
function teamFor(config: ChatwootConfig, work: Requested): number | undefined {
  const fromMetadata = Number(work.metadata.chatwootTeamId);
  if (Number.isInteger(fromMetadata) && fromMetadata > 0) return fromMetadata;
  return config.teams?.[work.queue] ?? config.teamId;
}

/** The transcript and the bot's metadata, as a private note agents read before answering. */
export function transcriptNote(work: Requested): string {
  const lines = ['Conversation with the bot:', ...work.transcript.map((e) => `${e.role}: ${e.text.replace(/\s+/g, ' ').trim()}`)];
  const meta = Object.entries(work.metadata);
  if (meta.length > 0) lines.push('', 'Details:', ...meta.map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`));
  return lines.join('\n').slice(0, 150_000);
}

function requireRef(context: DeliveryContext): string {
  if (!context.externalRef) throw new DeliveryError('the Chatwoot conversation was never opened for this handover', { retryable: false });
  return context.externalRef;
}
