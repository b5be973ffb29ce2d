import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from '../support/ports.js';

/**
 * A Sunshine Conversations (Zendesk) app, as far as a switchboard integration sees it, written from the
 * public v2 API reference: Basic auth with an app key, users (409 on a taken externalId), personal
 * conversations, messages, participants, passControl (flat metadata of at most 4 KB), activity (the
 * user side may only send `conversation:read`). Its webhook calls us with the static `X-API-Key`,
 * batching the events that are waiting, and sends a batch again (same event ids) after a non-2xx
 * answer, up to 5 tries. It echoes our own actions back, as the real one does. The test plays the
 * agent workspace: its agents post `business` messages, close tickets or move them to email (control
 * passes back to the bot integration with reason `ticketClosed` or `transferToEmail`, the two values of
 * the spec's `switchboardPassControl.payload.reason`).
 *
 * The app's switchboard holds three switchboard integrations: ours (`handover`, the default), the
 * answer bot (`zd-answerBot`, type `zd:answerBot`) and the agent workspace (`zd-agentWorkspace`, type
 * `zd:agentWorkspace`). passControl takes an integration's id, name or integration type, or `next`:
 * the integration the switchboard orders after ours (`botNext`), which need not be the agents.
 * Messages are listed newest last (`GET …/messages`, one page of at most 100, as ListMessages does).
 *
 * For `handover connectors setup`, the app's settings and integrations as the same reference describes
 * them: GetApp / UpdateApp (`PATCH /v2/apps/{appId}` with `settings.multiConvoEnabled`, which cannot be
 * turned off again: the fake refuses `false` once it is on), ListIntegrations (`GET …/integrations`,
 * `filter[types]`), ListWebhooks / UpdateWebhook (`…/integrations/{integrationId}/webhooks[/{webhookId}]`:
 * `id`, `version`, `target`, `triggers`, `secret`), ListSwitchboards (`…/switchboards`: `id`, `enabled`,
 * `defaultSwitchboardIntegrationId`), ListSwitchboardIntegrations / CreateSwitchboardIntegration /
 * UpdateSwitchboardIntegration (`…/switchboards/{switchboardId}/switchboardIntegrations[/{id}]`: `id`,
 * `name`, `integrationId`, `integrationType`, `deliverStandbyEvents`, `nextSwitchboardIntegrationId`).
 * Our custom integration (`int_handover`) has one webhook; its target is the inbound URL unless set.
 */
export interface SunshineMessage {
  id: string;
  received: string;
  author: { type: 'user' | 'business'; userId?: string; displayName?: string };
  content: { type: string; text?: string; mediaUrl?: string; altText?: string };
  metadata?: Record<string, unknown>;
}

export interface SunshineConversation {
  id: string;
  userId: string;
  metadata: Record<string, unknown>;
  messages: SunshineMessage[];
  /** passControl calls received, in order, with their metadata. */
  controlPasses: Array<{ switchboardIntegration: string; metadata: Record<string, unknown> }>;
  /** The name of the switchboard integration in control. */
  activeSwitchboardIntegration: string;
}

export interface SwitchboardIntegration {
  id: string;
  name: string;
  integrationType: string;
  integrationId?: string;
  deliverStandbyEvents?: boolean;
  nextSwitchboardIntegrationId?: string | null;
}

export interface SunshineWebhook {
  id: string;
  version: string;
  /** Absent: the connector's inbound URL (`webhookTarget`). */
  target?: string;
  triggers: string[];
  secret: string;
}

export interface WebhookDelivery {
  body: string;
  status: number;
  tries: number;
}

export interface FakeZendesk {
  /** API base, as configured in the connector (`…/sc`). */
  baseUrl: string;
  appId: string;
  keyId: string;
  keySecret: string;
  webhookSecret: string;
  /** Where the webhook sends events: the connector's inbound URL. */
  webhookTarget: string;
  users: Map<string, { id: string; externalId: string; profile: Record<string, unknown> }>;
  conversations: Map<string, SunshineConversation>;
  /** Every API call that was refused, for assertions (must stay empty in a healthy run). */
  refused: Array<{ method: string; path: string; status: number; reason: string }>;
  webhookDeliveries: WebhookDelivery[];
  /** While true, every API call answers 503. */
  down: boolean;
  /** Routes (e.g. `POST /conversations/:id/passControl`) → how many next calls answer 500. */
  failNext: Map<string, number>;
  conversationForHandover(handoverId: string): SunshineConversation | undefined;
  /** An agent's message in the agent workspace; resolves with our answer to the webhook's first try. */
  agentMessage(conversationId: string, message: { text: string; displayName: string }): Promise<{ status: number; body: any }>;
  /** An agent's structured message (carousel, list, location, text with actions), as `content` is documented. */
  agentContent(conversationId: string, content: Record<string, unknown>, displayName: string): Promise<{ status: number; body: any }>;
  /**
   * The agent closes the ticket (or moves it to email): control passes back to the bot integration, or,
   * with `release` (the agent workspace has no integration after it), is released to none.
   */
  closeTicket(conversationId: string, reason?: 'ticketClosed' | 'transferToEmail', options?: { release?: boolean }): Promise<{ status: number; body: any }>;
  switchboardIntegrations: SwitchboardIntegration[];
  /** The app's settings (GetApp answers them; UpdateApp changes them). */
  appSettings: { multiConvoEnabled: boolean };
  /** The app's custom integrations and their webhooks. */
  integrations: Array<{ id: string; type: string; displayName: string; webhooks: SunshineWebhook[] }>;
  /** Setup changes received (UpdateApp, UpdateWebhook, switchboard integration changes), in order. */
  setupChanges: Array<{ route: string; body: unknown }>;
  /** Routes → how many next calls are carried out but never answered (the connection is cut). */
  loseAnswerNext: Map<string, number>;
  /** Sends one webhook body again exactly as before (a Zendesk retry). */
  resend(body: string, apiKey?: string): Promise<{ status: number; body: any }>;
  /** The last webhook body sent. */
  lastWebhookBody(): string | undefined;
  close(): Promise<void>;
}

const MAX_TRIES = 5;
const METADATA_LIMIT = 4096;

export async function startFakeZendesk(
  options: { retryDelayMs?: number; maxPageSize?: number; botNext?: 'zd-agentWorkspace' | 'zd-answerBot' } = {},
): Promise<FakeZendesk> {
  const maxPageSize = options.maxPageSize ?? 100;
  const retryDelayMs = options.retryDelayMs ?? 50;
  let webhookChain: Promise<unknown> = Promise.resolve();
  const fake: FakeZendesk = {
    baseUrl: '',
    appId: `app_${randomUUID().slice(0, 8)}`,
    keyId: `app_key_${randomUUID().slice(0, 8)}`,
    keySecret: `secret-${randomUUID()}`,
    webhookSecret: `whk-${randomUUID()}`,
    webhookTarget: '',
    users: new Map(),
    conversations: new Map(),
    refused: [],
    webhookDeliveries: [],
    down: false,
    failNext: new Map(),
    loseAnswerNext: new Map(),
    switchboardIntegrations: [
      {
        id: 'sbi_handover',
        name: 'handover',
        integrationType: 'custom',
        integrationId: 'int_handover',
        deliverStandbyEvents: true,
        nextSwitchboardIntegrationId: options.botNext === 'zd-answerBot' ? 'sbi_answerbot' : 'sbi_agents',
      },
      { id: 'sbi_answerbot', name: 'zd-answerBot', integrationType: 'zd:answerBot', deliverStandbyEvents: false, nextSwitchboardIntegrationId: 'sbi_agents' },
      {
        id: 'sbi_agents',
        name: 'zd-agentWorkspace',
        integrationType: 'zd:agentWorkspace',
        deliverStandbyEvents: false,
        nextSwitchboardIntegrationId: 'sbi_handover',
      },
    ],
    appSettings: { multiConvoEnabled: true },
    integrations: [],
    setupChanges: [],
    conversationForHandover: (handoverId) => [...fake.conversations.values()].find((c) => c.metadata.handoverId === handoverId),
    agentMessage(conversationId, message) {
      const conversation = fake.conversations.get(conversationId)!;
      const stored: SunshineMessage = {
        id: randomUUID().replace(/-/g, '').slice(0, 24),
        received: new Date().toISOString(),
        author: { type: 'business', displayName: message.displayName },
        content: { type: 'text', text: message.text },
      };
      conversation.messages.push(stored);
      return emit([{ type: 'conversation:message', payload: { conversation: truncated(conversation), message: stored } }]);
    },
    agentContent(conversationId, content, displayName) {
      const conversation = fake.conversations.get(conversationId)!;
      const stored = {
        id: randomUUID().replace(/-/g, '').slice(0, 24),
        received: new Date().toISOString(),
        author: { type: 'business' as const, displayName },
        content: content as SunshineMessage['content'],
      };
      conversation.messages.push(stored);
      return emit([{ type: 'conversation:message', payload: { conversation: truncated(conversation), message: stored } }]);
    },
    closeTicket(conversationId, reason = 'ticketClosed', options = {}) {
      const conversation = fake.conversations.get(conversationId)!;
      if (options.release) {
        // releaseControl's conversation has no activeSwitchboardIntegration: nobody is in control.
        return emit([{ type: 'switchboard:releaseControl', payload: { conversation: { id: conversation.id, type: 'personal' }, reason, metadata: {} } }]);
      }
      conversation.activeSwitchboardIntegration = 'handover';
      return emit([{ type: 'switchboard:passControl', payload: { conversation: truncated(conversation), reason, metadata: {} } }]);
    },
    resend: (body, apiKey) => post(body, apiKey),
    lastWebhookBody: () => fake.webhookDeliveries.at(-1)?.body,
    close: async () => {},
  };

  fake.integrations.push({
    id: 'int_handover',
    type: 'custom',
    displayName: 'handover',
    webhooks: [
      { id: 'wh_1', version: 'v2', triggers: ['conversation:message', 'switchboard:passControl', 'switchboard:releaseControl'], secret: fake.webhookSecret },
    ],
  });

  function truncated(c: SunshineConversation) {
    const active = fake.switchboardIntegrations.find((i) => i.name === c.activeSwitchboardIntegration)!;
    return { id: c.id, type: 'personal', activeSwitchboardIntegration: { ...active } };
  }

  /** A passControl target: an integration's id, name or type, or `next` (after ours). */
  function switchboardTarget(target: string): SwitchboardIntegration | undefined {
    if (target === 'next') return fake.switchboardIntegrations.find((i) => i.name === (options.botNext ?? 'zd-agentWorkspace'));
    return fake.switchboardIntegrations.find((i) => i.id === target || i.name === target || i.integrationType === target);
  }

  async function post(body: string, apiKey = fake.webhookSecret): Promise<{ status: number; body: any }> {
    const res = await fetch(fake.webhookTarget, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
      body,
      signal: AbortSignal.timeout(20_000),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  /**
   * Queues events for the webhook. Deliveries go one at a time, in order; events queued while one is
   * under way travel together in the next batch. Resolves with our answer to the batch's first try;
   * failed tries are repeated in the background with the same body.
   */
  function emit(events: Array<{ type: string; payload: unknown }>): Promise<{ status: number; body: any }> {
    const stamped = events.map((e) => ({
      id: randomUUID().replace(/-/g, '').slice(0, 24),
      type: e.type,
      createdAt: new Date().toISOString(),
      payload: e.payload,
    }));
    pending.push(...stamped);
    let resolveFirst!: (v: { status: number; body: any }) => void;
    const first = new Promise<{ status: number; body: any }>((r) => (resolveFirst = r));
    webhookChain = webhookChain.then(async () => {
      if (pending.length === 0) return; // an earlier turn of the chain took these events along
      const batch = pending.splice(0, pending.length);
      const body = JSON.stringify({ app: { id: fake.appId }, webhook: { id: 'wh_1', version: 'v2' }, events: batch });
      const delivery: WebhookDelivery = { body, status: 0, tries: 0 };
      fake.webhookDeliveries.push(delivery);
      let answered = false;
      for (let attempt = 1; attempt <= MAX_TRIES; attempt++) {
        delivery.tries = attempt;
        const answer = await post(body).catch((err: unknown) => ({ status: 0, body: String(err) }));
        delivery.status = answer.status;
        if (!answered) {
          answered = true;
          resolveFirst(answer);
        }
        if (answer.status >= 200 && answer.status < 300) return;
        await new Promise((r) => setTimeout(r, retryDelayMs * attempt));
      }
    });
    // A batch that took these events along answers for them.
    void webhookChain.then(() => resolveFirst({ status: 200, body: { ok: true, batched: true } }));
    return first;
  }
  const pending: Array<{ id: string; type: string; createdAt: string; payload: unknown }> = [];

  /** The app's settings, integrations, webhooks and switchboard: what `handover connectors setup` reads and changes. */
  function setupRoute(method: string, path: string, url: URL, body: any): { status: number; body?: unknown; error?: string } | null {
    const change = (status: number, answer: unknown) => {
      fake.setupChanges.push({ route: `${method} ${path}`, body });
      return { status, body: answer };
    };
    if (method === 'PATCH' && path === '') {
      const multi = body?.settings?.multiConvoEnabled;
      if (multi !== undefined && typeof multi !== 'boolean') return { status: 400, error: 'bad_request' };
      if (multi === false && fake.appSettings.multiConvoEnabled) return { status: 400, error: 'multiConvoEnabled cannot be disabled' };
      if (multi === true) fake.appSettings.multiConvoEnabled = true;
      return change(200, { app: { id: fake.appId, displayName: 'Acme', settings: { ...fake.appSettings } } });
    }
    if (method === 'GET' && path === '/integrations') {
      const types = url.searchParams.get('filter[types]')?.split(',');
      return {
        status: 200,
        body: {
          integrations: fake.integrations
            .filter((i) => !types || types.includes(i.type))
            .map(({ id, type, displayName }) => ({ id, type, status: 'active', displayName })),
          meta: { hasMore: false },
        },
      };
    }
    const webhooks = /^\/integrations\/([^/]+)\/webhooks(?:\/([^/]+))?$/.exec(path);
    if (webhooks) {
      const integration = fake.integrations.find((i) => i.id === decodeURIComponent(webhooks[1]!));
      if (!integration) return { status: 404, error: 'integration_not_found' };
      const shown = (w: SunshineWebhook) => ({
        id: w.id,
        version: w.version,
        target: w.target ?? fake.webhookTarget,
        triggers: w.triggers,
        secret: w.secret,
        includeFullUser: false,
        includeFullSource: false,
      });
      if (method === 'GET' && !webhooks[2]) return { status: 200, body: { webhooks: integration.webhooks.map(shown) } };
      const webhook = integration.webhooks.find((w) => w.id === decodeURIComponent(webhooks[2] ?? ''));
      if (!webhook) return { status: 404, error: 'webhook_not_found' };
      if (method === 'PATCH') {
        if (body?.triggers !== undefined && (!Array.isArray(body.triggers) || body.triggers.some((t: unknown) => typeof t !== 'string')))
          return { status: 400, error: 'bad_request' };
        if (body?.triggers) webhook.triggers = body.triggers;
        if (typeof body?.target === 'string') webhook.target = body.target;
        return change(200, { webhook: shown(webhook) });
      }
    }
    if (method === 'GET' && path === '/switchboards')
      return { status: 200, body: { switchboards: [{ id: 'sb_1', enabled: true, defaultSwitchboardIntegrationId: 'sbi_handover' }] } };
    const members = /^\/switchboards\/([^/]+)\/switchboardIntegrations(?:\/([^/]+))?$/.exec(path);
    if (members) {
      if (decodeURIComponent(members[1]!) !== 'sb_1') return { status: 404, error: 'switchboard_not_found' };
      const shown = (m: SwitchboardIntegration) => ({
        id: m.id,
        name: m.name,
        integrationId: m.integrationId ?? `int_${m.name}`,
        integrationType: m.integrationType,
        deliverStandbyEvents: m.deliverStandbyEvents ?? false,
        nextSwitchboardIntegrationId: m.nextSwitchboardIntegrationId ?? null,
        messageHistoryCount: 0,
      });
      if (method === 'GET' && !members[2]) return { status: 200, body: { switchboardIntegrations: fake.switchboardIntegrations.map(shown) } };
      if (method === 'POST' && !members[2]) {
        if (
          typeof body?.name !== 'string' ||
          !/^[A-Za-z0-9_-]+$/.test(body.name) ||
          (typeof body.integrationId !== 'string' && typeof body.integrationType !== 'string')
        )
          return { status: 400, error: 'bad_request' };
        if (fake.switchboardIntegrations.some((m) => m.name === body.name)) return { status: 409, error: 'conflict' };
        const created: SwitchboardIntegration = {
          id: `sbi_${randomUUID().slice(0, 8)}`,
          name: body.name,
          integrationType: body.integrationType ?? 'custom',
          integrationId: body.integrationId,
          deliverStandbyEvents: body.deliverStandbyEvents === true,
          nextSwitchboardIntegrationId: body.nextSwitchboardIntegrationId ?? null,
        };
        fake.switchboardIntegrations.push(created);
        return change(201, { switchboardIntegration: shown(created) });
      }
      const member = fake.switchboardIntegrations.find((m) => m.id === decodeURIComponent(members[2] ?? ''));
      if (!member) return { status: 404, error: 'switchboard_integration_not_found' };
      if (method === 'PATCH') {
        if (body?.deliverStandbyEvents !== undefined && typeof body.deliverStandbyEvents !== 'boolean') return { status: 400, error: 'bad_request' };
        const next = body?.nextSwitchboardIntegrationId;
        if (next !== undefined && next !== null && !fake.switchboardIntegrations.some((m) => m.id === next)) return { status: 400, error: 'bad_request' };
        if (body?.deliverStandbyEvents !== undefined) member.deliverStandbyEvents = body.deliverStandbyEvents;
        if (next !== undefined) member.nextSwitchboardIntegrationId = next;
        return change(200, { switchboardIntegration: shown(member) });
      }
    }
    return null;
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let loseAnswer = false;
      const send = (status: number, body: unknown, reason = '') => {
        if (loseAnswer) return void req.socket.destroy();
        if (status >= 400) fake.refused.push({ method: req.method ?? '', path: req.url ?? '', status, reason });
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      const error = (status: number, code: string, title: string) => send(status, { errors: [{ code, title }] }, `${code}: ${title}`);
      if (fake.down) return error(503, 'service_unavailable', 'Service unavailable');
      const expected = `Basic ${Buffer.from(`${fake.keyId}:${fake.keySecret}`).toString('base64')}`;
      if (req.headers.authorization !== expected) return error(401, 'unauthorized', 'Authorization is invalid');
      let body: any = null;
      try {
        body = raw ? JSON.parse(raw) : null;
      } catch {
        return error(400, 'bad_request', 'Invalid JSON');
      }
      const url = new URL(req.url ?? '/', 'http://fake');
      const prefix = `/sc/v2/apps/${fake.appId}`;
      if (!url.pathname.startsWith(prefix)) return error(404, 'not_found', 'App not found');
      const path = url.pathname.slice(prefix.length);
      const route = `${req.method} ${path.replace(/\/conversations\/[^/]+/, '/conversations/:id').replace(/\/users\/[^/]+/, '/users/:id')}`;
      const conversation = /^\/conversations\/([^/]+)/.exec(path)?.[1];
      const found = conversation ? fake.conversations.get(decodeURIComponent(conversation)) : undefined;
      if (conversation && route !== 'POST /conversations' && !found) return error(404, 'conversation_not_found', 'Conversation not found');

      const failures = fake.failNext.get(route) ?? 0;
      if (failures > 0) {
        fake.failNext.set(route, failures - 1);
        return error(500, 'internal_error', 'Internal error (injected)');
      }
      // The call is carried out, but its answer never reaches the caller.
      const lost = fake.loseAnswerNext.get(route) ?? 0;
      if (lost > 0) {
        fake.loseAnswerNext.set(route, lost - 1);
        loseAnswer = true;
      }

      const setupAnswer = setupRoute(req.method ?? '', path, url, body);
      if (setupAnswer) return setupAnswer.error ? error(setupAnswer.status, setupAnswer.error, setupAnswer.error) : send(setupAnswer.status, setupAnswer.body);

      switch (route) {
        // GetApp (the connector's setup check): the app the key belongs to, with its settings.
        case 'GET ':
          return send(200, {
            app: {
              id: fake.appId,
              displayName: 'Acme',
              settings: {
                ...fake.appSettings,
                maskCreditCardNumbers: true,
                useAnimalNames: false,
                echoPostback: false,
                ignoreAutoConversationStart: false,
                conversationRetentionSeconds: 0,
                appLocalizationEnabled: false,
              },
              metadata: null,
            },
          });
        case 'POST /users': {
          if (typeof body?.externalId !== 'string') return error(400, 'bad_request', 'externalId is required');
          const profileProblem = checkProfile(body.profile);
          if (profileProblem) return error(400, 'bad_request', profileProblem);
          if ([...fake.users.values()].some((u) => u.externalId === body.externalId)) return error(409, 'conflict', 'User already exists');
          const user = { id: randomUUID().replace(/-/g, '').slice(0, 24), externalId: body.externalId, profile: body.profile ?? {} };
          fake.users.set(user.id, user);
          return send(201, { user });
        }
        case 'GET /users/:id': {
          const key = decodeURIComponent(path.slice('/users/'.length));
          const user = fake.users.get(key) ?? [...fake.users.values()].find((u) => u.externalId === key);
          return user ? send(200, { user }) : error(404, 'user_not_found', 'User not found');
        }
        case 'GET /conversations': {
          const userId = url.searchParams.get('filter[userId]');
          const externalId = url.searchParams.get('filter[userExternalId]');
          if (!userId && !externalId) return error(400, 'bad_request', 'filter[userId] or filter[userExternalId] is required');
          const user = userId ? fake.users.get(userId) : [...fake.users.values()].find((u) => u.externalId === externalId);
          const all = [...fake.conversations.values()].filter((c) => c.userId === user?.id);
          // Cursor pagination: `page[after]` is the id of the last conversation of the previous page.
          const size = Math.min(Number(url.searchParams.get('page[size]') ?? 25) || 25, maxPageSize);
          const after = url.searchParams.get('page[after]');
          const start = after ? all.findIndex((c) => c.id === after) + 1 : 0;
          const page = all.slice(start, start + size);
          const hasMore = start + size < all.length;
          return send(200, {
            conversations: page.map((c) => ({ ...truncated(c), metadata: c.metadata })),
            meta: { hasMore, ...(hasMore ? { afterCursor: page.at(-1)!.id } : {}) },
          });
        }
        case 'POST /conversations': {
          const participant = body?.participants?.[0];
          const user = participant?.userId
            ? fake.users.get(participant.userId)
            : [...fake.users.values()].find((u) => u.externalId === participant?.userExternalId);
          if (body?.type !== 'personal' || !user) return error(400, 'bad_request', 'a personal conversation needs one existing user participant');
          const metadataProblem = checkMetadata(body.metadata);
          if (metadataProblem) return error(400, 'bad_request', metadataProblem);
          const created: SunshineConversation = {
            id: randomUUID().replace(/-/g, '').slice(0, 24),
            userId: user.id,
            metadata: body.metadata ?? {},
            messages: [],
            controlPasses: [],
            activeSwitchboardIntegration: 'handover',
          };
          fake.conversations.set(created.id, created);
          return send(201, { conversation: { ...truncated(created), metadata: created.metadata } });
        }
        case 'GET /conversations/:id/participants':
          return send(200, {
            participants: [{ id: `p_${found!.userId}`, userId: found!.userId, userExternalId: fake.users.get(found!.userId)?.externalId }],
            meta: { hasMore: false },
          });
        case 'POST /conversations/:id/messages': {
          const author = body?.author;
          const user = author?.userId ? fake.users.get(author.userId) : [...fake.users.values()].find((u) => u.externalId === author?.userExternalId);
          if (author?.type === 'user' && (!user || user.id !== found!.userId))
            return error(400, 'bad_request', 'author must be a participant of the conversation');
          if (author?.type !== 'user' && author?.type !== 'business') return error(400, 'bad_request', 'author.type must be user or business');
          const content = body?.content;
          const media = content?.type === 'image' || content?.type === 'file';
          if (media) {
            if (typeof content.mediaUrl !== 'string' || !/^https?:\/\//.test(content.mediaUrl))
              return error(400, 'bad_request', `${content.type} content needs a mediaUrl`);
          } else if (content?.type !== 'text' || typeof content.text !== 'string' || content.text.length === 0)
            return error(400, 'bad_request', 'content must be text, image or file');
          if (typeof content.text === 'string' && content.text.length > 4096) return error(400, 'bad_request', 'text is longer than 4096 characters');
          if (typeof content.altText === 'string' && content.altText.length > 128) return error(400, 'bad_request', 'altText is longer than 128 characters');
          const metadataProblem = checkMetadata(body.metadata);
          if (metadataProblem) return error(400, 'bad_request', metadataProblem);
          const message: SunshineMessage = {
            id: randomUUID().replace(/-/g, '').slice(0, 24),
            received: new Date().toISOString(),
            author: { type: author.type, ...(user ? { userId: user.id } : {}) },
            content: media
              ? { type: content.type, mediaUrl: content.mediaUrl, ...(typeof content.altText === 'string' ? { altText: content.altText } : {}) }
              : { type: 'text', text: content.text },
            ...(body.metadata ? { metadata: body.metadata } : {}),
          };
          found!.messages.push(message);
          // Every message comes back to the integrations as a webhook, ours included.
          void emit([{ type: 'conversation:message', payload: { conversation: truncated(found!), message } }]);
          return send(201, { messages: [message] });
        }
        case 'GET /conversations/:id/messages': {
          // The newest page (at most 100), oldest first within it, as ListMessages answers without a cursor.
          const page = found!.messages.slice(-100);
          return send(200, { messages: page, meta: { hasBefore: found!.messages.length > page.length } });
        }
        case 'POST /conversations/:id/activity': {
          if (body?.author?.type === 'user' && body?.type !== 'conversation:read') return error(400, 'bad_request', 'users may only send conversation:read');
          return send(200, {});
        }
        case 'POST /conversations/:id/passControl': {
          if (typeof body?.switchboardIntegration !== 'string') return error(400, 'bad_request', 'switchboardIntegration is required');
          const metadataProblem = checkMetadata(body.metadata);
          if (metadataProblem) return error(400, 'bad_request', metadataProblem);
          const target = switchboardTarget(body.switchboardIntegration);
          if (!target) return error(400, 'bad_request', `no switchboard integration ${body.switchboardIntegration}`);
          found!.controlPasses.push({ switchboardIntegration: body.switchboardIntegration, metadata: body.metadata ?? {} });
          found!.activeSwitchboardIntegration = target.name;
          void emit([{ type: 'switchboard:passControl', payload: { conversation: truncated(found!), metadata: body.metadata ?? {} } }]);
          return send(200, {});
        }
        default:
          return error(404, 'not_found', `No route ${route}`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sc`;
  fake.close = async () => {
    fake.down = true;
    await webhookChain.catch(() => {});
    await closeServer(server);
  };
  return fake;
}

/** Metadata must be flat (strings, numbers, booleans) and at most 4 KB. */
function checkMetadata(metadata: unknown): string | null {
  if (metadata === undefined) return null;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return 'metadata must be an object';
  for (const [key, value] of Object.entries(metadata)) {
    if (!['string', 'number', 'boolean'].includes(typeof value)) return `metadata.${key} must be a string, number or boolean`;
  }
  if (Buffer.byteLength(JSON.stringify(metadata), 'utf8') > METADATA_LIMIT) return 'metadata is larger than 4KB';
  return null;
}

/**
 * The reference's limits on a user's `profile`: givenName, surname and email at most 128 characters,
 * email in `format: email`, locale at most 64.
 */
function checkProfile(profile: unknown): string | undefined {
  if (profile === undefined) return undefined;
  if (profile === null || typeof profile !== 'object') return 'profile must be an object';
  const p = profile as Record<string, unknown>;
  for (const [field, max] of [
    ['givenName', 128],
    ['surname', 128],
    ['email', 128],
    ['locale', 64],
  ] as const) {
    const value = p[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string' || value.length < 1 || value.length > max) return `profile.${field} must be a string of 1 to ${max} characters`;
  }
  if (typeof p.email === 'string' && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(p.email)) return 'profile.email is not an email address';
  return undefined;
}
