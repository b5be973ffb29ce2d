import type { Agent } from 'undici';
import { checkCall } from '../check-call.js';
import type { Attachment } from '../../model/handover.js';
import type { Connector, ConnectorDefinition, DeliveryContext, OpenWork } from '../connector.js';
import { DeliveryError } from '../connector.js';
import { cutText, requireRef } from '../connector-helpers.js';
import { requestJson, type JsonResponse } from '../http-json.js';
import { zendeskConfigSchema, type ZendeskConfig } from './zendesk-config.js';
import { handoverMetadata } from './zendesk-content.js';
import { setUpZendesk } from './zendesk-setup.js';
import { handleZendeskInbound } from './zendesk-webhook.js';

/** Sunshine Conversations refuses longer texts; longer messages are sent in parts. */
const MAX_TEXT = 4096;
/**
 * What the API takes of a user's profile and a media message's description (its reference: `profile`
 * and `altText`); a longer value, or an email it does not read as one, is refused with a `400` that
 * would fail the handover. A name or description is cut to fit, a locale or an email that does not fit
 * is left out: the agents still get the conversation, and the transcript still names the user.
 */
const MAX_PROFILE_TEXT = 128;
const MAX_LOCALE = 64;
const MAX_ALT_TEXT = 128;
/** An address the API's `format: email` takes: one `@` between a local part and a dotted domain, no spaces. */
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
/** A user with more conversations than this many pages of 100 gets a new one on a retried start. */
const MAX_PAGES = 10;
/** Conversation → Sunshine user id, remembered per instance so each message needs one call, not two. */
const MAX_REMEMBERED_CONVERSATIONS = 5000;
/**
 * Where control goes for a human unless the config says otherwise: the agent workspace by its
 * integration type (a documented passControl target). `next` would follow the switchboard's order,
 * which may lead to another bot (the answer bot) rather than the agents.
 */
const AGENT_WORKSPACE = 'zd:agentWorkspace';

/**
 * Zendesk Sunshine Conversations, as a switchboard integration (docs/connectors/zendesk.md).
 * A handover creates (or reuses) the Sunshine user and a conversation, then passes control to the
 * agents with the transcript in the metadata; the user's messages are posted as the user. Agents'
 * messages and the ticket closing come back by webhook. Zendesk does not tell integrations of moves
 * between groups, so no `handover.transferred` comes from it.
 */
export function zendeskConnectorDefinition(dispatcher: Agent): ConnectorDefinition<ZendeskConfig> {
  return {
    type: 'zendesk',
    configSchema: zendeskConfigSchema,
    secretFields: ['keySecret', 'webhookSecret'],
    urlFields: ['baseUrl'],
    create(config): Connector {
      const api = zendeskApi(dispatcher, config);
      const userOf = new Map<string, string>();
      const remember = (conversationId: string, userId: string) => {
        userOf.set(conversationId, userId);
        if (userOf.size > MAX_REMEMBERED_CONVERSATIONS) userOf.delete(userOf.keys().next().value!);
      };
      const conversationUser = async (conversationId: string, signal: AbortSignal): Promise<string> => {
        const known = userOf.get(conversationId);
        if (known) return known;
        const res = await api('GET', `/conversations/${encodeURIComponent(conversationId)}/participants`, undefined, signal);
        const userId = res.body?.participants?.find((p) => p.userId)?.userId;
        if (!userId) throw new DeliveryError(`conversation ${conversationId} has no user participant`, { retryable: false });
        remember(conversationId, userId);
        return userId;
      };
      /**
       * Posts message contents as the user, each tagged with `key` and its part number. The messages
       * API takes no idempotency key, so a retry (which may follow a try that went through but whose
       * answer was lost) first reads the newest messages and skips the parts already there.
       */
      const postAsUser = async (conversationId: string, contents: SunshineContent[], key: Record<string, string>, context: DeliveryContext) => {
        const userId = await conversationUser(conversationId, context.signal);
        const path = `/conversations/${encodeURIComponent(conversationId)}/messages`;
        const posted = (context.attempt ?? 1) > 1 ? await postedParts(api, path, key, context.signal) : new Set<number>();
        for (const [part, content] of contents.entries()) {
          if (posted.has(part)) continue;
          await api('POST', path, { author: { type: 'user', userId }, content, metadata: { ...key, handoverPart: part } }, context.signal);
        }
      };
      return {
        // No sendTyping: the API takes typing only from the business side, so the user's typing is not shown.
        async open(work, context) {
          const { conversationId, userId } = await openConversation(api, work, context.signal);
          remember(conversationId, userId);
          const metadata = handoverMetadata(work);
          await api(
            'POST',
            `/conversations/${encodeURIComponent(conversationId)}/passControl`,
            { switchboardIntegration: config.switchboardIntegration ?? AGENT_WORKSPACE, metadata },
            context.signal,
          );
          return { externalRef: conversationId };
        },
        async sendMessage(work, context) {
          const conversationId = requireRef(context, 'Zendesk');
          // The text (in parts), then each attachment as an image or file message of its own.
          const contents = [...textContents(work.message.text), ...work.message.attachments.map(mediaContent)];
          if (contents.length === 0) return;
          await postAsUser(conversationId, contents, { handoverMessageId: work.message.id }, context);
        },
        async end(work, context) {
          const conversationId = requireRef(context, 'Zendesk');
          await postAsUser(
            conversationId,
            textContents(config.endedByUserText ?? 'The customer has left the conversation.'),
            { handoverEvent: 'ended', handoverEndReason: work.reason },
            context,
          );
        },
        handleInbound(request) {
          return handleZendeskInbound(config, request);
        },
        // GetApp: the key must be valid for this app (an app-scoped key reads its own app).
        check: (signal) =>
          checkCall(`the app ${config.appId} (GET /v2/apps/{appId})`, () => api('GET', '', undefined, signal), {
            credentials_rejected: 'keyId/keySecret refused: create an API key for this app in Admin Center → Apps and integrations → Conversations API',
            not_found: `no app ${config.appId} under ${config.baseUrl}: check appId and the subdomain in baseUrl`,
          }),
        setup: (context, signal) => setUpZendesk(dispatcher, config, context, signal),
      };
    },
  };
}

/** Message contents the connector posts: text, or an image or file by URL. */
type SunshineContent = { type: 'text'; text: string } | { type: 'image' | 'file'; mediaUrl: string; altText?: string };

/** A text in parts of at most MAX_TEXT characters (none for an empty text). */
function textContents(text: string): SunshineContent[] {
  const parts: SunshineContent[] = [];
  for (let i = 0; i < text.length; i += MAX_TEXT) parts.push({ type: 'text', text: text.slice(i, i + MAX_TEXT) });
  return parts;
}

/** An attachment as Sunshine Conversations shows it: an image (by its content type) or a file, by URL. */
function mediaContent(attachment: Attachment): SunshineContent {
  const type = attachment.contentType?.toLowerCase().startsWith('image/') ? 'image' : 'file';
  return { type, mediaUrl: attachment.url, ...(attachment.name ? { altText: cutText(attachment.name, MAX_ALT_TEXT) } : {}) };
}

/** The parts of Sunshine Conversations answers the connector reads. */
interface SunshineAnswer {
  user?: { id?: string };
  messages?: Array<{ metadata?: Record<string, unknown> }>;
  conversation?: { id?: string };
  conversations?: Array<{ id: string; metadata?: Record<string, unknown> }>;
  participants?: Array<{ userId?: string }>;
  meta?: { hasMore?: boolean; afterCursor?: string };
}

/** `label` names the call in errors instead of its path, for a path that carries the end user's id. */
type Api = (
  method: 'GET' | 'POST',
  path: string,
  body: unknown,
  signal: AbortSignal,
  accept?: number[],
  label?: string,
) => Promise<JsonResponse<SunshineAnswer>>;

function zendeskApi(dispatcher: Agent, config: ZendeskConfig): Api {
  const base = `${config.baseUrl.replace(/\/$/, '')}/v2/apps/${encodeURIComponent(config.appId)}`;
  const authorization = `Basic ${Buffer.from(`${config.keyId}:${config.keySecret}`).toString('base64')}`;
  return (method, path, body, signal, accept, label) =>
    requestJson<SunshineAnswer>(dispatcher, {
      method,
      url: `${base}${path}`,
      headers: { authorization },
      ...(body !== undefined ? { body } : {}),
      signal,
      ...(accept ? { accept } : {}),
      ...(label ? { label: `/v2/apps/${config.appId}${label}` } : {}),
    });
}

/**
 * The user (created, or found when it exists: 409) and a conversation tagged with the handover id.
 * A retried delivery finds the conversation an earlier try created instead of opening a second one.
 */
async function openConversation(api: Api, work: OpenWork, signal: AbortSignal): Promise<{ conversationId: string; userId: string }> {
  const externalId = work.user.id;
  const profile: Record<string, string> = {};
  if (work.user.name) profile.givenName = cutText(work.user.name, MAX_PROFILE_TEXT);
  if (work.user.email && work.user.email.length <= MAX_PROFILE_TEXT && EMAIL.test(work.user.email)) profile.email = work.user.email;
  if (work.user.locale && work.user.locale.length <= MAX_LOCALE) profile.locale = work.user.locale;
  const created = await api('POST', '/users', { externalId, profile }, signal, [409]);
  let userId = created.body?.user?.id;
  if (created.status === 409 || !userId) {
    const existing = await api('GET', `/users/${encodeURIComponent(externalId)}`, undefined, signal, undefined, '/users/:externalId');
    userId = existing.body?.user?.id;
  }
  if (!userId) throw new DeliveryError('Sunshine Conversations returned no user id', { retryable: true });

  const earlier = await findConversation(api, userId, work.handoverId, signal);
  if (earlier) return { conversationId: earlier, userId };
  const conversation = await api(
    'POST',
    '/conversations',
    { type: 'personal', participants: [{ userId, subscribeSDKClient: false }], metadata: { handoverId: work.handoverId, conversationId: work.conversationId } },
    signal,
  );
  const conversationId = conversation.body?.conversation?.id;
  if (!conversationId) throw new DeliveryError('Sunshine Conversations returned no conversation id', { retryable: true });
  return { conversationId, userId };
}

/** Pages through the user's conversations (cursor pagination), at most MAX_PAGES of them. */
async function findConversation(api: Api, userId: string, handoverId: string, signal: AbortSignal): Promise<string | undefined> {
  let after: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const cursor = after ? `&page[after]=${encodeURIComponent(after)}` : '';
    const listed = await api('GET', `/conversations?filter[userId]=${encodeURIComponent(userId)}&page[size]=100${cursor}`, undefined, signal);
    const conversations = listed.body?.conversations ?? [];
    const found = conversations.find((c) => c.metadata?.handoverId === handoverId);
    if (found) return found.id;
    after = listed.body?.meta?.afterCursor ?? conversations.at(-1)?.id;
    if (!listed.body?.meta?.hasMore || !after) return undefined;
  }
  return undefined;
}

/**
 * The part numbers of the message tagged `key` among the conversation's newest messages (one page:
 * a retry follows its first try closely, so its parts, if any, are among the newest).
 */
async function postedParts(api: Api, path: string, key: Record<string, string>, signal: AbortSignal): Promise<Set<number>> {
  const listed = await api('GET', path, undefined, signal);
  const parts = new Set<number>();
  for (const message of listed.body?.messages ?? []) {
    const metadata = message.metadata ?? {};
    if (!Object.entries(key).every(([k, v]) => metadata[k] === v)) continue;
    // A message posted before parts were numbered is its first part.
    parts.add(typeof metadata.handoverPart === 'number' ? metadata.handoverPart : 0);
  }
  return parts;
}
