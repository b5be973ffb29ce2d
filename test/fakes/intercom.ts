import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from '../support/ports.js';

/**
 * An Intercom workspace with one app, as its REST API (version 2.11) and its webhook subscription see
 * it. Written from Intercom's public references:
 * - the OpenAPI description of the REST API, `descriptions/2.11/api.intercom.io.yaml` in the
 *   intercom/Intercom-OpenAPI repository: `Authorization: Bearer`, errors as `{type: "error.list",
 *   errors: [{code, message}]}`; `POST /contacts` (`role`, `external_id`, `email`, `name`) and
 *   `POST /contacts/search` (`{query: {field, operator: "=", value}}` → `{type: "list", data}`);
 *   `POST /conversations` (`{from: {type: "user", id}, body}` → a `user_message` with its
 *   `conversation_id`; 404 `User Not Found` for an unknown contact); `POST /conversations/{id}/reply`
 *   (a contact's reply: `{message_type: "comment", type: "user", intercom_user_id, body,
 *   attachment_urls ≤ 10}`; an admin's: `{message_type: "comment" | "note", type: "admin", admin_id,
 *   body}`); `POST /conversations/{id}/parts` (`{message_type: "assignment", type: "admin" | "team",
 *   admin_id, assignee_id}`, `{message_type: "close", type: "admin", admin_id}`); `GET /admins`
 *   (`away_mode_enabled`, `has_inbox_seat`); `GET /teams/{id}` (`admin_ids`); the conversation model
 *   (`admin_assignee_id`, `team_assignee_id`, `state`, `conversation_parts` whose parts have `part_type`,
 *   `body` as HTML, `author {type, id, name, email}`, `assigned_to {type, id}`, `attachments`);
 * - the 409 `conflict` answer to creating a contact that exists ("A contact matching those details
 *   already exists with id=…"), documented in that repository's pull request #543;
 * - the webhook pages of developers.intercom.com (Webhooks, Setting up webhooks, Webhook models,
 *   Webhook notifications): a notification is `{type: "notification_event", app_id, data: {type:
 *   "notification_event_data", item}, id: "notif_…", topic, delivery_attempts, first_sent_at,
 *   created_at}` with the conversation as `item` and only the new parts in its `conversation_parts`;
 *   topics `conversation.user.created`, `conversation.user.replied`, `conversation.admin.replied`,
 *   `conversation.admin.noted`, `conversation.admin.assigned`, `conversation.admin.closed`; signed
 *   `X-Hub-Signature: sha1=<hex HMAC-SHA1 of the body under the app's client secret>`; the endpoint is
 *   checked with a HEAD request when it is saved.
 *
 * `GET /conversations/{id}` lists every part (the real one up to 500). `webhooksLost` plays an outage on
 * our side that outlasts Intercom's retries.
 *
 * The app's own writes come back as notifications, as on the real one. A redelivery (`resend`) is the
 * same notification id with `delivery_attempts` one higher, signed again. The test plays the admins:
 * replies, assignment, moving to another team, closing.
 */
export interface IntercomPart {
  id: string;
  part_type: string;
  body: string | null;
  author: { type: 'admin' | 'user' | 'bot'; id: string; name: string; email: string };
  assigned_to: { type: 'admin' | 'team'; id: string } | { type: 'nobody_admin'; id: null } | null;
  attachments: Array<{ type: 'upload'; name: string; url: string; content_type: string; filesize: number; width: number; height: number }>;
  created_at: number;
}

export interface IntercomConversation {
  id: string;
  contactId: string;
  state: 'open' | 'closed';
  adminAssigneeId: string | null;
  teamAssigneeId: string | null;
  source: { body: string };
  parts: IntercomPart[];
}

export interface IntercomAdmin {
  id: string;
  name: string;
  email: string;
  away_mode_enabled: boolean;
  has_inbox_seat: boolean;
}

export interface FakeIntercom {
  url: string;
  accessToken: string;
  clientSecret: string;
  /** The admin the connector acts as. */
  botAdminId: string;
  appId: string;
  webhookTarget: string;
  admins: IntercomAdmin[];
  teams: Map<string, { id: string; name: string; admin_ids: number[] }>;
  /** Users are unique by `external_id` and by `email`; an archived contact cannot be in a conversation. */
  contacts: Array<{ id: string; external_id: string | null; name: string | null; email: string | null; archived?: boolean }>;
  conversations: Map<string, IntercomConversation>;
  refused: Array<{ method: string; path: string; status: number; reason: string }>;
  down: boolean;
  /** Routes (e.g. `POST /conversations/:id/parts`) → how many next calls answer 500. */
  failNext: Map<string, number>;
  /** Routes → how many next calls are carried out and then answered 500 (the answer lost). */
  loseAnswerNext: Map<string, number>;
  deliveries: Array<{ notification: Record<string, any>; status: number }>;
  /** While true, notifications are sent and fail (we are unreachable), and are not sent again. */
  webhooksLost: boolean;
  /** The conversation whose note names this handover. */
  conversationForHandover(handoverId: string): IntercomConversation | undefined;
  agentReply(conversationId: string, text: string, admin?: IntercomAdmin, attachments?: IntercomPart['attachments']): Promise<{ status: number; body: any }>;
  assign(conversationId: string, admin: IntercomAdmin): Promise<{ status: number; body: any }>;
  moveToTeam(conversationId: string, teamId: string, by?: IntercomAdmin): Promise<{ status: number; body: any }>;
  /** An admin closes it, leaving `body` (HTML) in the conversation when given. */
  closeConversation(conversationId: string, by?: IntercomAdmin, body?: string): Promise<{ status: number; body: any }>;
  /** An admin unassigns it: the part names `{type: "nobody_admin", id: null}`. */
  unassign(conversationId: string, by?: IntercomAdmin): Promise<{ status: number; body: any }>;
  /** The conversation is deleted: the notification carries its id only. */
  deleteConversation(conversationId: string): Promise<{ status: number; body: any }>;
  /** Delivers a notification again, as Intercom retries it (same id, one more attempt, signed again). */
  resend(notification: Record<string, any>): Promise<{ status: number; body: any }>;
  /** Posts a body with these exact headers. */
  post(body: string, headers: Record<string, string>): Promise<{ status: number; body: any }>;
  sign(body: string, secret?: string): Record<string, string>;
  close(): Promise<void>;
}

const hexId = () => randomBytes(12).toString('hex');

export async function startFakeIntercom(): Promise<FakeIntercom> {
  let nextId = 1000;
  const numericId = () => String(nextId++);
  const now = () => Math.floor(Date.now() / 1000);
  let chain: Promise<unknown> = Promise.resolve();
  const fake: FakeIntercom = {
    url: '',
    accessToken: `dG9rOjEy-${randomUUID()}`,
    clientSecret: `cs-${randomUUID()}`,
    botAdminId: '7001',
    appId: `app${randomBytes(4).toString('hex')}`,
    webhookTarget: '',
    admins: [
      { id: '7001', name: 'Handover Bot', email: 'bot@acme.test', away_mode_enabled: false, has_inbox_seat: true },
      { id: '7002', name: 'Ada', email: 'ada@acme.test', away_mode_enabled: false, has_inbox_seat: true },
    ],
    teams: new Map([
      ['501', { id: '501', name: 'Support', admin_ids: [7002] }],
      ['502', { id: '502', name: 'Billing', admin_ids: [7002] }],
    ]),
    contacts: [],
    conversations: new Map(),
    refused: [],
    down: false,
    failNext: new Map(),
    loseAnswerNext: new Map(),
    deliveries: [],
    webhooksLost: false,
    conversationForHandover: (handoverId) =>
      [...fake.conversations.values()].find((c) => c.parts.some((p) => p.part_type === 'note' && (p.body ?? '').includes(handoverId))),
    agentReply(conversationId, text, admin = fake.admins[1]!, attachments = []) {
      const c = fake.conversations.get(conversationId)!;
      const part = addPart(c, { part_type: 'comment', body: `<p>${escapeHtml(text)}</p>`, author: adminAuthor(admin), attachments });
      return emit('conversation.admin.replied', c, [part]);
    },
    assign(conversationId, admin) {
      const c = fake.conversations.get(conversationId)!;
      c.adminAssigneeId = admin.id;
      const part = addPart(c, { part_type: 'assignment', body: null, author: adminAuthor(admin), assigned_to: { type: 'admin', id: admin.id } });
      return emit('conversation.admin.assigned', c, [part]);
    },
    moveToTeam(conversationId, teamId, by = fake.admins[1]!) {
      const c = fake.conversations.get(conversationId)!;
      c.teamAssigneeId = teamId;
      const part = addPart(c, { part_type: 'assignment', body: null, author: adminAuthor(by), assigned_to: { type: 'team', id: teamId } });
      return emit('conversation.admin.assigned', c, [part]);
    },
    closeConversation(conversationId, by = fake.admins[1]!, body) {
      const c = fake.conversations.get(conversationId)!;
      c.state = 'closed';
      const part = addPart(c, { part_type: 'close', body: body ?? null, author: adminAuthor(by) });
      return emit('conversation.admin.closed', c, [part]);
    },
    unassign(conversationId, by = fake.admins[1]!) {
      const c = fake.conversations.get(conversationId)!;
      c.adminAssigneeId = null;
      const part = addPart(c, { part_type: 'default_assignment', body: null, author: adminAuthor(by), assigned_to: { type: 'nobody_admin', id: null } });
      return emit('conversation.admin.assigned', c, [part]);
    },
    deleteConversation(conversationId) {
      const c = fake.conversations.get(conversationId)!;
      fake.conversations.delete(conversationId);
      return emit('conversation.deleted', c, [], { type: 'conversation', id: c.id, deleted: true });
    },
    resend(notification) {
      const again = { ...notification, delivery_attempts: Number(notification.delivery_attempts ?? 1) + 1 };
      const body = JSON.stringify(again);
      return fake.post(body, fake.sign(body));
    },
    async post(body, headers) {
      const res = await fetch(fake.webhookTarget, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'intercom-parrot-service-rack', ...headers },
        body,
        signal: AbortSignal.timeout(20_000),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
    sign: (body, secret = fake.clientSecret) => ({ 'x-hub-signature': `sha1=${createHmac('sha1', secret).update(body).digest('hex')}` }),
    close: async () => {},
  };

  function adminAuthor(admin: IntercomAdmin): IntercomPart['author'] {
    return { type: 'admin', id: admin.id, name: admin.name, email: admin.email };
  }
  function addPart(c: IntercomConversation, part: Partial<IntercomPart> & Pick<IntercomPart, 'part_type' | 'author'>): IntercomPart {
    const full: IntercomPart = { id: numericId(), body: null, assigned_to: null, attachments: [], created_at: now(), ...part };
    c.parts.push(full);
    return full;
  }
  function conversationJson(c: IntercomConversation, parts: IntercomPart[]) {
    const contact = fake.contacts.find((x) => x.id === c.contactId);
    return {
      type: 'conversation',
      id: c.id,
      created_at: now(),
      updated_at: now(),
      source: {
        type: 'conversation',
        id: `${c.id}0`,
        delivered_as: 'customer_initiated',
        subject: '',
        body: `<p>${escapeHtml(c.source.body)}</p>`,
        author: { type: 'user', id: c.contactId, name: contact?.name ?? null, email: contact?.email ?? '' },
        attachments: [],
        url: null,
        redacted: false,
      },
      contacts: { type: 'contact.list', contacts: [{ type: 'contact', id: c.contactId, external_id: contact?.external_id ?? null }] },
      admin_assignee_id: c.adminAssigneeId === null ? null : Number(c.adminAssigneeId),
      team_assignee_id: c.teamAssigneeId === null ? null : Number(c.teamAssigneeId),
      open: c.state === 'open',
      state: c.state,
      read: false,
      conversation_parts: {
        type: 'conversation_part.list',
        conversation_parts: parts.map((p) => ({
          type: 'conversation_part',
          ...p,
          updated_at: p.created_at,
          notified_at: p.created_at,
          external_id: null,
          redacted: false,
        })),
        total_count: parts.length,
      },
    };
  }

  /** One notification per call, in order; a failed one is not sent again unless the test resends it. */
  function emit(topic: string, c: IntercomConversation, parts: IntercomPart[], item?: unknown): Promise<{ status: number; body: any }> {
    const notification = {
      type: 'notification_event',
      app_id: fake.appId,
      data: { type: 'notification_event_data', item: item ?? conversationJson(c, parts) },
      links: {},
      id: `notif_${randomUUID()}`,
      topic,
      delivery_status: 'pending',
      delivery_attempts: 1,
      delivered_at: 0,
      first_sent_at: now(),
      created_at: now(),
      self: null,
    };
    const result = chain.then(async () => {
      const body = JSON.stringify(notification);
      const answer = fake.webhooksLost
        ? { status: 0, body: 'connection refused' }
        : await fake.post(body, fake.sign(body)).catch((err: unknown) => ({ status: 0, body: String(err) }));
      fake.deliveries.push({ notification, status: answer.status });
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
      const error = (status: number, code: string, message: string, reason = message) =>
        send(status, { type: 'error.list', request_id: randomUUID(), errors: [{ code, message }] }, reason);
      if (fake.down) return error(503, 'service_unavailable', 'Sorry, the API service is temporarily unavailable', 'down');
      if (req.headers.authorization !== `Bearer ${fake.accessToken}`) return error(401, 'unauthorized', 'Access Token Invalid');
      let body: any = null;
      try {
        const raw = Buffer.concat(chunks).toString('utf8');
        body = raw ? JSON.parse(raw) : null;
      } catch {
        return error(400, 'parameter_invalid', 'invalid JSON');
      }
      const url = new URL(req.url ?? '/', 'http://fake');
      const route = `${req.method} ${url.pathname.replace(/\/(\d+)(?=\/|$)/g, '/:id')}`;
      const pathId = /^\/(?:conversations|teams)\/(\d+)/.exec(url.pathname)?.[1];
      const failures = fake.failNext.get(route) ?? 0;
      if (failures > 0) {
        fake.failNext.set(route, failures - 1);
        return error(500, 'server_error', 'injected', 'injected');
      }
      const lose = fake.loseAnswerNext.get(route) ?? 0;
      const answer = (status: number, payload: unknown) => {
        if (lose > 0) {
          fake.loseAnswerNext.set(route, lose - 1);
          return error(500, 'server_error', 'answer lost (injected)', 'injected');
        }
        return send(status, payload);
      };
      const adminOk = (adminId: unknown) => typeof adminId === 'string' && fake.admins.some((a) => a.id === adminId);
      const conversation = pathId && route.startsWith(`${req.method} /conversations/:id`) ? fake.conversations.get(pathId) : undefined;
      if (route.startsWith(`${req.method} /conversations/:id`) && !conversation) return error(404, 'not_found', 'Resource Not Found', 'conversation');

      // A contact by its id (hex): shown, or unarchived.
      const contactPath = /^\/contacts\/([0-9a-f]{24})(\/unarchive)?$/.exec(url.pathname);
      if (contactPath) {
        const contact = fake.contacts.find((c) => c.id === contactPath[1]);
        if (!contact) return error(404, 'not_found', 'User Not Found', 'unknown contact');
        if (req.method === 'GET' && !contactPath[2]) return answer(200, { type: 'contact', role: 'user', ...contact, archived: contact.archived === true });
        if (req.method === 'POST' && contactPath[2]) {
          contact.archived = false;
          return answer(200, { type: 'contact', id: contact.id, archived: false });
        }
      }
      switch (route) {
        case 'POST /contacts': {
          if (body?.role !== 'user' || (typeof body.external_id !== 'string' && typeof body.email !== 'string'))
            return error(400, 'parameter_invalid', 'role user with an external_id or email is required');
          const existing = fake.contacts.find(
            (c) => (typeof body.external_id === 'string' && c.external_id === body.external_id) || (typeof body.email === 'string' && c.email === body.email),
          );
          if (existing)
            return error(
              409,
              'conflict',
              `A${existing.archived ? 'n archived' : ''} contact matching those details already exists with id=${existing.id}`,
              'contact exists',
            );
          const contact = { id: hexId(), external_id: body.external_id, name: body.name ?? null, email: body.email ?? null };
          fake.contacts.push(contact);
          return answer(200, {
            type: 'contact',
            id: contact.id,
            workspace_id: fake.appId,
            external_id: contact.external_id,
            role: 'user',
            email: contact.email,
            name: contact.name,
          });
        }
        case 'POST /contacts/search': {
          const q = body?.query;
          if (!q || typeof q.field !== 'string' || q.operator !== '=')
            return error(400, 'parameter_invalid', 'query with field, operator and value is required');
          const data = fake.contacts
            .filter((c) => (c as Record<string, unknown>)[q.field] === q.value)
            .map((c) => ({ type: 'contact', id: c.id, external_id: c.external_id, role: 'user', name: c.name, email: c.email }));
          return answer(200, { type: 'list', data, total_count: data.length, pages: { type: 'pages', page: 1, per_page: 50, total_pages: 1 } });
        }
        case 'POST /conversations': {
          if (body?.from?.type !== 'user' || typeof body.body !== 'string' || !body.body)
            return error(400, 'parameter_invalid', 'from {type, id} and body are required');
          const contact = fake.contacts.find((c) => c.id === body.from.id);
          if (!contact) return error(404, 'not_found', 'User Not Found', 'conversation for an unknown contact');
          if (contact.archived) return error(400, 'parameter_invalid', 'Contact is archived', 'conversation for an archived contact');
          const c: IntercomConversation = {
            id: numericId(),
            contactId: contact.id,
            state: 'open',
            adminAssigneeId: null,
            teamAssigneeId: null,
            source: { body: body.body },
            parts: [],
          };
          fake.conversations.set(c.id, c);
          void emit('conversation.user.created', c, []);
          return answer(200, { type: 'user_message', id: numericId(), created_at: now(), body: body.body, message_type: 'inapp', conversation_id: c.id });
        }
        case 'GET /conversations/:id':
          return answer(200, conversationJson(conversation!, conversation!.parts));
        case 'POST /conversations/:id/reply': {
          const c = conversation!;
          if (typeof body?.body !== 'string' || !body.body) return error(400, 'parameter_invalid', 'body is required');
          if (
            body.attachment_urls !== undefined &&
            (!Array.isArray(body.attachment_urls) ||
              body.attachment_urls.length > 10 ||
              body.attachment_urls.some((u: unknown) => typeof u !== 'string' || !/^https?:\/\//.test(u)))
          ) {
            return error(400, 'parameter_invalid', 'attachment_urls must be at most 10 URLs');
          }
          const attachments = (body.attachment_urls ?? []).map((u: string) => ({
            type: 'upload' as const,
            name: u.split('/').pop() ?? 'file',
            url: u,
            content_type: 'image/png',
            filesize: 1,
            width: 1,
            height: 1,
          }));
          if (body.type === 'user') {
            if (body.message_type !== 'comment') return error(400, 'parameter_invalid', 'message_type must be comment for a contact');
            if (body.intercom_user_id !== c.contactId) return error(400, 'parameter_invalid', 'intercom_user_id is not a contact of this conversation');
            const contact = fake.contacts.find((x) => x.id === c.contactId)!;
            const part = addPart(c, {
              part_type: 'comment',
              body: body.body,
              author: { type: 'user', id: contact.id, name: contact.name ?? '', email: contact.email ?? '' },
              attachments,
            });
            // A contact's reply opens a closed conversation again.
            if (c.state === 'closed') c.state = 'open';
            void emit('conversation.user.replied', c, [part]);
            return answer(200, conversationJson(c, [part]));
          }
          if (body.type === 'admin') {
            if (!adminOk(body.admin_id)) return error(400, 'parameter_invalid', 'admin_id is not an admin of this workspace');
            if (!['comment', 'note'].includes(body.message_type)) return error(400, 'parameter_invalid', 'message_type must be comment or note');
            const admin = fake.admins.find((a) => a.id === body.admin_id)!;
            const part = addPart(c, { part_type: body.message_type, body: body.body, author: adminAuthor(admin), attachments });
            void emit(body.message_type === 'note' ? 'conversation.admin.noted' : 'conversation.admin.replied', c, [part]);
            return answer(200, conversationJson(c, [part]));
          }
          return error(400, 'parameter_invalid', 'type must be user or admin');
        }
        case 'POST /conversations/:id/parts': {
          const c = conversation!;
          if (body?.type === undefined || !adminOk(body.admin_id)) return error(400, 'parameter_invalid', 'type and admin_id are required');
          const admin = fake.admins.find((a) => a.id === body.admin_id)!;
          if (body.message_type === 'close' && body.type === 'admin') {
            c.state = 'closed';
            const part = addPart(c, { part_type: 'close', body: body.body ?? null, author: adminAuthor(admin) });
            void emit('conversation.admin.closed', c, [part]);
            return answer(200, conversationJson(c, [part]));
          }
          if (body.message_type === 'assignment' && (body.type === 'admin' || body.type === 'team') && typeof body.assignee_id === 'string') {
            const known = body.type === 'team' ? fake.teams.has(body.assignee_id) : fake.admins.some((a) => a.id === body.assignee_id);
            if (!known && body.assignee_id !== '0') return error(404, 'not_found', `${body.type} not found`, 'unknown assignee');
            if (body.type === 'team') c.teamAssigneeId = body.assignee_id;
            else c.adminAssigneeId = body.assignee_id;
            const part = addPart(c, {
              part_type: 'assignment',
              body: body.body ?? null,
              author: adminAuthor(admin),
              assigned_to: { type: body.type, id: body.assignee_id },
            });
            void emit('conversation.admin.assigned', c, [part]);
            return answer(200, conversationJson(c, [part]));
          }
          return error(400, 'parameter_invalid', 'unsupported message_type or type');
        }
        // Identify an admin (the connector's setup check): the token's admin with its workspace.
        case 'GET /me': {
          const me = fake.admins.find((a) => a.id === fake.botAdminId)!;
          return answer(200, {
            type: 'admin',
            ...me,
            email_verified: true,
            app: { type: 'app', id_code: fake.appId, name: 'Acme', region: 'US', timezone: 'Europe/London', created_at: now(), identity_verification: false },
          });
        }
        case 'GET /admins':
          return answer(200, {
            type: 'admin.list',
            admins: fake.admins.map((a) => ({
              type: 'admin',
              ...a,
              job_title: '',
              team_ids: [...fake.teams.values()].filter((t) => t.admin_ids.includes(Number(a.id))).map((t) => Number(t.id)),
            })),
          });
        case 'GET /teams/:id': {
          const team = fake.teams.get(pathId!);
          return team ? answer(200, { type: 'team', ...team }) : error(404, 'team_not_found', 'Team not found', 'team');
        }
        default:
          return error(404, 'not_found', 'Resource Not Found', `no route ${route}`);
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

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
