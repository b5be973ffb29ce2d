import { generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from '../support/ports.js';

/**
 * A Freshchat account with one topic (channel), as its REST API (v2) and its webhook see it. Written
 * from Freshchat's public references:
 * - "Freshchat Webhooks - Payload structure and authentication" (Freshworks support article
 *   50000004461, also support.freshchat.com article 239404): headers `X-Freshchat-Signature`,
 *   `X-Retry-Count`, `X-Freshchat-Payload-Version`; the events `message_create`,
 *   `conversation_assignment`, `conversation_resolution`, `conversation_reopen` as
 *   `{actor: {actor_type, actor_id}, action, action_time, data: {message | assignment | resolve | reopen}}`;
 *   `actor_type` user, agent or system; `message_type` normal or private; a message with `id`,
 *   `conversation_id`, `message_parts` (`{text: {content}}`), `actor_type`, `actor_id`, `user_id`; an
 *   assignment with `assignor`, `assignor_id`, `to_agent_id`, `to_group_id`, `from_agent_id`,
 *   `from_group_id` and the conversation (`conversation_id`, `status`, `assigned_group_id`); no event
 *   id. The signature is an RSA signature (SHA-256) of the body, base64, checked with the public key the
 *   webhook settings page shows;
 * - the REST API reference at developers.freshchat.com/api (as its anchors are cited by public
 *   integrations): `Authorization: Bearer <API token>` on the account's `…/v2` URL; users
 *   (`GET /users?reference_id=`, `POST /users` with `reference_id`, `first_name`, `email`);
 *   `POST /conversations` (`app_id`, `channel_id`, `users: [{id}]`, `messages` — a conversation is
 *   opened with its first messages — answered with its `conversation_id`); `POST
 *   /conversations/{id}/messages` (`message_parts`, `message_type`, `actor_type`, `actor_id`,
 *   `user_id`); `PUT /conversations/{id}` (`status` new | assigned | resolved | reopened,
 *   `assigned_group_id`, `assigned_agent_id`, which `assigned` needs); image parts `{image: {url}}` and
 *   file parts `{file: {url, name, content_type}}`; agents (`GET /agents`, "List all agents") filtered
 *   by the query parameters `availability_status` (AVAILABLE | UNAVAILABLE), `is_deactivated` and
 *   `groups` (a group id), paged with `page` and `items_per_page` and answered as `{agents,
 *   pagination: {total_items, total_pages, current_page, items_per_page}, links}`; an agent carries
 *   `availability_status`, `is_deactivated` and the ids of its `groups`.
 *
 * The account's own writes come back as webhooks, as on the real one (API calls act as the agent who
 * owns the token). A redelivery (`resend`) is the same body, signed the same, with `X-Retry-Count` one
 * higher. The test plays the agents: messages, assignment, moving to another group, resolving.
 */
export interface FreshchatMessage {
  id: string;
  conversation_id: string;
  actor_type: 'user' | 'agent' | 'system';
  actor_id: string;
  message_type: 'normal' | 'private';
  message_parts: Array<Record<string, any>>;
  user_id: string;
  created_time: string;
}

export interface FreshchatConversation {
  id: string;
  userId: string;
  status: 'new' | 'assigned' | 'resolved' | 'reopened';
  assignedAgentId: string | null;
  assignedGroupId: string | null;
  messages: FreshchatMessage[];
  /** Changes asked through the API (`PUT /conversations/{id}`), in order. */
  updates: Array<Record<string, unknown>>;
}

export interface FreshchatAgent {
  id: string;
  first_name: string;
  email: string;
  /** AVAILABLE or UNAVAILABLE, as the agent set it in Freshchat; absent counts as UNAVAILABLE. */
  availability_status?: 'AVAILABLE' | 'UNAVAILABLE';
  is_deactivated?: boolean;
  /** Ids of the groups the agent belongs to. */
  groups?: string[];
}

export interface FakeFreshchat {
  /** The account's API URL, ending in `/v2`. */
  url: string;
  apiToken: string;
  appId: string;
  channelId: string;
  /** The agent who owns the API token (and writes the connector's notes). */
  botAgentId: string;
  publicKeyPem: string;
  privateKey: KeyObject;
  webhookTarget: string;
  agents: FreshchatAgent[];
  groups: Map<string, { id: string; name: string }>;
  users: Array<{ id: string; reference_id: string; first_name: string; email: string | null }>;
  conversations: Map<string, FreshchatConversation>;
  refused: Array<{ method: string; path: string; status: number; reason: string }>;
  down: boolean;
  /** Routes (e.g. `PUT /conversations/:id`) → how many next calls answer 500. */
  failNext: Map<string, number>;
  deliveries: Array<{ body: string; headers: Record<string, string>; status: number }>;
  conversationForHandover(handoverId: string): FreshchatConversation | undefined;
  agentReply(conversationId: string, text: string, agent?: FreshchatAgent, extraParts?: Array<Record<string, any>>): Promise<{ status: number; body: any }>;
  assign(conversationId: string, agent: FreshchatAgent): Promise<{ status: number; body: any }>;
  moveToGroup(conversationId: string, groupId: string, by?: FreshchatAgent): Promise<{ status: number; body: any }>;
  resolve(conversationId: string, by?: FreshchatAgent): Promise<{ status: number; body: any }>;
  /** Delivers a webhook again, as Freshchat retries it (same body and signature, `X-Retry-Count` one higher). */
  resend(delivery: { body: string; headers: Record<string, string> }): Promise<{ status: number; body: any }>;
  post(body: string, headers: Record<string, string>): Promise<{ status: number; body: any }>;
  /** Signs a body the way Freshchat does (with another key to forge). */
  sign(body: string, key?: KeyObject): Record<string, string>;
  close(): Promise<void>;
}

export async function startFakeFreshchat(): Promise<FakeFreshchat> {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const iso = () => new Date().toISOString();
  let chain: Promise<unknown> = Promise.resolve();
  const bot: FreshchatAgent = {
    id: randomUUID(),
    first_name: 'Handover Bot',
    email: 'bot@acme.test',
    availability_status: 'AVAILABLE',
    is_deactivated: false,
    groups: ['grp-support'],
  };
  const ada: FreshchatAgent = {
    id: randomUUID(),
    first_name: 'Ada',
    email: 'ada@acme.test',
    availability_status: 'AVAILABLE',
    is_deactivated: false,
    groups: ['grp-support', 'grp-billing'],
  };
  const fake: FakeFreshchat = {
    url: '',
    apiToken: `eyJ${randomUUID().replace(/-/g, '')}`,
    appId: randomUUID(),
    channelId: randomUUID(),
    botAgentId: bot.id,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKey,
    webhookTarget: '',
    agents: [bot, ada],
    groups: new Map([
      ['grp-support', { id: 'grp-support', name: 'Support' }],
      ['grp-billing', { id: 'grp-billing', name: 'Billing' }],
    ]),
    users: [],
    conversations: new Map(),
    refused: [],
    down: false,
    failNext: new Map(),
    deliveries: [],
    conversationForHandover: (handoverId) =>
      [...fake.conversations.values()].find((c) =>
        c.messages.some((m) => m.message_type === 'private' && m.message_parts.some((p) => String(p.text?.content ?? '').includes(handoverId))),
      ),
    agentReply(conversationId, text, agent = ada, extraParts = []) {
      const c = fake.conversations.get(conversationId)!;
      const message = addMessage(c, {
        actor_type: 'agent',
        actor_id: agent.id,
        message_type: 'normal',
        message_parts: [{ text: { content: text } }, ...extraParts],
      });
      return emit({
        actor: { actor_type: 'agent', actor_id: agent.id },
        action: 'message_create',
        action_time: iso(),
        data: { message: messageJson(message) },
      });
    },
    assign(conversationId, agent) {
      const c = fake.conversations.get(conversationId)!;
      return assignment(c, { agentId: agent.id }, agent.id);
    },
    moveToGroup(conversationId, groupId, by = ada) {
      const c = fake.conversations.get(conversationId)!;
      return assignment(c, { groupId }, by.id);
    },
    resolve(conversationId, by = ada) {
      const c = fake.conversations.get(conversationId)!;
      return resolution(c, by.id);
    },
    resend(delivery) {
      return fake.post(delivery.body, { ...delivery.headers, 'x-retry-count': String(Number(delivery.headers['x-retry-count'] ?? 0) + 1) });
    },
    async post(body, headers) {
      const res = await fetch(fake.webhookTarget, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
        signal: AbortSignal.timeout(20_000),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
    sign: (body, key = privateKey) => ({
      'x-freshchat-signature': sign('sha256', Buffer.from(body), key).toString('base64'),
      'x-retry-count': '0',
      'x-freshchat-payload-version': '1.0',
    }),
    close: async () => {},
  };

  function addMessage(c: FreshchatConversation, m: Omit<FreshchatMessage, 'id' | 'conversation_id' | 'user_id' | 'created_time'>): FreshchatMessage {
    const message: FreshchatMessage = { id: randomUUID(), conversation_id: c.id, user_id: c.userId, created_time: iso(), ...m };
    c.messages.push(message);
    return message;
  }
  function messageJson(m: FreshchatMessage) {
    return {
      message_parts: m.message_parts,
      app_id: fake.appId,
      actor_id: m.actor_id,
      id: m.id,
      channel_id: fake.channelId,
      conversation_id: m.conversation_id,
      interaction_id: `${Date.now()}`,
      message_type: m.message_type,
      actor_type: m.actor_type,
      created_time: m.created_time,
      user_id: m.user_id,
    };
  }
  function conversationRef(c: FreshchatConversation) {
    return {
      conversation_id: c.id,
      app_id: fake.appId,
      status: c.status,
      channel_id: fake.channelId,
      ...(c.assignedAgentId ? { assigned_agent_id: c.assignedAgentId } : {}),
      ...(c.assignedGroupId ? { assigned_group_id: c.assignedGroupId } : {}),
    };
  }
  function conversationJson(c: FreshchatConversation) {
    return {
      conversation_id: c.id,
      app_id: fake.appId,
      channel_id: fake.channelId,
      status: c.status,
      assigned_agent_id: c.assignedAgentId,
      assigned_group_id: c.assignedGroupId,
      users: [{ id: c.userId }],
    };
  }
  function assignment(c: FreshchatConversation, to: { agentId?: string; groupId?: string }, by: string) {
    const from = { agent: c.assignedAgentId, group: c.assignedGroupId };
    if (to.agentId !== undefined) {
      c.assignedAgentId = to.agentId;
      c.status = 'assigned';
    }
    if (to.groupId !== undefined) c.assignedGroupId = to.groupId;
    return emit({
      actor: { actor_type: 'agent', actor_id: by },
      action: 'conversation_assignment',
      action_time: iso(),
      data: {
        assignment: {
          assignor: 'agent',
          assignor_id: by,
          to_agent_id: c.assignedAgentId ?? '',
          to_group_id: c.assignedGroupId ?? '',
          from_agent_id: from.agent ?? '',
          from_group_id: from.group ?? '',
          conversation: conversationRef(c),
        },
      },
    });
  }
  function resolution(c: FreshchatConversation, by: string) {
    c.status = 'resolved';
    return emit({
      actor: { actor_type: 'agent', actor_id: by },
      action: 'conversation_resolution',
      action_time: iso(),
      data: { resolve: { resolver: 'agent', resolver_id: by, conversation: conversationRef(c) } },
    });
  }

  /** One webhook call per event, in order; a failed one is not sent again unless the test resends it. */
  function emit(event: Record<string, unknown>): Promise<{ status: number; body: any }> {
    const result = chain.then(async () => {
      const body = JSON.stringify(event);
      const headers = fake.sign(body);
      const answer = await fake.post(body, headers).catch((err: unknown) => ({ status: 0, body: String(err) }));
      fake.deliveries.push({ body, headers, status: answer.status });
      return answer;
    });
    chain = result;
    return result;
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, body: unknown, reason = '') => {
        if (status >= 400) fake.refused.push({ method: req.method ?? '', path: req.url ?? '', status, reason });
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      const error = (status: number, code: string, message: string, reason = message) => send(status, { code: status, status: code, message }, reason);
      if (fake.down) return error(503, 'SERVICE_UNAVAILABLE', 'Service Unavailable', 'down');
      if (req.headers.authorization !== `Bearer ${fake.apiToken}`) return error(401, 'UNAUTHORIZED', 'Invalid or missing token');
      let body: any = null;
      try {
        const raw = Buffer.concat(chunks).toString('utf8');
        body = raw ? JSON.parse(raw) : null;
      } catch {
        return error(400, 'INVALID_VALUE', 'invalid JSON');
      }
      const url = new URL(req.url ?? '/', 'http://fake');
      if (!url.pathname.startsWith('/v2/')) return error(404, 'NOT_FOUND', 'not found', 'no /v2');
      const path = url.pathname.slice(3);
      const conversationId = /^\/conversations\/([^/]+)/.exec(path)?.[1];
      const route = `${req.method} ${path.replace(/^\/conversations\/[^/]+/, '/conversations/:id')}`;
      const failures = fake.failNext.get(route) ?? 0;
      if (failures > 0) {
        fake.failNext.set(route, failures - 1);
        return error(500, 'INTERNAL_SERVER_ERROR', 'injected', 'injected');
      }
      const c = conversationId ? fake.conversations.get(decodeURIComponent(conversationId)) : undefined;
      if (conversationId && !c) return error(404, 'NOT_FOUND', 'Conversation not found', 'conversation');
      const validParts = (parts: unknown) =>
        Array.isArray(parts) &&
        parts.length > 0 &&
        parts.every(
          (p) => (typeof p?.text?.content === 'string' && p.text.content.length > 0) || typeof p?.image?.url === 'string' || typeof p?.file?.url === 'string',
        );

      switch (route) {
        // List agents (the setup check, availability), filtered and paged as the reference says.
        case 'GET /agents': {
          const perPage = Math.min(100, Math.max(1, Number(url.searchParams.get('items_per_page') ?? 10) || 10));
          const page = Math.max(1, Number(url.searchParams.get('page') ?? 1) || 1);
          const status = url.searchParams.get('availability_status');
          const deactivated = url.searchParams.get('is_deactivated');
          const group = url.searchParams.get('groups');
          if (status !== null && status !== 'AVAILABLE' && status !== 'UNAVAILABLE')
            return error(400, 'INVALID_VALUE', 'availability_status must be AVAILABLE or UNAVAILABLE', 'availability_status');
          const matching = fake.agents.filter(
            (a) =>
              (status === null || (a.availability_status ?? 'UNAVAILABLE') === status) &&
              (deactivated === null || String(a.is_deactivated ?? false) === deactivated) &&
              (group === null || (a.groups ?? []).includes(group)),
          );
          const agents = matching.slice((page - 1) * perPage, page * perPage);
          return send(200, {
            agents,
            pagination: {
              total_items: matching.length,
              total_pages: Math.max(1, Math.ceil(matching.length / perPage)),
              current_page: page,
              items_per_page: perPage,
            },
            links: {},
          });
        }
        case 'GET /users': {
          const ref = url.searchParams.get('reference_id');
          const users = fake.users.filter((u) => ref === null || u.reference_id === ref);
          return send(200, { users, pagination: { total_items: users.length, total_pages: 1, current_page: 1, items_per_page: 10 }, links: {} });
        }
        case 'POST /users': {
          if (typeof body?.reference_id !== 'string' || !body.reference_id) return error(400, 'INVALID_VALUE', 'reference_id is required here');
          if (fake.users.some((u) => u.reference_id === body.reference_id))
            return error(409, 'CONFLICT', 'user with reference_id already exists', 'user exists');
          const user = { id: randomUUID(), reference_id: body.reference_id, first_name: body.first_name ?? '', email: body.email ?? null };
          fake.users.push(user);
          return send(200, { ...user, created_time: iso(), updated_time: iso() });
        }
        case 'POST /conversations': {
          if (body?.app_id !== fake.appId) return error(400, 'INVALID_VALUE', 'app_id is invalid', 'app_id');
          if (body?.channel_id !== fake.channelId) return error(400, 'INVALID_VALUE', 'channel_id is invalid', 'channel_id');
          const user = fake.users.find((u) => u.id === body?.users?.[0]?.id);
          if (!user) return error(400, 'INVALID_VALUE', 'users[0].id is not a user', 'user');
          if (
            !Array.isArray(body.messages) ||
            body.messages.length === 0 ||
            !body.messages.every((m: any) => validParts(m?.message_parts) && m.actor_type === 'user' && m.actor_id === user.id)
          ) {
            return error(400, 'INVALID_VALUE', "messages must be the user's, with message_parts", 'messages');
          }
          const created: FreshchatConversation = {
            id: randomUUID(),
            userId: user.id,
            status: 'new',
            assignedAgentId: null,
            assignedGroupId: null,
            messages: [],
            updates: [],
          };
          fake.conversations.set(created.id, created);
          for (const m of body.messages) {
            const message = addMessage(created, { actor_type: 'user', actor_id: user.id, message_type: 'normal', message_parts: m.message_parts });
            void emit({
              actor: { actor_type: 'user', actor_id: user.id },
              action: 'message_create',
              action_time: iso(),
              data: { message: messageJson(message) },
            });
          }
          return send(200, conversationJson(created));
        }
        case 'GET /conversations/:id':
          return send(200, conversationJson(c!));
        case 'POST /conversations/:id/messages': {
          if (!validParts(body?.message_parts)) return error(400, 'INVALID_VALUE', 'message_parts is required', 'message_parts');
          if (!['normal', 'private'].includes(body.message_type ?? 'normal')) return error(400, 'INVALID_VALUE', 'message_type', 'message_type');
          const asUser = body.actor_type === 'user';
          if (asUser ? body.actor_id !== c!.userId : !(body.actor_type === 'agent' && fake.agents.some((a) => a.id === body.actor_id)))
            return error(400, 'INVALID_VALUE', 'actor_id is not a member of the conversation', 'actor');
          if (asUser && body.message_type === 'private') return error(400, 'INVALID_VALUE', 'a user cannot write a private message', 'private user message');
          const message = addMessage(c!, {
            actor_type: body.actor_type,
            actor_id: body.actor_id,
            message_type: body.message_type ?? 'normal',
            message_parts: body.message_parts,
          });
          void emit({
            actor: { actor_type: body.actor_type, actor_id: body.actor_id },
            action: 'message_create',
            action_time: iso(),
            data: { message: messageJson(message) },
          });
          if (asUser && c!.status === 'resolved') {
            c!.status = 'reopened';
            void emit({
              actor: { actor_type: 'user', actor_id: c!.userId },
              action: 'conversation_reopen',
              action_time: iso(),
              data: { reopen: { reopener: 'user', reopener_id: c!.userId, conversation: conversationRef(c!) } },
            });
          }
          return send(200, messageJson(message));
        }
        case 'PUT /conversations/:id': {
          const statuses = ['new', 'assigned', 'resolved', 'reopened'];
          if (body?.status !== undefined && !statuses.includes(body.status)) return error(400, 'INVALID_VALUE', 'status', 'status');
          if (body?.status === 'assigned' && !body.assigned_agent_id)
            return error(400, 'INVALID_VALUE', 'assigned_agent_id is required for status assigned', 'assigned without agent');
          if (body?.assigned_group_id !== undefined && !fake.groups.has(body.assigned_group_id))
            return error(400, 'INVALID_VALUE', 'assigned_group_id is not a group', 'group');
          if (body?.assigned_agent_id !== undefined && !fake.agents.some((a) => a.id === body.assigned_agent_id))
            return error(400, 'INVALID_VALUE', 'assigned_agent_id is not an agent', 'agent');
          c!.updates.push(body ?? {});
          if (body?.assigned_group_id !== undefined || body?.assigned_agent_id !== undefined) {
            void assignment(
              c!,
              {
                ...(body.assigned_agent_id !== undefined ? { agentId: body.assigned_agent_id } : {}),
                ...(body.assigned_group_id !== undefined ? { groupId: body.assigned_group_id } : {}),
              },
              fake.botAgentId,
            );
          }
          if (body?.status === 'resolved') void resolution(c!, fake.botAgentId);
          else if (body?.status !== undefined) c!.status = body.status;
          return send(200, conversationJson(c!));
        }
        default:
          return error(404, 'NOT_FOUND', 'not found', `no route ${route}`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2`;
  fake.close = async () => {
    fake.down = true;
    await chain.catch(() => {});
    await closeServer(server);
  };
  return fake;
}
