import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeFreshchat, type FakeFreshchat, type FreshchatConversation } from '../fakes/freshchat.js';
import { closeTenantWork, sharedServices } from '../support/shared-services.js';
import { eventually, type TestService } from '../support/test-service.js';

describe('freshchat connector against its fake (pg)', () => {
  // One service per set of settings for the cases; each has a tenant and fake of its own, and its
  // handovers are ended and its deliveries settled before its fake closes.
  const service = sharedServices('pg');
  let t: TestService | undefined;
  let tenantOfCase: { id: string; apiKey: string } | undefined;
  let fake: FakeFreshchat | undefined;
  afterEach(async () => {
    try {
      if (t && tenantOfCase) await closeTenantWork(t, tenantOfCase);
    } finally {
      await fake?.close();
      t = tenantOfCase = fake = undefined;
    }
  });

  async function setUp(configOf: Record<string, unknown> | ((fake: FakeFreshchat) => Record<string, unknown>) = {}, overrides: Record<string, unknown> = {}) {
    t = await service(overrides);
    fake = await startFakeFreshchat();
    const config = typeof configOf === 'function' ? configOf(fake) : configOf;
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Fresh' });
    tenantOfCase = { id: tenant.body.id, apiKey: tenant.body.apiKey };
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'freshchat',
      name: 'freshchat',
      config: {
        baseUrl: fake.url,
        apiToken: fake.apiToken,
        webhookPublicKey: fake.publicKeyPem,
        appId: fake.appId,
        channelId: fake.channelId,
        agentId: fake.botAgentId,
        groupId: 'grp-support',
        ...config,
      },
    });
    expect(connector.status, JSON.stringify(connector.body)).toBe(201);
    fake.webhookTarget = connector.body.inboundUrl;
    for (const name of ['billing', 'general']) await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name, connectorId: connector.body.id });
    const apiKey = tenant.body.apiKey as string;
    return {
      apiKey,
      botEvents: async (handoverId: string) =>
        (await t!.api('GET', `/v1/handovers/${handoverId}/events`, { token: apiKey })).body.events as Array<{ type: string; data: any }>,
    };
  }

  /** A handover whose conversation is with its group and whose conversation id is stored. */
  async function handOver(apiKey: string, body: Record<string, unknown>): Promise<{ handoverId: string; conversation: FreshchatConversation }> {
    const created = await t!.api('POST', '/v1/handovers', { token: apiKey, body });
    expect(created.status).toBe(201);
    const handoverId = created.body.id as string;
    const conversation = await eventually(async () => {
      const c = fake!.conversationForHandover(handoverId);
      return c?.assignedGroupId ? c : null;
    }, 'the conversation assigned to its group');
    await eventually(
      async () => (await t!.db.query<{ external_ref: string | null }>('select external_ref from handovers where id = $1', [handoverId])).rows[0]?.external_ref,
      'the conversation id stored',
    );
    return { handoverId, conversation };
  }

  it('refuses a webhook with a missing or forged X-Freshchat-Signature (401 invalid_signature) and a body of another shape (400)', async () => {
    await setUp();
    const body = JSON.stringify({
      actor: { actor_type: 'agent', actor_id: 'a' },
      action: 'conversation_resolution',
      action_time: new Date().toISOString(),
      data: { resolve: { resolver: 'agent', resolver_id: 'a', conversation: { conversation_id: 'c' } } },
    });
    const missing = await fake!.post(body, {});
    expect(missing.status).toBe(401);
    expect(missing.body.error.code).toBe('invalid_signature');
    const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const forged = await fake!.post(body, fake!.sign(body, otherKey));
    expect(forged.status).toBe(401);
    expect(forged.body.error.code).toBe('invalid_signature');
    const tampered = await fake!.post(body.replace('"agent"', '"user"'), fake!.sign(body));
    expect(tampered.body.error.code).toBe('invalid_signature');
    const garbage = await fake!.post(body, { 'x-freshchat-signature': 'not base64 at all!' });
    expect(garbage.body.error.code).toBe('invalid_signature');
    const noAction = JSON.stringify({ data: {} });
    const invalid = await fake!.post(noAction, fake!.sign(noAction));
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.code).toBe('invalid_request');
    const wrongTypes = JSON.stringify({
      action: 'message_create',
      action_time: 'now',
      data: { message: { id: 'm', conversation_id: 'c', actor_type: 'agent', message_parts: [{ text: { content: 42 } }] } },
    });
    const refused = await fake!.post(wrongTypes, fake!.sign(wrongTypes));
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('invalid_request');
  });

  it('takes the public key as Freshchat shows it, with or without the PEM lines', async () => {
    await setUp((f) => ({ webhookPublicKey: f.publicKeyPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ' ') }));
    const body = JSON.stringify({
      action: 'conversation_reopen',
      action_time: new Date().toISOString(),
      data: { reopen: { conversation: { conversation_id: 'c' } } },
    });
    expect(await fake!.post(body, fake!.sign(body))).toMatchObject({ status: 200, body: { ok: true, duplicate: false } });
  });

  it('applies a redelivered webhook once (same body, X-Retry-Count one higher), for messages, assignment and resolving', async () => {
    const { apiKey, botEvents } = await setUp({ groups: { billing: 'grp-billing' } });
    const { handoverId, conversation } = await handOver(apiKey, { conversationId: 'c-redeliver', queue: 'general', user: { id: 'u-redeliver' } });
    const ada = fake!.agents[1]!;
    for (const act of [
      () => fake!.assign(conversation.id, ada),
      () => fake!.agentReply(conversation.id, 'hello & welcome'),
      () => fake!.moveToGroup(conversation.id, 'grp-billing'),
      () => fake!.resolve(conversation.id),
    ]) {
      expect((await act()).body).toEqual({ ok: true, duplicate: false });
      const again = await fake!.resend(fake!.deliveries.at(-1)!);
      expect(again).toEqual({ status: 200, body: { ok: true, duplicate: true } });
    }
    const events = await eventually(async () => {
      const list = await botEvents(handoverId);
      return list.some((e) => e.type === 'handover.ended') ? list : null;
    }, 'the end at the bot');
    expect(events.filter((e) => e.type === 'handover.accepted').map((e) => e.data.agent)).toEqual([{ id: `freshchat:${ada.id}` }]);
    expect(events.filter((e) => e.type === 'message.created').map((e) => e.data.message.text)).toEqual(['hello & welcome']);
    expect(events.filter((e) => e.type === 'handover.transferred').map((e) => e.data)).toEqual([{ groupId: 'grp-billing', queue: 'billing' }]);
    expect(events.filter((e) => e.type === 'handover.ended').map((e) => e.data.reason)).toEqual(['agent_ended']);
    // The agent resolved it: nothing is resolved again from our side.
    expect(conversation.updates.filter((u) => u.status === 'resolved')).toEqual([]);
  });

  it('ends: the user ending resolves the conversation once, and its echo changes nothing; a returning user is found by reference_id', async () => {
    const { apiKey, botEvents } = await setUp();
    const first = await handOver(apiKey, { conversationId: 'c-first', queue: 'general', user: { id: 'u-ends' } });
    await fake!.resolve(first.conversation.id);
    await eventually(async () => (await botEvents(first.handoverId)).some((e) => e.type === 'handover.ended'), 'the first end');
    const second = await handOver(apiKey, { conversationId: 'c-second', queue: 'general', user: { id: 'u-ends' } });
    expect(second.conversation.userId).toBe(first.conversation.userId);
    expect(fake!.users).toHaveLength(1);
    const end = await t!.api('POST', `/v1/handovers/${second.handoverId}/end`, { token: apiKey, body: { reason: 'user_ended' } });
    expect(end.status).toBe(200);
    await eventually(async () => second.conversation.status === 'resolved', 'the conversation resolved');
    expect(second.conversation.updates.filter((u) => u.status === 'resolved')).toHaveLength(1);
    const echo = await eventually(
      async () => fake!.deliveries.find((d) => d.body.includes('conversation_resolution') && d.body.includes(second.conversation.id)),
      'the echo of our resolve',
    );
    expect(echo.status).toBe(200);
    const events = await botEvents(second.handoverId);
    expect(events.filter((e) => e.type === 'handover.ended').map((e) => e.data.reason)).toEqual(['user_ended']);
    expect(fake!.refused).toEqual([]);
  });

  it('goes on with the conversation an earlier try opened when a start fails half-way', async () => {
    const { apiKey } = await setUp();
    fake!.failNext.set('PUT /conversations/:id', 1);
    const { conversation } = await handOver(apiKey, {
      conversationId: 'c-retry',
      queue: 'general',
      user: { id: 'u-retry' },
      transcript: [{ role: 'user', text: 'help' }],
    });
    expect(fake!.conversations.size).toBe(1);
    expect(conversation.messages.filter((m) => m.message_type === 'private')).toHaveLength(1);
    expect(conversation.updates).toEqual([{ assigned_group_id: 'grp-support' }]);
  });

  it('routes to the group of the queue or of the metadata', async () => {
    const { apiKey } = await setUp({ groups: { billing: 'grp-billing' } });
    const byQueue = await handOver(apiKey, { conversationId: 'c-q', queue: 'billing', user: { id: 'u-q' } });
    const byMetadata = await handOver(apiKey, { conversationId: 'c-m', queue: 'billing', user: { id: 'u-m' }, metadata: { freshchatGroupId: 'grp-support' } });
    const byDefault = await handOver(apiKey, { conversationId: 'c-d', queue: 'general', user: { id: 'u-d' } });
    expect([byQueue, byMetadata, byDefault].map((h) => h.conversation.assignedGroupId)).toEqual(['grp-billing', 'grp-support', 'grp-support']);
    expect(fake!.refused).toEqual([]);
  });

  it("relays attachments: the user's images as image parts, other files as links; the agent's images and files as attachments", async () => {
    const { apiKey, botEvents } = await setUp();
    const { handoverId, conversation } = await handOver(apiKey, { conversationId: 'c-files', queue: 'general', user: { id: 'u-files' } });
    const sent = await t!.api('POST', `/v1/handovers/${handoverId}/messages`, {
      token: apiKey,
      body: {
        id: 'm-1',
        text: 'see these',
        attachments: [
          { url: 'https://files.example.com/a.png', name: 'a.png', contentType: 'image/png' },
          { url: 'https://files.example.com/b.pdf', name: 'b.pdf', contentType: 'application/pdf' },
        ],
      },
    });
    expect(sent.status).toBe(202);
    const message = await eventually(async () => conversation.messages.filter((m) => m.actor_type === 'user')[1], 'the user message');
    expect(message.message_parts).toEqual([
      { text: { content: 'see these\nb.pdf: https://files.example.com/b.pdf' } },
      { image: { url: 'https://files.example.com/a.png' } },
    ]);
    await fake!.agentReply(conversation.id, 'here is the form', fake!.agents[1], [
      { file: { url: 'https://cdn.freshchat.test/form.pdf', name: 'form.pdf', content_type: 'application/pdf' } },
      { image: { url: 'https://cdn.freshchat.test/map.png' } },
    ]);
    const reply = await eventually(async () => (await botEvents(handoverId)).find((e) => e.type === 'message.created'), 'the agent reply');
    expect(reply.data.message).toMatchObject({
      text: 'here is the form',
      attachments: [
        { url: 'https://cdn.freshchat.test/form.pdf', name: 'form.pdf', contentType: 'application/pdf' },
        { url: 'https://cdn.freshchat.test/map.png' },
      ],
    });
    // Notes are not replies: an agent's private message, a bot's private note.
    const ada = fake!.agents[1]!;
    for (const extra of [{ message_type: 'private' }, { message_type: 'normal', botsPrivateNote: true }]) {
      const body = JSON.stringify({
        actor: { actor_type: 'agent', actor_id: ada.id },
        action: 'message_create',
        action_time: new Date().toISOString(),
        data: {
          message: {
            id: `note-${extra.message_type}`,
            conversation_id: conversation.id,
            actor_type: 'agent',
            actor_id: ada.id,
            message_parts: [{ text: { content: 'internal' } }],
            ...extra,
          },
        },
      });
      expect(await fake!.post(body, fake!.sign(body))).toMatchObject({ status: 200, body: { duplicate: false } });
    }
    await fake!.agentReply(conversation.id, 'last');
    await eventually(async () => (await botEvents(handoverId)).some((e) => e.type === 'message.created' && e.data.message.text === 'last'), 'the last reply');
    expect((await botEvents(handoverId)).filter((e) => e.type === 'message.created').map((e) => e.data.message.text)).toEqual(['here is the form', 'last']);
    expect(fake!.refused).toEqual([]);
  });
  it('counts the agents available in the group of the queue, leaving out its own agent and deactivated ones', async () => {
    const { apiKey } = await setUp({ groups: { billing: 'grp-billing' } }, { 'connectors.availabilityRefreshMs': 100 });
    const [bot, ada] = fake!.agents;
    fake!.agents = [
      { ...bot!, availability_status: 'AVAILABLE', groups: ['grp-support', 'grp-billing'] },
      { ...ada!, availability_status: 'AVAILABLE', groups: ['grp-support'] },
      { id: 'agt-bill', first_name: 'Bill', email: 'bill@acme.test', availability_status: 'UNAVAILABLE', is_deactivated: false, groups: ['grp-billing'] },
      { id: 'agt-gone', first_name: 'Gone', email: 'gone@acme.test', availability_status: 'AVAILABLE', is_deactivated: true, groups: ['grp-billing'] },
    ];
    const ask = (queue: string) => t!.api('GET', `/v1/availability?queue=${queue}`, { token: apiKey });
    const billing = await eventually(async () => {
      const res = await ask('billing');
      return res.body.reason === 'no_agents' ? res : null;
    }, 'billing without agents');
    expect(billing.body).toMatchObject({ available: false, agentsOnline: 0 });
    expect((await ask('general')).body).toMatchObject({ available: true, agentsOnline: 1 });
    // Bill sets himself available: the billing queue opens.
    fake!.agents[2]!.availability_status = 'AVAILABLE';
    await eventually(async () => ((await ask('billing')).body.agentsOnline === 1 ? true : null), 'billing with Bill');
    expect(fake!.refused).toEqual([]);
  });
});
