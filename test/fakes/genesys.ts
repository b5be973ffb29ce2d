import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from '../support/ports.js';

/**
 * A Genesys Cloud org with one Open Messaging integration, as its login host, its Platform API and the
 * integration's outbound webhook see it. Written from Genesys's public references:
 * - developer.genesys.cloud, Open messaging (commdigital/digital/openmessaging/): inbound messages
 *   `POST /api/v2/conversations/messages/{integrationId}/inbound/open/message` with a normalized
 *   message (`channel.messageId`, `channel.from {id, idType, nickname}`, `channel.time`,
 *   `channel.metadata.customAttributes`, `text`, `content[]` of `{contentType: "Attachment",
 *   attachment: {mediaType, url, mime, filename}}`); inbound events `…/inbound/open/event` (`events[]`
 *   of `{eventType: "Typing", typing: {type: "On"}}`); inbound receipts `…/inbound/open/receipt`
 *   (statuses Delivered | Failed); "Each message must have a unique combination of Messaging Platform
 *   Message ID and time";
 * - the same site's Outbound messages and Validate webhook notifications pages: each agent message is
 *   POSTed to the integration's outboundNotificationWebhookUrl as a normalized message (`id`, `channel
 *   {id, platform: "Open", type: "Private", to {id}, from {nickname, id, idType}, time, messageId}`,
 *   `type` Text | Structured | Receipt | Event, `text`, `content`, `originatingEntity` Human | Bot,
 *   `direction: "Outbound"`), signed `X-Hub-Signature-256: sha256=<base64 HMAC-SHA256 of the body
 *   under outboundNotificationWebhookSignatureSecretToken>`; retried up to 5 times after a 10 s timeout
 *   or a 429/5xx answer; typing as an `Event` with `Typing` `On` and a `duration`;
 * - the Platform API's OAuth (developer.genesys.cloud, Client Credentials grant): `POST
 *   https://login.{region}/oauth/token`, Basic client id:secret, `grant_type=client_credentials` →
 *   `{access_token, token_type: "bearer", expires_in}`; 401 `bad.credentials` for a token it does not
 *   take; errors as `{message, code, status}`;
 * - the Platform API reference as the MyPureCloud platform-client SDKs list it
 *   (`postConversationsMessageInboundOpenMessage`, `…OpenEvent`, `…OpenReceipt`,
 *   `postConversationDisconnect` = `POST /api/v2/conversations/{conversationId}/disconnect`,
 *   `getConversationsMessagingIntegrationsOpenIntegrationId` = `GET
 *   /api/v2/conversations/messaging/integrations/open/{integrationId}`, permission
 *   `messaging:integration:view`, answering the OpenIntegration: `id`, `name`,
 *   `outboundNotificationWebhookUrl`, `status`, `createStatus`; 404 for an id the org does not have;
 *   `patchConversationsMessagingIntegrationsOpenIntegrationId` = `PATCH` of the same path with
 *   `outboundNotificationWebhookUrl` and `outboundNotificationWebhookSignatureSecretToken`, which is
 *   never shown back; permission `messaging:integration:edit`).
 *
 * The inbound message's answer names its `conversationId` only when asked with
 * `?prefetchConversationId=true` (`answerConversationId: false`: not even then, and the connector falls
 * back to a text). One point the references leave open is played as the connector expects and
 * documented as such (docs/connectors/genesys.md): an agent disconnecting is an outbound `Event` with
 * `{eventType: "Presence", presence: {type: "Disconnect"}}` (`agentDisconnect`), which the Open
 * Messaging webhook is not documented to send.
 *
 * A conversation is keyed by the sender's `channel.from.id` while it is connected, as in Genesys. A
 * redelivery (`resend`) is the same body signed again. The test plays the agents.
 */
export interface GenesysMessage {
  messageId: string;
  time: string;
  text: string;
  content: Array<{ contentType: string; attachment: { mediaType: string; url: string; mime?: string; filename?: string } }>;
}

export interface GenesysConversation {
  id: string;
  userRef: string;
  nickname: string | null;
  customAttributes: Record<string, string>;
  state: 'connected' | 'disconnected';
  disconnectedBy: 'api' | 'agent' | null;
  inbound: GenesysMessage[];
  typing: number;
}

export interface FakeGenesys {
  url: string;
  clientId: string;
  clientSecret: string;
  integrationId: string;
  /** The integration's name, as the Platform API shows it. */
  integrationName: string;
  /** Its outbound notification webhook URL; null: the connector's inbound URL (`webhookTarget`). */
  integrationWebhookUrl: string | null;
  /** PATCHes of the integration received, in order. */
  integrationPatches: Array<Record<string, unknown>>;
  webhookSecret: string;
  webhookTarget: string;
  /** `expires_in` of the next tokens, in seconds. */
  tokenLifetimeSeconds: number;
  tokensIssued: string[];
  /** Whether the inbound message's answer names the conversation. */
  answerConversationId: boolean;
  conversations: GenesysConversation[];
  refused: Array<{ method: string; path: string; status: number; reason: string }>;
  down: boolean;
  /** How many next inbound messages are taken and then answered 500 (the answer lost). */
  loseAnswerNext: number;
  deliveries: Array<{ message: Record<string, any>; status: number }>;
  conversationFor(userRef: string): GenesysConversation | undefined;
  agentSend(
    userRef: string,
    text: string,
    options?: { nickname?: string; attachments?: GenesysMessage['content']; originatingEntity?: 'Human' | 'Bot' },
  ): Promise<{ status: number; body: any }>;
  agentTyping(userRef: string): Promise<{ status: number; body: any }>;
  agentDisconnect(userRef: string): Promise<{ status: number; body: any }>;
  /**
   * The agent ends the chat as Genesys's Open Messaging does it: the interaction is disconnected (its
   * participants read so, `GET /api/v2/conversations/messages/{id}`) and the webhook is told nothing.
   */
  agentEnds(userRef: string): void;
  /** Reads of conversations (`GET /api/v2/conversations/messages/{id}`) received. */
  conversationReads: number;
  /** Set: every read of a conversation is refused with this status (an OAuth client without the role's permission: 403). */
  refuseConversationReads: number | null;
  /** Revokes every token issued so far (an admin rotating the client's secret does that). */
  revokeTokens(): void;
  resend(message: Record<string, any>): Promise<{ status: number; body: any }>;
  post(body: string, headers: Record<string, string>): Promise<{ status: number; body: any }>;
  sign(body: string, secret?: string): Record<string, string>;
  close(): Promise<void>;
}

export async function startFakeGenesys(): Promise<FakeGenesys> {
  let chain: Promise<unknown> = Promise.resolve();
  const tokens = new Map<string, number>();
  const seen = new Map<string, unknown>();
  const fake: FakeGenesys = {
    url: '',
    clientId: randomUUID(),
    clientSecret: `gcs-${randomUUID()}`,
    integrationId: randomUUID(),
    integrationName: 'Acme Open Messaging',
    integrationWebhookUrl: null,
    integrationPatches: [],
    webhookSecret: `whs-${randomUUID()}`,
    webhookTarget: '',
    tokenLifetimeSeconds: 86_400,
    tokensIssued: [],
    answerConversationId: true,
    conversations: [],
    refused: [],
    down: false,
    loseAnswerNext: 0,
    deliveries: [],
    conversationFor: (userRef) => fake.conversations.find((c) => c.userRef === userRef),
    agentSend(userRef, text, options = {}) {
      return emit(
        userRef,
        { type: 'Text', text, originatingEntity: options.originatingEntity ?? 'Human', ...(options.attachments ? { content: options.attachments } : {}) },
        options.nickname,
      );
    },
    agentTyping: (userRef) => emit(userRef, { type: 'Event', events: [{ eventType: 'Typing', typing: { type: 'On', duration: 5000 } }] }),
    agentDisconnect(userRef) {
      const c = fake.conversationFor(userRef);
      if (c) {
        c.state = 'disconnected';
        c.disconnectedBy = 'agent';
      }
      return emit(userRef, { type: 'Event', events: [{ eventType: 'Presence', presence: { type: 'Disconnect' } }] });
    },
    agentEnds(userRef) {
      const c = fake.conversationFor(userRef);
      if (c) {
        c.state = 'disconnected';
        c.disconnectedBy = 'agent';
      }
    },
    conversationReads: 0,
    refuseConversationReads: null,
    revokeTokens: () => tokens.clear(),
    resend(message) {
      const body = JSON.stringify(message);
      return fake.post(body, fake.sign(body));
    },
    async post(body, headers) {
      const res = await fetch(fake.webhookTarget, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
    sign: (body, secret = fake.webhookSecret) => ({ 'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('base64')}` }),
    close: async () => {},
  };

  /** One outbound webhook request per call, in order, as the integration sends them. */
  function emit(userRef: string, fields: Record<string, unknown>, nickname = 'Acme Open Messaging'): Promise<{ status: number; body: any }> {
    const id = randomUUID().replace(/-/g, '');
    const message = {
      id,
      channel: {
        id: fake.integrationId,
        platform: 'Open',
        type: 'Private',
        to: { id: userRef },
        from: { nickname, id: fake.integrationId, idType: 'Opaque' },
        time: new Date().toISOString(),
        messageId: id,
      },
      ...fields,
      direction: 'Outbound',
    };
    const result = chain.then(async () => {
      const body = JSON.stringify(message);
      const answer = await fake.post(body, fake.sign(body)).catch((err: unknown) => ({ status: 0, body: String(err) }));
      fake.deliveries.push({ message, status: answer.status });
      return answer;
    });
    chain = result;
    return result;
  }

  /** Genesys's receipt of an inbound message, sent to the webhook as it is for every inbound message. */
  function receipt(userRef: string, messageId: string): void {
    const message = {
      id: messageId,
      channel: {
        id: fake.integrationId,
        platform: 'Open',
        type: 'Private',
        to: { id: userRef },
        from: { id: fake.integrationId, idType: 'Opaque' },
        time: new Date().toISOString(),
      },
      type: 'Receipt',
      status: 'Delivered',
      isFinalReceipt: true,
      direction: 'Inbound',
    };
    chain = chain.then(async () => {
      const body = JSON.stringify(message);
      const answer = await fake.post(body, fake.sign(body)).catch((err: unknown) => ({ status: 0, body: String(err) }));
      fake.deliveries.push({ message, status: answer.status });
    });
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const send = (status: number, body: unknown, reason = '') => {
        if (status >= 400) fake.refused.push({ method: req.method ?? '', path: req.url ?? '', status, reason });
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      const error = (status: number, code: string, message: string, reason = message) =>
        send(status, { message, code, status, contextId: randomUUID(), details: [], errors: [] }, reason);
      if (fake.down) return error(503, 'service.unavailable', 'Service Unavailable', 'down');
      const url = new URL(req.url ?? '/', 'http://fake');

      if (req.method === 'POST' && url.pathname === '/oauth/token') {
        if (req.headers.authorization !== `Basic ${Buffer.from(`${fake.clientId}:${fake.clientSecret}`).toString('base64')}`)
          return send(401, { error: 'invalid_client', description: 'client not found' }, 'client credentials');
        if (
          !String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded') ||
          new URLSearchParams(raw).get('grant_type') !== 'client_credentials'
        )
          return send(400, { error: 'unsupported_grant_type' }, 'grant');
        const token = `gct-${randomUUID()}`;
        tokens.set(token, Date.now() + fake.tokenLifetimeSeconds * 1000);
        fake.tokensIssued.push(token);
        return send(200, { access_token: token, token_type: 'bearer', expires_in: fake.tokenLifetimeSeconds });
      }

      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const expiresAt = bearer ? tokens.get(bearer) : undefined;
      if (expiresAt === undefined || Date.now() >= expiresAt)
        return error(401, 'bad.credentials', 'Invalid login credentials.', expiresAt === undefined ? 'unknown token' : 'expired token');
      let body: any;
      try {
        body = raw ? JSON.parse(raw) : null;
      } catch {
        return error(400, 'bad.request', 'The request could not be understood by the server due to malformed syntax.');
      }
      const open = /^\/api\/v2\/conversations\/messages\/([^/]+)\/inbound\/open\/(message|event|receipt)$/.exec(url.pathname);
      if (req.method === 'POST' && open) {
        if (decodeURIComponent(open[1]!) !== fake.integrationId) return error(404, 'not.found', 'integration not found', 'integration');
        const from = body?.channel?.from;
        if (typeof from?.id !== 'string' || !from.id || !['Email', 'Phone', 'Opaque'].includes(from.idType))
          return error(400, 'bad.request', 'channel.from.id and idType are required', 'from');
        const time = body.channel.time;
        if (typeof time !== 'string' || Number.isNaN(Date.parse(time))) return error(400, 'bad.request', 'channel.time must be an ISO-8601 date', 'time');
        if (open[2] === 'event') {
          const events = body.events;
          if (!Array.isArray(events) || events.length === 0 || events.some((e: any) => e?.eventType !== 'Typing' || e.typing?.type !== 'On'))
            return error(400, 'bad.request', 'events must be Typing On events', 'events');
          const c = fake.conversationFor(from.id);
          if (c) c.typing++;
          return send(202, { id: randomUUID(), channel: body.channel, events, direction: 'Inbound' });
        }
        if (open[2] === 'receipt') return send(202, { id: body.id, status: body.status, direction: 'Outbound' });
        const messageId = body.channel.messageId;
        if (typeof messageId !== 'string' || !messageId) return error(400, 'bad.request', 'channel.messageId is required', 'messageId');
        const text = body.text;
        const content = body.content ?? [];
        if ((text !== undefined && typeof text !== 'string') || !Array.isArray(content))
          return error(400, 'bad.request', 'text must be a string and content an array', 'shape');
        if (!text && content.length === 0) return error(400, 'bad.request', 'a message needs text or content', 'empty');
        if (
          content.some(
            (x: any) =>
              x?.contentType !== 'Attachment' ||
              !['Image', 'Video', 'Audio', 'File'].includes(x.attachment?.mediaType) ||
              typeof x.attachment?.url !== 'string' ||
              typeof x.attachment?.mime !== 'string',
          )
        )
          return error(400, 'bad.request', 'content must be attachments with a mediaType, url and mime', 'content');
        const attributes = body.channel.metadata?.customAttributes;
        if (attributes !== undefined && (typeof attributes !== 'object' || Object.values(attributes).some((v) => typeof v !== 'string')))
          return error(400, 'bad.request', 'customAttributes must map names to strings', 'customAttributes');
        const key = `${messageId}|${time}`;
        if (seen.has(key)) return send(202, seen.get(key));
        let c = fake.conversations.find((x) => x.userRef === from.id && x.state === 'connected');
        if (!c) {
          c = {
            id: randomUUID(),
            userRef: from.id,
            nickname: from.nickname ?? null,
            customAttributes: attributes ?? {},
            state: 'connected',
            disconnectedBy: null,
            inbound: [],
            typing: 0,
          };
          fake.conversations.push(c);
        }
        c.inbound.push({ messageId, time, text: text ?? '', content });
        const answer = {
          id: randomUUID().replace(/-/g, ''),
          channel: { ...body.channel, id: fake.integrationId, platform: 'Open', type: 'Private', to: { id: fake.integrationId } },
          type: 'Text',
          text,
          content,
          direction: 'Inbound',
          // Named only when asked for (`prefetchConversationId=true`, false by default).
          ...(fake.answerConversationId && url.searchParams.get('prefetchConversationId') === 'true' ? { conversationId: c.id } : {}),
        };
        seen.set(key, answer);
        receipt(from.id, answer.id);
        if (fake.loseAnswerNext > 0) {
          fake.loseAnswerNext--;
          return error(500, 'internal.server.error', 'answer lost (injected)', 'injected');
        }
        return send(202, answer);
      }
      const integration = /^\/api\/v2\/conversations\/messaging\/integrations\/open\/([^/]+)$/.exec(url.pathname);
      if (req.method === 'GET' && integration) {
        if (decodeURIComponent(integration[1]!) !== fake.integrationId) return error(404, 'not.found', 'The requested resource was not found.', 'integration');
        return send(200, {
          id: fake.integrationId,
          name: fake.integrationName,
          outboundNotificationWebhookUrl: fake.integrationWebhookUrl ?? fake.webhookTarget,
          status: 'Active',
          createStatus: 'Completed',
          selfUri: `/api/v2/conversations/messaging/integrations/open/${fake.integrationId}`,
        });
      }
      if (req.method === 'PATCH' && integration) {
        if (decodeURIComponent(integration[1]!) !== fake.integrationId) return error(404, 'not.found', 'The requested resource was not found.', 'integration');
        const url = body?.outboundNotificationWebhookUrl;
        const token = body?.outboundNotificationWebhookSignatureSecretToken;
        if ((url !== undefined && (typeof url !== 'string' || !/^https?:\/\//.test(url))) || (token !== undefined && typeof token !== 'string'))
          return error(400, 'bad.request', 'invalid integration update', 'integration update');
        // OpenIntegrationUpdateRequest requires the integration's name.
        if (typeof body?.name !== 'string' || !body.name) return error(400, 'bad.request', 'name is required', 'integration update without name');
        fake.integrationPatches.push(body);
        if (url !== undefined) fake.integrationWebhookUrl = url;
        // From now on Genesys signs with the new token.
        if (token !== undefined) fake.webhookSecret = token;
        return send(200, {
          id: fake.integrationId,
          name: fake.integrationName,
          outboundNotificationWebhookUrl: fake.integrationWebhookUrl ?? fake.webhookTarget,
          status: 'Active',
          createStatus: 'Completed',
        });
      }
      // getConversationsMessage: the MessageConversation, its participants' purposes and states.
      const read = /^\/api\/v2\/conversations\/messages\/([^/]+)$/.exec(url.pathname);
      if (req.method === 'GET' && read) {
        fake.conversationReads++;
        if (fake.refuseConversationReads !== null)
          return error(fake.refuseConversationReads, 'missing.permissions', 'Unable to perform the requested action.', 'read refused');
        const c = fake.conversations.find((x) => x.id === decodeURIComponent(read[1]!));
        if (!c) return error(404, 'not.found', 'conversation not found', 'conversation');
        const state = c.state === 'connected' ? 'connected' : 'disconnected';
        return send(200, {
          id: c.id,
          participants: [
            { id: randomUUID(), purpose: 'customer', state, ...(state === 'disconnected' ? { endTime: new Date().toISOString() } : {}) },
            { id: randomUUID(), purpose: 'agent', state },
          ],
        });
      }
      const disconnect = /^\/api\/v2\/conversations\/([^/]+)\/disconnect$/.exec(url.pathname);
      if (req.method === 'POST' && disconnect) {
        const c = fake.conversations.find((x) => x.id === decodeURIComponent(disconnect[1]!));
        if (!c) return error(404, 'not.found', 'conversation not found', 'conversation');
        c.state = 'disconnected';
        c.disconnectedBy ??= 'api';
        return send(202, {});
      }
      return error(404, 'not.found', 'The requested resource was not found.', `no route ${req.method} ${url.pathname}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = async () => {
    fake.down = true;
    await chain.catch(() => {});
    await closeServer(server);
  };
  return fake;
}
