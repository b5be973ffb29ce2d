import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { handoverMetadata, METADATA_LIMIT_BYTES, parseTranscript, size } from '../../src/connectors/zendesk/zendesk-content.js';
import { startSignedWebhookServer, type SignedWebhookServer } from '../fakes/signed-webhook-server.js';
import { startFakeZendesk, type FakeZendesk } from '../fakes/zendesk.js';
import { messageTexts } from '../support/receivers.js';
import { closeTenantWork, sharedServices } from '../support/shared-services.js';
import { eventually, type TestService } from '../support/test-service.js';

describe('zendesk handover metadata', () => {
  it('stays flat and within 4 KB, keeping the newest transcript lines and the bot metadata', () => {
    const transcript = Array.from({ length: 200 }, (_, i) => ({ role: i % 2 ? ('bot' as const) : ('user' as const), text: `line ${i} ${'x'.repeat(40)}` }));
    const metadata = handoverMetadata({
      handoverId: 'ho_1',
      queue: 'support',
      user: { id: 'u1', name: 'Uma', email: 'uma@example.com' },
      transcript,
      metadata: { plan: 'gold', nested: { a: 1 }, big: 'y'.repeat(10_000) },
    });
    expect(size(metadata)).toBeLessThanOrEqual(METADATA_LIMIT_BYTES);
    for (const value of Object.values(metadata)) expect(['string', 'number', 'boolean']).toContain(typeof value);
    expect(metadata).toMatchObject({
      handoverId: 'ho_1',
      queue: 'support',
      userId: 'u1',
      userEmail: 'uma@example.com',
      meta_plan: 'gold',
      meta_nested: '{"a":1}',
    });
    const lines = parseTranscript(String(metadata.transcript));
    expect(lines.at(-1)!.text).toContain('line 199');
    expect(lines.length).toBeGreaterThan(10);
    expect(String(metadata.transcript).startsWith('…\n')).toBe(true);
  });
});

describe('zendesk connector against its fake (pg)', () => {
  // One service for the cases; each has a tenant, fake and bot of its own, and its handovers are
  // ended and its deliveries settled before they close.
  const service = sharedServices('pg');
  let t: TestService | undefined;
  let tenantOfCase: { id: string; apiKey: string } | undefined;
  let bot: SignedWebhookServer | undefined;
  let fake: FakeZendesk | undefined;
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    try {
      if (t && tenantOfCase) await closeTenantWork(t, tenantOfCase);
    } finally {
      await bot?.close();
      await fake?.close();
      await close?.();
      t = tenantOfCase = bot = fake = close = undefined;
    }
  });

  async function setUp(fakeOptions: { maxPageSize?: number; botNext?: 'zd-agentWorkspace' | 'zd-answerBot' } = {}) {
    t = await service();
    let botSecret = '';
    bot = await startSignedWebhookServer(() => botSecret);
    fake = await startFakeZendesk({ retryDelayMs: 20, ...fakeOptions });
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Zed', webhookUrl: bot.url });
    botSecret = tenant.body.webhookSecret;
    tenantOfCase = { id: tenant.body.id, apiKey: tenant.body.apiKey };
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'zendesk',
      name: 'zendesk',
      config: { baseUrl: fake.baseUrl, appId: fake.appId, keyId: fake.keyId, keySecret: fake.keySecret, webhookSecret: fake.webhookSecret },
    });
    expect(connector.status).toBe(201);
    fake.webhookTarget = connector.body.inboundUrl;
    await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'zd', connectorId: connector.body.id });
    return { apiKey: tenant.body.apiKey as string, inboundUrl: connector.body.inboundUrl as string };
  }

  async function handOver(apiKey: string, conversationId: string, userId: string, user: Record<string, string> = {}): Promise<string> {
    const created = await t!.api('POST', '/v1/handovers', { token: apiKey, body: { conversationId, queue: 'zd', user: { id: userId, ...user } } });
    expect(created.status).toBe(201);
    const handoverId: string = created.body.id;
    await eventually(
      async () => (await t!.db.query<{ external_ref: string | null }>('select external_ref from handovers where id = $1', [handoverId])).rows[0]?.external_ref,
      'the Zendesk conversation id',
    );
    return handoverId;
  }

  it('reuses the Sunshine user a second handover of the same user finds taken (409)', async () => {
    const { apiKey } = await setUp();
    const first = await handOver(apiKey, 'c-1', 'same-user');
    const end = await t!.api('POST', `/v1/handovers/${first}/end`, { token: apiKey, body: { reason: 'user_ended' } });
    expect(end.status).toBe(200);
    const second = await handOver(apiKey, 'c-2', 'same-user');
    expect(fake!.users.size).toBe(1);
    expect(fake!.refused.map((r) => r.status)).toEqual([409]);
    const [a, b] = [fake!.conversationForHandover(first)!, fake!.conversationForHandover(second)!];
    expect(a.id).not.toBe(b.id);
    expect(a.userId).toBe(b.userId);
  });

  it('retries a start that failed half-way into the conversation it already opened, found across pages', async () => {
    const { apiKey } = await setUp({ maxPageSize: 1 });
    for (const c of ['c-a', 'c-b']) {
      const id = await handOver(apiKey, c, 'busy-user');
      await t!.api('POST', `/v1/handovers/${id}/end`, { token: apiKey, body: { reason: 'user_ended' } });
    }
    fake!.failNext.set('POST /conversations/:id/passControl', 1);
    const handoverId = await handOver(apiKey, 'c-c', 'busy-user');
    const conversation = fake!.conversationForHandover(handoverId)!;
    expect([...fake!.conversations.values()].filter((c) => c.userId === conversation.userId)).toHaveLength(3);
    expect(conversation.controlPasses).toHaveLength(1);
    const { rows } = await t!.db.query<{ external_ref: string }>('select external_ref from handovers where id = $1', [handoverId]);
    expect(rows[0]!.external_ref).toBe(conversation.id);
    expect(fake!.refused.filter((r) => r.status === 500)).toHaveLength(1);
  });

  it('takes a webhook the fake sends again after a failed try, and applies a re-sent batch only for its new events', async () => {
    const { apiKey, inboundUrl } = await setUp();
    const handoverId = await handOver(apiKey, 'c-retry', 'u-retry');
    const conversationId = fake!.conversationForHandover(handoverId)!.id;

    // A proxy in front of our inbound URL that fails the first try of each webhook body.
    const seenBodies = new Set<string>();
    const proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (!seenBodies.has(body)) {
          seenBodies.add(body);
          res.writeHead(502).end();
          return;
        }
        void fetch(inboundUrl, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': String(req.headers['x-api-key']) }, body }).then(
          async (answer) => {
            res.writeHead(answer.status, { 'content-type': 'application/json' }).end(await answer.text());
          },
        );
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    close = () => new Promise<void>((resolve) => proxy.close(() => resolve()));
    fake!.webhookTarget = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

    const first = await fake!.agentMessage(conversationId, { text: 'hello from Zendesk', displayName: 'Zoe' });
    expect(first.status).toBe(502);
    await bot!.waitFor((r) => messageTexts(r.map((w) => w.body)).includes('hello from Zendesk'), 15_000, 'the retried agent message');
    const delivery = fake!.webhookDeliveries.find((d) => d.body.includes('hello from Zendesk'))!;
    expect(delivery.tries).toBe(2);

    // A batch holding one event already applied and one new one: only the new one is applied.
    fake!.webhookTarget = inboundUrl;
    const applied = JSON.parse(delivery.body) as { app: unknown; webhook: unknown; events: unknown[] };
    const fresh = {
      id: 'evt-fresh',
      type: 'conversation:message',
      createdAt: new Date().toISOString(),
      payload: {
        conversation: { id: conversationId },
        message: { id: 'm-fresh', author: { type: 'business', displayName: 'Zoe' }, content: { type: 'text', text: 'second' } },
      },
    };
    const batch = await fake!.resend(JSON.stringify({ ...applied, events: [...applied.events, fresh] }));
    expect(batch.status).toBe(200);
    expect(batch.body).toMatchObject({ duplicate: false });
    await bot!.waitFor((r) => messageTexts(r.map((w) => w.body)).includes('second'), 15_000, 'the new event of the batch');
    expect(messageTexts(bot!.received.map((w) => w.body))).toEqual(['hello from Zendesk', 'second']);

    // A body that is not a Sunshine webhook is a clear 400, never a 500.
    const bad = await fake!.resend(JSON.stringify({ events: 'nope' }));
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
  });

  it('takes a batch whose text holds half an emoji and a NUL, repaired, without refusing the batch', async () => {
    const { apiKey } = await setUp();
    const handoverId = await handOver(apiKey, 'c-chars', 'u-chars');
    const conversationId = fake!.conversationForHandover(handoverId)!.id;
    const event = (id: string, text: string) => ({
      id: `evt-${id}`,
      type: 'conversation:message',
      createdAt: new Date().toISOString(),
      payload: {
        conversation: { id: conversationId },
        message: { id: `m-${id}`, author: { type: 'business', displayName: 'Zoe' }, content: { type: 'text', text } },
      },
    });
    // JSON.stringify writes the lone half as a \ud83d escape and the NUL as \u0000, as a vendor would.
    const body = JSON.stringify({
      app: { id: fake!.appId },
      webhook: { id: 'wh', version: 'v2' },
      events: [event('broken', 'half \ud83d and a \u0000 here'), event('fine', 'all well')],
    });
    expect(body).toContain('\\ud83d');
    const answer = await fake!.resend(body);
    expect(answer.status).toBe(200);
    await bot!.waitFor((r) => messageTexts(r.map((w) => w.body)).includes('all well'), 15_000, 'the intact message');
    expect(messageTexts(bot!.received.map((w) => w.body))).toContain('half \uFFFD and a   here');
  });

  it.each(['transferToEmail', 'ticketClosed'] as const)('gives the chat back to the bot when control comes back with reason %s', async (reason) => {
    const { apiKey } = await setUp();
    const handoverId = await handOver(apiKey, `c-${reason}`, `u-${reason}`);
    const answer = await fake!.closeTicket(fake!.conversationForHandover(handoverId)!.id, reason);
    expect(answer.status).toBe(200);
    await bot!.waitFor((r) => r.some((w) => w.body.type === 'handover.ended'), 15_000, 'handover.ended');
    expect(bot!.received.find((w) => w.body.type === 'handover.ended')!.body.data).toMatchObject({ reason: 'agent_ended' });
    const status = await t!.api('GET', `/v1/handovers/${handoverId}`, { token: apiKey });
    expect(status.body.state).toBe('ended');
  });

  it('gives the chat back to the bot when the agent workspace releases control on closing the ticket (no integration after it)', async () => {
    const { apiKey } = await setUp();
    const handoverId = await handOver(apiKey, 'c-released', 'u-released');
    const answer = await fake!.closeTicket(fake!.conversationForHandover(handoverId)!.id, 'ticketClosed', { release: true });
    expect(answer.status).toBe(200);
    await bot!.waitFor((r) => r.some((w) => w.body.type === 'handover.ended'), 15_000, 'handover.ended');
    expect(bot!.received.find((w) => w.body.type === 'handover.ended')!.body.data).toMatchObject({ reason: 'agent_ended' });
    expect((await t!.api('GET', `/v1/handovers/${handoverId}`, { token: apiKey })).body.state).toBe('ended');
  });

  it("opens the conversation for a user whose name, email or file names exceed what the API's profile and altText take", async () => {
    const { apiKey } = await setUp();
    const longName = `${'N'.repeat(127)}\u{1F600}and more`;
    const handoverId = await handOver(apiKey, 'c-long', 'u-long', { name: longName, email: 'not an address', locale: 'fr-CA' });
    const user = [...fake!.users.values()].find((u) => u.externalId === 'u-long')!;
    // Cut to 127 units, not into the emoji's two halves; the email the API would refuse left out.
    expect(user.profile).toEqual({ givenName: 'N'.repeat(127), locale: 'fr-CA' });
    const conversation = fake!.conversationForHandover(handoverId)!;
    const name = `${'f'.repeat(200)}.pdf`;
    const sent = await t!.api('POST', `/v1/handovers/${handoverId}/messages`, {
      token: apiKey,
      body: { id: 'm-long', text: 'see attached', attachments: [{ url: 'https://files.example.com/long.pdf', name, contentType: 'application/pdf' }] },
    });
    expect(sent.status).toBe(202);
    await eventually(async () => conversation.messages.filter((m) => m.author.type === 'user').length >= 2, 'the text and the file');
    expect(conversation.messages.filter((m) => m.author.type === 'user').map((m) => m.content)[1]).toEqual({
      type: 'file',
      mediaUrl: 'https://files.example.com/long.pdf',
      altText: name.slice(0, 128),
    });
    expect(fake!.refused).toEqual([]);
  });

  it('passes control to the agent workspace by its integration type, even when the switchboard puts another integration next', async () => {
    const { apiKey } = await setUp({ botNext: 'zd-answerBot' });
    const handoverId = await handOver(apiKey, 'c-agents', 'u-agents');
    const conversation = fake!.conversationForHandover(handoverId)!;
    expect(conversation.controlPasses.map((p) => p.switchboardIntegration)).toEqual(['zd:agentWorkspace']);
    expect(conversation.activeSwitchboardIntegration).toBe('zd-agentWorkspace');
  });

  it('posts a user message whose answer was lost only once when the delivery is tried again', async () => {
    const { apiKey } = await setUp();
    const handoverId = await handOver(apiKey, 'c-lost', 'u-lost');
    const conversation = fake!.conversationForHandover(handoverId)!;
    fake!.loseAnswerNext.set('POST /conversations/:id/messages', 1);
    const sent = await t!.api('POST', `/v1/handovers/${handoverId}/messages`, { token: apiKey, body: { id: 'm-1', text: 'only once, please' } });
    expect(sent.status).toBe(202);
    const after = await t!.api('POST', `/v1/handovers/${handoverId}/messages`, { token: apiKey, body: { id: 'm-2', text: 'the next one' } });
    expect(after.status).toBe(202);
    await eventually(async () => conversation.messages.some((m) => m.content.text === 'the next one'), 'the next message');
    expect(conversation.messages.filter((m) => m.author.type === 'user').map((m) => m.content.text)).toEqual(['only once, please', 'the next one']);
  });

  it("sends the user's attachments as image and file messages, not as links in the text", async () => {
    const { apiKey } = await setUp();
    const handoverId = await handOver(apiKey, 'c-files', 'u-files');
    const conversation = fake!.conversationForHandover(handoverId)!;
    const attachments = [
      { url: 'https://files.example.com/receipt.png', name: 'receipt.png', contentType: 'image/png' },
      { url: 'https://files.example.com/invoice.pdf', name: 'invoice.pdf', contentType: 'application/pdf' },
    ];
    const sent = await t!.api('POST', `/v1/handovers/${handoverId}/messages`, { token: apiKey, body: { id: 'm-files', text: 'here you go', attachments } });
    expect(sent.status).toBe(202);
    await eventually(async () => conversation.messages.filter((m) => m.author.type === 'user').length >= 3, 'the three messages');
    expect(conversation.messages.filter((m) => m.author.type === 'user').map((m) => m.content)).toEqual([
      { type: 'text', text: 'here you go' },
      { type: 'image', mediaUrl: 'https://files.example.com/receipt.png', altText: 'receipt.png' },
      { type: 'file', mediaUrl: 'https://files.example.com/invoice.pdf', altText: 'invoice.pdf' },
    ]);
    expect(fake!.refused).toEqual([]);
  });

  it("passes an agent's carousel on as its titles, links and images, and a location as its place", async () => {
    const { apiKey } = await setUp();
    const handoverId = await handOver(apiKey, 'c-rich', 'u-rich');
    const conversationId = fake!.conversationForHandover(handoverId)!.id;
    await fake!.agentContent(
      conversationId,
      {
        type: 'carousel',
        items: [
          {
            title: 'Basic plan',
            description: '5 € a month',
            mediaUrl: 'https://img.example.com/basic.png',
            actions: [{ type: 'link', text: 'Choose', uri: 'https://shop.example.com/basic' }],
          },
          { title: 'Pro plan', actions: [{ type: 'postback', text: 'Pick Pro', payload: 'PRO' }] },
        ],
      },
      'Zoe',
    );
    await fake!.agentContent(conversationId, { type: 'location', coordinates: { lat: 48.8584, long: 2.2945 }, location: { name: 'Eiffel Tower' } }, 'Zoe');
    await bot!.waitFor((r) => r.filter((w) => w.body.type === 'message.created').length >= 2, 15_000, 'the two rich messages');
    const messages = bot!.received
      .filter((w) => w.body.type === 'message.created')
      .map((w) => (w.body.data as { message: { text: string; attachments: unknown[] } }).message);
    expect(messages[0]).toEqual({
      id: expect.any(String),
      createdAt: expect.any(String),
      text: 'Basic plan — 5 € a month\nChoose: https://shop.example.com/basic\nPro plan\nPick Pro',
      attachments: [{ url: 'https://img.example.com/basic.png', name: 'Basic plan' }],
    });
    expect(messages[1]!.text).toBe('Eiffel Tower (48.8584, 2.2945)');
  });
});
