import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from '../support/ports.js';

/**
 * A Chatwoot account with one API-channel inbox, as an agent bot and an account webhook see it, written
 * from Chatwoot's public API docs: `api_access_token` auth where contacts and the agents list take a
 * user's token only, contacts (422 on a taken identifier), conversations, messages (REST answers carry
 * `message_type` as an integer, webhooks as a string), status toggles, the agents list. Its webhook sends
 * one event per call, signed `X-Chatwoot-Signature: sha256=<hex HMAC of "{timestamp}.{body}">`, and is
 * never retried. It echoes our own messages and toggles back, and each status change fires
 * `conversation_status_changed` and `conversation_updated`, as the real one does. The test plays the
 * agents: replies, typing, assignment, team changes, resolving.
 *
 * Also as the real one: contacts are found by `GET …/contacts/search?q=` (a substring of name, email or
 * identifier, 15 a page) or exactly by `POST …/contacts/filter` (`equal_to` on `identifier` or `email`, 15 a page); emails are kept
 * in lower case and unique in an account (422 on a taken one);
 * `GET …/contacts/{id}` lists the contact's inboxes with their `source_id`; conversations are opened for
 * a `source_id` or a `contact_id`; `GET …/conversations/{id}/messages?after=` lists up to 100 messages
 * after an id, oldest first (`app/finders/message_finder.rb`); team members come from
 * `GET …/teams/{id}/team_members`. The public API of the API inbox
 * (`/public/api/v1/inboxes/{inbox identifier}/contacts/{source_id}/conversations/{id}/toggle_typing`)
 * shows the contact typing. `webhooksLost` plays an outage on our side: the account webhook is sent
 * once, fails, and is never sent again.
 *
 * The account's webhooks as the API lists and changes them (`app/views/api/v1/accounts/webhooks/`,
 * `swagger/paths/application/webhooks/`): `GET …/webhooks` → `{payload: {webhooks: [{id, name, url,
 * account_id, subscriptions}]}}`, `PATCH …/webhooks/{id}` `{url, subscriptions}` with the documented
 * event names; an administrator's token only; the secret is never shown. Ours calls the inbound URL.
 *
 * Messages with files: `POST …/conversations/{id}/messages` also takes `multipart/form-data` (the API
 * reference's "Create New Message": `content`, `message_type`, `private` and files as `attachments[]`;
 * content may then be empty), and messages list their files as `attachments` with `file_type` (image,
 * audio, video, file), `extension`, `data_url`, `thumb_url` and `file_size` (the attachment's
 * `push_event_data`), in answers and webhooks alike.
 */
export interface ChatwootMessage {
  id: number;
  content: string;
  message_type: 'incoming' | 'outgoing';
  private: boolean;
  sender: { id: number; name: string; type: 'contact' | 'user' | 'agent_bot' };
  /** Files of the message, as Chatwoot lists them (`file_type`, `data_url`, `file_size`), with what the fake received. */
  attachments?: Array<{
    id: number;
    message_id: number;
    file_type: string;
    extension: string | null;
    data_url: string;
    file_size: number;
    content_type: string;
    name: string;
    bytes: Buffer;
  }>;
}

export interface ChatwootConversation {
  id: number;
  contactId: number;
  status: 'pending' | 'open' | 'resolved';
  teamId: number | null;
  additionalAttributes: Record<string, any>;
  messages: ChatwootMessage[];
  /** Status changes asked through the API, in order. */
  toggles: string[];
}

export interface FakeChatwoot {
  url: string;
  accountId: number;
  inboxId: number;
  userToken: string;
  botToken: string;
  webhookSecret: string;
  webhookTarget: string;
  contacts: Array<{ id: number; identifier: string; name: string; email?: string; sourceId: string }>;
  /** The API inbox's identifier (public API). */
  inboxIdentifier: string;
  /** Team id → ids of its agents. */
  teams: Map<number, number[]>;
  /** Contact typing shown through the public API, per conversation. */
  contactTyping: Map<number, string[]>;
  /** While true, webhooks are sent and fail (we are unreachable): Chatwoot does not send them again. */
  webhooksLost: boolean;
  /** The account's webhooks; a `url` of null is the connector's inbound URL (`webhookTarget`). */
  accountWebhooks: Array<{ id: number; url: string | null; subscriptions: string[] }>;
  /** Webhook changes received (`PATCH …/webhooks/{id}`), in order. */
  webhookChanges: Array<Record<string, unknown>>;
  conversations: Map<number, ChatwootConversation>;
  agents: Array<{ id: number; name: string; availability_status: 'online' | 'busy' | 'offline' }>;
  refused: Array<{ method: string; path: string; status: number; reason: string }>;
  down: boolean;
  /** Routes (e.g. `POST /conversations/:id/toggle_status`) → how many next calls answer 500. */
  failNext: Map<string, number>;
  /**
   * Runs once a conversation is created, before the create call is answered: an automation (or a quick
   * agent) acting on it, with its webhooks, before the caller even knows the conversation's id.
   */
  onConversationCreated?: (conversation: ChatwootConversation) => Promise<unknown>;
  conversationForHandover(handoverId: string): ChatwootConversation | undefined;
  agentReply(conversationId: number, text: string, agent?: { id: number; name: string }): Promise<{ status: number; body: any }>;
  agentTyping(conversationId: number, typing: boolean): Promise<{ status: number; body: any }>;
  assign(conversationId: number, agent: { id: number; name: string }): Promise<{ status: number; body: any }>;
  changeTeam(conversationId: number, team: { id: number; name: string }): Promise<{ status: number; body: any }>;
  resolve(conversationId: number): Promise<{ status: number; body: any }>;
  /** Sends a webhook body with these exact headers again. */
  resend(delivery: { body: string; headers: Record<string, string> }): Promise<{ status: number; body: any }>;
  deliveries: Array<{ body: string; headers: Record<string, string>; status: number }>;
  /** Signs a body the way Chatwoot does (tests use it to forge with another secret). */
  sign(body: string, secret?: string): Record<string, string>;
  close(): Promise<void>;
}

export async function startFakeChatwoot(): Promise<FakeChatwoot> {
  let nextId = 100;
  let chain: Promise<unknown> = Promise.resolve();
  const fake: FakeChatwoot = {
    url: '',
    accountId: 3,
    inboxId: 7,
    userToken: `user-${randomUUID()}`,
    botToken: `bot-${randomUUID()}`,
    webhookSecret: `cw-${randomUUID()}`,
    webhookTarget: '',
    contacts: [],
    inboxIdentifier: `inbox-${randomUUID().slice(0, 8)}`,
    teams: new Map(),
    contactTyping: new Map(),
    webhooksLost: false,
    accountWebhooks: [
      {
        id: 1,
        url: null,
        subscriptions: ['message_created', 'conversation_status_changed', 'conversation_updated', 'conversation_typing_on', 'conversation_typing_off'],
      },
    ],
    webhookChanges: [],
    conversations: new Map(),
    agents: [{ id: 1, name: 'Cora', availability_status: 'online' }],
    refused: [],
    down: false,
    failNext: new Map(),
    deliveries: [],
    conversationForHandover: (handoverId) => [...fake.conversations.values()].find((c) => c.additionalAttributes.handover_id === handoverId),
    agentReply(conversationId, text, agent = { id: 1, name: 'Cora' }) {
      const c = fake.conversations.get(conversationId)!;
      const message: ChatwootMessage = {
        id: nextId++,
        content: text,
        message_type: 'outgoing',
        private: false,
        sender: { id: agent.id, name: agent.name, type: 'user' },
      };
      c.messages.push(message);
      return emit(messageWebhook(c, message));
    },
    agentTyping(conversationId, typing) {
      const c = fake.conversations.get(conversationId)!;
      return emit({
        event: typing ? 'conversation_typing_on' : 'conversation_typing_off',
        conversation: conversationJson(c),
        user: { id: 1, name: 'Cora', type: 'user' },
        is_private: false,
      });
    },
    assign(conversationId, agent) {
      const c = fake.conversations.get(conversationId)!;
      return emit({
        event: 'conversation_updated',
        ...conversationJson(c),
        changed_attributes: [{ assignee_id: { previous_value: null, current_value: agent.id } }],
        meta: { assignee: { id: agent.id, name: agent.name, type: 'user' }, team: null },
      });
    },
    changeTeam(conversationId, team) {
      const c = fake.conversations.get(conversationId)!;
      const previous = c.teamId;
      c.teamId = team.id;
      return emit({
        event: 'conversation_updated',
        ...conversationJson(c),
        changed_attributes: [{ team_id: { previous_value: previous, current_value: team.id } }],
        meta: { assignee: null, team: { id: team.id, name: team.name } },
      });
    },
    async resolve(conversationId) {
      const c = fake.conversations.get(conversationId)!;
      return setStatus(c, 'resolved');
    },
    resend: (delivery) => post(delivery.body, delivery.headers),
    sign(body, secret = fake.webhookSecret) {
      const timestamp = String(Math.floor(Date.now() / 1000));
      return {
        'x-chatwoot-signature': `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`,
        'x-chatwoot-timestamp': timestamp,
        'x-chatwoot-delivery': randomUUID(),
      };
    },
    close: async () => {},
  };

  function contactJson(c: FakeChatwoot['contacts'][number]) {
    return {
      id: c.id,
      name: c.name,
      identifier: c.identifier,
      email: c.email ?? null,
      contact_inboxes: [{ source_id: c.sourceId, inbox: { id: fake.inboxId, channel_type: 'Channel::Api' } }],
    };
  }
  /** Chatwoot's contact lists: 15 a page, `meta.count` the total. */
  function pageOf<T>(all: T[], page: number) {
    const size = 15;
    const start = (Math.max(1, page) - 1) * size;
    return {
      meta: { count: all.length, current_page: Math.max(1, page) },
      payload: all.slice(start, start + size).map((c) => contactJson(c as FakeChatwoot['contacts'][number])),
    };
  }
  /** `typing_status` from the query string, or else the body (Rails takes either). */
  function publicToggleTyping(match: RegExpExecArray, query: string | null, raw: string, send: (status: number, body: unknown, reason?: string) => void) {
    const [, inbox, sourceId, conversationId] = match;
    const contact = fake.contacts.find((c) => c.sourceId === decodeURIComponent(sourceId!));
    const c = fake.conversations.get(Number(conversationId));
    if (inbox !== fake.inboxIdentifier || !contact || !c || c.contactId !== contact.id)
      return send(404, { error: 'Resource could not be found' }, 'public typing: unknown inbox, contact or conversation');
    let status: unknown;
    try {
      status = query ?? JSON.parse(raw || '{}').typing_status;
    } catch {
      return send(400, { error: 'invalid JSON' }, 'invalid JSON');
    }
    if (status === 'on' || status === 'off') {
      fake.contactTyping.set(c.id, [...(fake.contactTyping.get(c.id) ?? []), status]);
      void emit({
        event: status === 'on' ? 'conversation_typing_on' : 'conversation_typing_off',
        conversation: conversationJson(c),
        user: { id: contact.id, name: contact.name, type: 'contact' },
        is_private: false,
      });
    }
    return send(200, {});
  }
  function conversationJson(c: ChatwootConversation) {
    return { id: c.id, account_id: fake.accountId, inbox_id: fake.inboxId, status: c.status, team_id: c.teamId, additional_attributes: c.additionalAttributes };
  }
  function messageWebhook(c: ChatwootConversation, m: ChatwootMessage) {
    return {
      event: 'message_created',
      id: m.id,
      content: m.content,
      message_type: m.message_type,
      private: m.private,
      sender: m.sender,
      attachments: attachmentsJson(m),
      conversation: conversationJson(c),
      account: { id: fake.accountId },
      inbox: { id: fake.inboxId },
    };
  }
  function setStatus(c: ChatwootConversation, status: ChatwootConversation['status']) {
    c.status = status;
    void emit({ event: 'conversation_updated', ...conversationJson(c), changed_attributes: [{ status: { previous_value: null, current_value: status } }] });
    return emit({ event: 'conversation_status_changed', ...conversationJson(c) });
  }

  async function post(body: string, headers: Record<string, string>): Promise<{ status: number; body: any }> {
    const res = await fetch(fake.webhookTarget, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      signal: AbortSignal.timeout(20_000),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  /** One webhook call per event, in order; no retry (Chatwoot logs a failed call and moves on). */
  function emit(event: Record<string, unknown>): Promise<{ status: number; body: any }> {
    const result = chain.then(async () => {
      const body = JSON.stringify(event);
      const headers = fake.sign(body);
      const answer = fake.webhooksLost
        ? { status: 0, body: 'connection refused' }
        : await post(body, headers).catch((err: unknown) => ({ status: 0, body: String(err) }));
      fake.deliveries.push({ body, headers, status: answer.status });
      return answer;
    });
    chain = result;
    return result;
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const send = (status: number, body: unknown, reason = '') => {
        if (status >= 400) fake.refused.push({ method: req.method ?? '', path: req.url ?? '', status, reason });
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (fake.down) return send(503, { error: 'Service Unavailable' }, 'down');
      const publicTyping = /^\/public\/api\/v1\/inboxes\/([^/]+)\/contacts\/([^/]+)\/conversations\/(\d+)\/toggle_typing$/.exec(
        new URL(req.url ?? '/', 'http://fake').pathname,
      );
      if (publicTyping && req.method === 'POST')
        return publicToggleTyping(
          publicTyping,
          new URL(req.url ?? '/', 'http://fake').searchParams.get('typing_status'),
          Buffer.concat(chunks).toString('utf8'),
          send,
        );
      const token = req.headers.api_access_token;
      const isUser = token === fake.userToken;
      const isBot = token === fake.botToken;
      if (!isUser && !isBot) return send(401, { error: 'You need to sign in or sign up before continuing.' }, 'no token');
      let body: any = null;
      const type = String(req.headers['content-type'] ?? '');
      if (type.startsWith('multipart/form-data')) {
        // A message with files: its fields, and each `attachments[]` file with its name, type and bytes.
        try {
          body = await formBody(Buffer.concat(chunks), type);
        } catch {
          return send(400, { error: 'invalid multipart body' }, 'invalid multipart');
        }
      } else {
        try {
          const raw = Buffer.concat(chunks).toString('utf8');
          body = raw ? JSON.parse(raw) : null;
        } catch {
          return send(400, { error: 'invalid JSON' }, 'invalid JSON');
        }
      }
      const url = new URL(req.url ?? '/', 'http://fake');
      const prefix = `/api/v1/accounts/${fake.accountId}`;
      if (!url.pathname.startsWith(prefix)) return send(404, { error: 'Resource could not be found' }, 'account');
      const path = url.pathname.slice(prefix.length);
      const route = `${req.method} ${path.replace(/\/\d+/g, '/:id')}`;
      const ids = [...path.matchAll(/\/(\d+)/g)].map((m) => Number(m[1]));
      const failures = fake.failNext.get(route) ?? 0;
      if (failures > 0) {
        fake.failNext.set(route, failures - 1);
        return send(500, { error: 'Internal Server Error (injected)' }, 'injected');
      }
      const userOnly = () => (isUser ? null : send(401, { error: 'Access to this endpoint is not authorized for bots' }, 'bot token on a user-only endpoint'));
      const conversation = route.startsWith('POST /conversations/:id') ? fake.conversations.get(ids[0]!) : undefined;
      if (route.startsWith('POST /conversations/:id') && !conversation) return send(404, { error: 'Resource could not be found' }, 'conversation');

      const webhookJson = (w: FakeChatwoot['accountWebhooks'][number]) => ({
        id: w.id,
        name: null,
        url: w.url ?? fake.webhookTarget,
        account_id: fake.accountId,
        subscriptions: w.subscriptions,
      });
      switch (route) {
        case 'GET /webhooks':
          if (userOnly()) return;
          return send(200, { payload: { webhooks: fake.accountWebhooks.map(webhookJson) } });
        case 'PATCH /webhooks/:id': {
          if (userOnly()) return;
          const webhook = fake.accountWebhooks.find((w) => w.id === ids[0]);
          if (!webhook) return send(404, { error: 'Resource could not be found' }, 'webhook');
          const known = [
            'conversation_created',
            'conversation_viewed',
            'conversation_status_changed',
            'conversation_updated',
            'message_created',
            'message_updated',
            'contact_created',
            'contact_updated',
            'webwidget_triggered',
            'conversation_typing_on',
            'conversation_typing_off',
          ];
          if (typeof body?.url !== 'string' || !Array.isArray(body.subscriptions) || body.subscriptions.some((s: unknown) => !known.includes(String(s))))
            return send(422, { message: 'Invalid webhook' }, 'webhook update');
          fake.webhookChanges.push(body);
          webhook.url = body.url === fake.webhookTarget ? null : body.url;
          webhook.subscriptions = body.subscriptions;
          return send(200, { payload: { webhook: webhookJson(webhook) } });
        }
        case 'POST /contacts': {
          if (userOnly()) return;
          if (body?.inbox_id !== fake.inboxId) return send(422, { message: 'Inbox not found' }, 'inbox');
          if (fake.contacts.some((c) => c.identifier === body.identifier))
            return send(422, { message: 'Identifier has already been taken', attributes: ['identifier'] }, 'identifier taken');
          // Emails are kept in lower case and are unique in an account.
          const email = typeof body.email === 'string' ? body.email.toLowerCase() : undefined;
          if (email && fake.contacts.some((c) => c.email === email))
            return send(422, { message: 'Email has already been taken', attributes: ['email'] }, 'email taken');
          const contact = { id: nextId++, identifier: body.identifier, name: body.name, ...(email ? { email } : {}), sourceId: randomUUID() };
          fake.contacts.push(contact);
          return send(200, { payload: { contact: contactJson(contact), contact_inbox: { inbox: { id: fake.inboxId }, source_id: contact.sourceId } } });
        }
        case 'GET /contacts/search': {
          if (userOnly()) return;
          const q = (url.searchParams.get('q') ?? '').toLowerCase();
          const found = fake.contacts.filter((c) => [c.name, c.email ?? '', c.identifier].some((v) => v.toLowerCase().includes(q)));
          return send(200, pageOf(found, Number(url.searchParams.get('page') ?? 1)));
        }
        case 'POST /contacts/filter': {
          if (userOnly()) return;
          const condition = body?.payload?.[0];
          const attribute = condition?.attribute_key;
          if ((attribute !== 'identifier' && attribute !== 'email') || condition?.filter_operator !== 'equal_to' || !Array.isArray(condition.values))
            return send(422, { message: 'unsupported filter' }, 'filter');
          const values = (condition.values as string[]).map((v) => (attribute === 'email' ? String(v).toLowerCase() : v));
          const found = fake.contacts.filter((c) => values.includes(attribute === 'email' ? (c.email ?? '') : c.identifier));
          return send(200, pageOf(found, Number(url.searchParams.get('page') ?? 1)));
        }
        case 'GET /contacts/:id': {
          if (userOnly()) return;
          const contact = fake.contacts.find((c) => c.id === ids[0]);
          return contact ? send(200, { payload: contactJson(contact) }) : send(404, { error: 'Resource could not be found' }, 'contact');
        }
        case 'GET /conversations/:id': {
          if (userOnly()) return;
          const c = fake.conversations.get(ids[0]!);
          return c
            ? send(200, { ...conversationJson(c), meta: { sender: { id: c.contactId, type: 'contact' } } })
            : send(404, { error: 'Resource could not be found' }, 'conversation');
        }
        case 'GET /conversations/:id/messages': {
          if (userOnly()) return;
          const c = fake.conversations.get(ids[0]!);
          if (!c) return send(404, { error: 'Resource could not be found' }, 'conversation');
          const after = Number(url.searchParams.get('after') ?? 0);
          const page = c.messages.filter((m) => m.id > after).slice(0, 100);
          return send(200, {
            meta: { contact_id: c.contactId },
            payload: page.map((m) => ({
              id: m.id,
              content: m.content,
              conversation_id: c.id,
              message_type: m.message_type === 'incoming' ? 0 : 1,
              private: m.private,
              sender: m.sender,
              attachments: attachmentsJson(m),
            })),
          });
        }
        case 'GET /teams/:id/team_members': {
          if (userOnly()) return;
          const members = fake.teams.get(ids[0]!) ?? [];
          return send(
            200,
            fake.agents.filter((a) => members.includes(a.id)).map((a) => ({ ...a, role: 'agent', confirmed: true })),
          );
        }
        case 'GET /contacts/:id/conversations': {
          if (userOnly()) return;
          return send(200, { payload: [...fake.conversations.values()].filter((c) => c.contactId === ids[0]).map((c) => ({ ...conversationJson(c) })) });
        }
        case 'POST /conversations': {
          const contact = fake.contacts.find((c) => (body?.source_id ? c.sourceId === body.source_id : c.id === body?.contact_id));
          if (!contact || body?.inbox_id !== fake.inboxId)
            return send(422, { message: 'contact_id and inbox_id are required' }, 'conversation needs a contact');
          const created: ChatwootConversation = {
            id: nextId++,
            contactId: contact.id,
            status: body.status ?? 'open',
            teamId: body.team_id ?? null,
            additionalAttributes: body.additional_attributes ?? {},
            messages: [],
            toggles: [],
          };
          fake.conversations.set(created.id, created);
          await fake.onConversationCreated?.(created);
          return send(200, conversationJson(created));
        }
        case 'POST /conversations/:id/messages': {
          const files: FormFile[] = body?.attachments ?? [];
          if ((typeof body?.content !== 'string' || body.content.length === 0) && files.length === 0)
            return send(422, { message: 'content is required' }, 'content');
          if (!['incoming', 'outgoing'].includes(body.message_type)) return send(422, { message: 'message_type' }, 'message_type');
          const c = conversation!;
          const id = nextId++;
          const message: ChatwootMessage = {
            id,
            content: body.content ?? '',
            message_type: body.message_type,
            private: Boolean(body.private),
            sender:
              body.message_type === 'incoming' ? { id: c.contactId, name: 'contact', type: 'contact' } : { id: 900, name: 'handover bot', type: 'agent_bot' },
            attachments: files.map((f, i) => ({
              id: id * 100 + i,
              message_id: id,
              file_type: fileType(f.type),
              extension: f.name.includes('.') ? f.name.split('.').pop()! : null,
              data_url: `${fake.url}/rails/active_storage/blobs/${id}-${i}/${encodeURIComponent(f.name)}`,
              file_size: f.bytes.length,
              content_type: f.type,
              name: f.name,
              bytes: f.bytes,
            })),
          };
          c.messages.push(message);
          void emit(messageWebhook(c, message));
          // An incoming message on a resolved conversation opens it again.
          if (message.message_type === 'incoming' && c.status === 'resolved') void setStatus(c, 'open');
          return send(200, { ...message, message_type: message.message_type === 'incoming' ? 0 : 1, conversation_id: c.id });
        }
        case 'POST /conversations/:id/toggle_status': {
          if (!['open', 'resolved', 'pending', 'snoozed'].includes(body?.status)) return send(422, { message: 'status' }, 'status');
          const c = conversation!;
          c.toggles.push(body.status);
          void setStatus(c, body.status);
          return send(200, { meta: {}, payload: { success: true, current_status: body.status, conversation_id: c.id } });
        }
        // Get an inbox (the connector's setup check): users only; an id outside the account is 404.
        case 'GET /inboxes/:id':
          if (userOnly()) return;
          if (ids[0] !== fake.inboxId) return send(404, { error: 'Resource could not be found' }, 'inbox');
          return send(200, {
            id: fake.inboxId,
            name: 'Bot handover',
            channel_type: 'Channel::Api',
            greeting_enabled: false,
            enable_auto_assignment: true,
            working_hours_enabled: false,
          });
        case 'GET /agents':
          if (userOnly()) return;
          return send(
            200,
            fake.agents.map((a) => ({ ...a, role: 'agent', confirmed: true })),
          );
        default:
          return send(404, { error: 'Resource could not be found' }, `no route ${route}`);
      }
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

interface FormFile {
  name: string;
  type: string;
  bytes: Buffer;
}

/** A multipart body's fields, with its `attachments[]` files (as Rails reads `attachments[]`). */
async function formBody(raw: Buffer, contentType: string): Promise<Record<string, unknown>> {
  const form = await new Request('http://fake/', { method: 'POST', headers: { 'content-type': contentType }, body: raw }).formData();
  const body: Record<string, unknown> = {};
  const attachments: FormFile[] = [];
  for (const [key, value] of form.entries()) {
    if (typeof value === 'string') body[key] = key === 'private' ? value === 'true' : value;
    else if (key === 'attachments[]') attachments.push({ name: value.name, type: value.type, bytes: Buffer.from(await value.arrayBuffer()) });
  }
  body.attachments = attachments;
  return body;
}

/** A message's attachments as Chatwoot's answers and webhooks list them. */
function attachmentsJson(m: ChatwootMessage) {
  return (m.attachments ?? []).map(({ id, message_id, file_type, extension, data_url, file_size }) => ({
    id,
    message_id,
    file_type,
    extension,
    data_url,
    thumb_url: file_type === 'image' ? data_url : '',
    file_size,
  }));
}

/** Chatwoot's `file_type` of an attachment from its content type. */
function fileType(type: string): string {
  if (type.startsWith('image/')) return 'image';
  if (type.startsWith('audio/')) return 'audio';
  if (type.startsWith('video/')) return 'video';
  return 'file';
}
