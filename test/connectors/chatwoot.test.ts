import { createHmac, randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeChatwoot, type FakeChatwoot } from '../fakes/chatwoot.js';
import { closeTenantWork, sharedServices } from '../support/shared-services.js';
import { eventually, type TestService } from '../support/test-service.js';

describe('chatwoot connector against its fake (pg)', () => {
  // One service per set of settings for the cases; each has a tenant and fake of its own, and its
  // handovers are ended and its deliveries settled before its fake closes.
  const service = sharedServices('pg');
  let t: TestService | undefined;
  let tenantOfCase: { id: string; apiKey: string } | undefined;
  let fake: FakeChatwoot | undefined;
  afterEach(async () => {
    try {
      if (t && tenantOfCase) await closeTenantWork(t, tenantOfCase);
    } finally {
      await fake?.close();
      t = tenantOfCase = fake = undefined;
    }
  });

  async function setUp(configOf: Record<string, unknown> | ((fake: FakeChatwoot) => Record<string, unknown>) = {}, settings: Record<string, unknown> = {}) {
    t = await service(settings);
    fake = await startFakeChatwoot();
    const config = typeof configOf === 'function' ? configOf(fake) : configOf;
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Woot' });
    tenantOfCase = { id: tenant.body.id, apiKey: tenant.body.apiKey };
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'chatwoot',
      name: 'chatwoot',
      config: {
        baseUrl: fake.url,
        accountId: fake.accountId,
        inboxId: fake.inboxId,
        userToken: fake.userToken,
        botToken: fake.botToken,
        webhookSecret: fake.webhookSecret,
        ...config,
      },
    });
    expect(connector.status).toBe(201);
    fake.webhookTarget = connector.body.inboundUrl;
    for (const name of ['billing', 'general']) await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name, connectorId: connector.body.id });
    return {
      apiKey: tenant.body.apiKey as string,
      botEvents: async (handoverId: string) =>
        (await t!.api('GET', `/v1/handovers/${handoverId}/events`, { token: tenant.body.apiKey })).body.events as Array<{ type: string; data: any }>,
    };
  }

  async function handOver(apiKey: string, body: Record<string, unknown>) {
    const created = await t!.api('POST', '/v1/handovers', { token: apiKey, body });
    expect(created.status).toBe(201);
    return eventually(async () => {
      const c = fake!.conversationForHandover(created.body.id);
      return c?.toggles.includes('open') ? c : null;
    }, 'the conversation opened for agents');
  }

  it('routes to the team of the queue or of the metadata, and reuses a contact whose identifier is taken', async () => {
    const { apiKey } = await setUp({ teamId: 9, teams: { billing: 4 } });
    // Availability is counted per team: each team has Cora.
    for (const team of [4, 9]) fake!.teams.set(team, [1]);
    const byQueue = await handOver(apiKey, { conversationId: 'c-1', queue: 'billing', user: { id: 'u-1', name: 'Una' } });
    const byMetadata = await handOver(apiKey, { conversationId: 'c-2', queue: 'billing', user: { id: 'u-1' }, metadata: { chatwootTeamId: 6 } });
    const byDefault = await handOver(apiKey, { conversationId: 'c-3', queue: 'general', user: { id: 'u-1' } });
    expect([byQueue.teamId, byMetadata.teamId, byDefault.teamId]).toEqual([4, 6, 9]);
    expect(fake!.contacts).toHaveLength(1);
    expect(new Set([byQueue, byMetadata, byDefault].map((c) => c.contactId)).size).toBe(1);
    // Conversations start pending (the bot's), then open for agents; the transcript is a private note.
    expect(byQueue.toggles).toEqual(['open']);
    expect(byQueue.messages[0]).toMatchObject({ private: true, message_type: 'outgoing' });
    // Contacts were handled with the user's token only: nothing was refused but the taken identifiers.
    expect(fake!.refused.map((r) => `${r.status} ${r.reason}`)).toEqual(['422 identifier taken', '422 identifier taken']);
  });

  it("opens the conversation on the contact Chatwoot already knows by the user's email (emails are unique in an account)", async () => {
    const { apiKey } = await setUp();
    // Known from the widget or an email thread: another identifier (or none), the same email.
    fake!.contacts.push({ id: 777, identifier: 'widget-visitor-1', name: 'Eve', email: 'eve@example.com', sourceId: 'src-eve' });
    const conversation = await handOver(apiKey, { conversationId: 'c-email', queue: 'general', user: { id: 'u-eve', name: 'Eve', email: 'Eve@Example.com' } });
    expect(conversation.contactId).toBe(777);
    expect(fake!.contacts).toHaveLength(1);
    expect(fake!.refused.map((r) => `${r.status} ${r.reason}`)).toEqual(['422 email taken']);
  });

  it('retries a start that failed half-way into the conversation it already opened', async () => {
    const { apiKey } = await setUp();
    fake!.failNext.set('POST /conversations/:id/toggle_status', 1);
    const conversation = await handOver(apiKey, { conversationId: 'c-retry', queue: 'general', user: { id: 'u-retry' } });
    expect(fake!.conversations.size).toBe(1);
    expect(conversation.toggles).toEqual(['open']);
    // The transcript note is posted at least once (twice here: the retry cannot know the first one landed).
    expect(conversation.messages.filter((m) => m.private).length).toBeGreaterThanOrEqual(1);
  });

  it('refuses a webhook whose timestamp is stale, even when signed with the right secret', async () => {
    await setUp();
    const body = JSON.stringify({ event: 'conversation_status_changed', id: 1, status: 'resolved' });
    const timestamp = String(Math.floor(Date.now() / 1000) - 600);
    const signature = `sha256=${createHmac('sha256', fake!.webhookSecret).update(`${timestamp}.${body}`).digest('hex')}`;
    const res = await fake!.resend({ body, headers: { 'x-chatwoot-signature': signature, 'x-chatwoot-timestamp': timestamp } });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('stale_timestamp');
    const noEvent = JSON.stringify({ id: 1 });
    const bad = await fake!.resend({ body: noEvent, headers: fake!.sign(noEvent) });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
  });

  it('takes a captured webhook sent again with a new X-Chatwoot-Delivery (not signed) as the duplicate it is', async () => {
    const { apiKey } = await setUp();
    const created = await t!.api('POST', '/v1/handovers', { token: apiKey, body: { conversationId: 'c-replay', queue: 'general', user: { id: 'u-replay' } } });
    const conversation = await eventually(async () => fake!.conversationForHandover(created.body.id), 'the conversation');
    // Chatwoot's events name its conversation: wait until the handover knows it, or the event finds nothing.
    await eventually(
      async () =>
        (await t!.db.query<{ external_ref: string | null }>('select external_ref from handovers where id = $1', [created.body.id])).rows[0]?.external_ref,
      'the conversation id stored',
    );
    expect((await fake!.changeTeam(conversation.id, { id: 5, name: 'Billing' })).body).toEqual({ ok: true, duplicate: false });
    const captured = fake!.deliveries.at(-1)!;
    for (let i = 0; i < 3; i++) {
      const replay = await fake!.resend({ body: captured.body, headers: { ...captured.headers, 'x-chatwoot-delivery': `forged-${i}` } });
      expect(replay.status).toBe(200);
      expect(replay.body).toEqual({ ok: true, duplicate: true });
    }
    const events = await t!.api('GET', `/v1/handovers/${created.body.id}/events`, { token: apiKey });
    expect(events.body.events.filter((e: { type: string }) => e.type === 'handover.transferred')).toHaveLength(1);
  });

  it("finds a returning user's contact by its exact identifier among many similar ones, past the first page", async () => {
    const { apiKey } = await setUp();
    for (let i = 0; i < 20; i++) fake!.contacts.push({ id: 5000 + i, identifier: `u-1${i}`, name: `Similar ${i}`, sourceId: randomUUID() });
    fake!.contacts.push({ id: 6000, identifier: 'u-1', name: 'The one', sourceId: randomUUID() });
    const conversation = await handOver(apiKey, { conversationId: 'c-returning', queue: 'general', user: { id: 'u-1' } });
    expect(conversation.contactId).toBe(6000);
    expect(fake!.contacts).toHaveLength(21);
  });

  it('reads what it missed while unreachable: an agent reply and the resolve whose webhooks were lost', async () => {
    const { apiKey, botEvents } = await setUp({ reconcileIntervalMs: 300 }, { 'streams.tickMs': 100 });
    const conversation = await handOver(apiKey, { conversationId: 'c-outage', queue: 'general', user: { id: 'u-outage' } });
    const created = fake!.conversationForHandover(conversation.additionalAttributes.handover_id)!;
    await eventually(
      async () =>
        (await t!.db.query<{ external_ref: string | null }>('select external_ref from handovers where id = $1', [created.additionalAttributes.handover_id]))
          .rows[0]?.external_ref,
      'the conversation id stored',
    );
    fake!.webhooksLost = true;
    await fake!.agentReply(created.id, 'sent while you were away');
    await eventually(
      async () =>
        (await botEvents(created.additionalAttributes.handover_id)).some(
          (e) => e.type === 'message.created' && e.data.message.text === 'sent while you were away',
        ),
      'the missed reply',
    );
    await fake!.resolve(created.id);
    await eventually(async () => (await botEvents(created.additionalAttributes.handover_id)).some((e) => e.type === 'handover.ended'), 'the missed resolve');
    const events = await botEvents(created.additionalAttributes.handover_id);
    expect(events.filter((e) => e.type === 'message.created').map((e) => e.data.message.text)).toEqual(['sent while you were away']);
    expect(events.find((e) => e.type === 'handover.ended')!.data).toMatchObject({ reason: 'agent_ended' });
  });

  it('shows a reply sent before the handover knew its conversation, once: its webhook matched nothing, reading the conversation finds it', async () => {
    const { apiKey, botEvents } = await setUp({}, { 'streams.tickMs': 100 });
    const early: Array<{ status: number }> = [];
    // An automation answers the moment the conversation exists, before the create call returns: the
    // service cannot yet tell which handover the webhook is about.
    fake!.onConversationCreated = async (c) => early.push(await fake!.agentReply(c.id, 'an automated welcome'));
    const conversation = await handOver(apiKey, { conversationId: 'c-early', queue: 'general', user: { id: 'u-early' } });
    const handoverId = conversation.additionalAttributes.handover_id as string;
    expect(early).toEqual([expect.objectContaining({ status: 200 })]);
    await eventually(
      async () => (await botEvents(handoverId)).some((e) => e.type === 'message.created' && e.data.message.text === 'an automated welcome'),
      'the early reply, from reading the conversation',
    );
    await fake!.agentReply(conversation.id, 'and a person after it');
    await eventually(
      async () => (await botEvents(handoverId)).some((e) => e.type === 'message.created' && e.data.message.text === 'and a person after it'),
      'the next reply',
    );
    const texts = (await botEvents(handoverId)).filter((e) => e.type === 'message.created').map((e) => e.data.message.text);
    expect(texts).toEqual(['an automated welcome', 'and a person after it']);
  });

  it("shows the user typing through the API inbox's public typing endpoint", async () => {
    const { apiKey } = await setUp((f) => ({ inboxIdentifier: f.inboxIdentifier }));
    const conversation = await handOver(apiKey, { conversationId: 'c-typing', queue: 'general', user: { id: 'u-typing' } });
    const handoverId = conversation.additionalAttributes.handover_id as string;
    for (const typing of [true, false])
      expect((await t!.api('POST', `/v1/handovers/${handoverId}/typing`, { token: apiKey, body: { typing } })).status).toBe(202);
    await eventually(async () => (fake!.contactTyping.get(conversation.id)?.length ?? 0) >= 2, 'the typing at Chatwoot');
    expect(fake!.contactTyping.get(conversation.id)).toEqual(['on', 'off']);
    expect(fake!.refused).toEqual([]);
  });

  it('counts the agents online in the team of the queue, not in the whole account', async () => {
    const { apiKey } = await setUp({ teamId: 9, teams: { billing: 4 } }, { 'connectors.availabilityRefreshMs': 100 });
    fake!.agents = [
      { id: 1, name: 'Cora', availability_status: 'online' },
      { id: 2, name: 'Bill', availability_status: 'offline' },
    ];
    fake!.teams.set(4, [2]);
    fake!.teams.set(9, [1, 2]);
    const ask = (queue: string) => t!.api('GET', `/v1/availability?queue=${queue}`, { token: apiKey });
    await ask('billing');
    const billing = await eventually(async () => {
      const res = await ask('billing');
      return res.body.reason === 'no_agents' ? res : null;
    }, 'billing without agents');
    expect(billing.body).toMatchObject({ available: false, agentsOnline: 0 });
    const general = await ask('general');
    expect(general.body).toMatchObject({ available: true, agentsOnline: 1 });
  });
});
