import { afterEach, describe, expect, it } from 'vitest';
import { startFakeIntercom, type FakeIntercom, type IntercomConversation } from '../fakes/intercom.js';
import { closeTenantWork, sharedServices } from '../support/shared-services.js';
import { eventually, type TestService } from '../support/test-service.js';

describe('intercom connector against its fake (pg)', () => {
  // One service per set of settings for the cases; each has a tenant and fake of its own, and its
  // handovers are ended and its deliveries settled before its fake closes.
  const service = sharedServices('pg');
  let t: TestService | undefined;
  let tenantOfCase: { id: string; apiKey: string } | undefined;
  let fake: FakeIntercom | undefined;
  afterEach(async () => {
    try {
      if (t && tenantOfCase) await closeTenantWork(t, tenantOfCase);
    } finally {
      await fake?.close();
      t = tenantOfCase = fake = undefined;
    }
  });

  async function setUp(config: Record<string, unknown> = {}, settings: Record<string, unknown> = {}) {
    t = await service(settings);
    fake = await startFakeIntercom();
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Com' });
    tenantOfCase = { id: tenant.body.id, apiKey: tenant.body.apiKey };
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'intercom',
      name: 'intercom',
      config: { baseUrl: fake.url, accessToken: fake.accessToken, clientSecret: fake.clientSecret, adminId: fake.botAdminId, teamId: '501', ...config },
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

  /** A handover whose conversation is with its team and whose conversation id is stored. */
  async function handOver(apiKey: string, body: Record<string, unknown>): Promise<{ handoverId: string; conversation: IntercomConversation }> {
    const created = await t!.api('POST', '/v1/handovers', { token: apiKey, body });
    expect(created.status).toBe(201);
    const handoverId = created.body.id as string;
    const conversation = await eventually(async () => {
      const c = fake!.conversationForHandover(handoverId);
      return c?.teamAssigneeId ? c : null;
    }, 'the conversation assigned to its team');
    await eventually(
      async () => (await t!.db.query<{ external_ref: string | null }>('select external_ref from handovers where id = $1', [handoverId])).rows[0]?.external_ref,
      'the conversation id stored',
    );
    return { handoverId, conversation };
  }

  it('answers the HEAD check of the endpoint; refuses a notification with a missing or forged X-Hub-Signature (401 invalid_signature) and a body of another shape (400)', async () => {
    await setUp();
    const body = JSON.stringify({
      type: 'notification_event',
      id: 'notif_1',
      topic: 'conversation.admin.closed',
      data: { item: { id: '1', conversation_parts: { conversation_parts: [] } } },
    });
    const missing = await fake!.post(body, {});
    expect(missing.status).toBe(401);
    expect(missing.body.error.code).toBe('invalid_signature');
    const forged = await fake!.post(body, fake!.sign(body, 'another-apps-secret'));
    expect(forged.status).toBe(401);
    expect(forged.body.error.code).toBe('invalid_signature');
    // Signed over other bytes than those sent.
    const tampered = await fake!.post(body.replace('closed', 'replied'), fake!.sign(body));
    expect(tampered.body.error.code).toBe('invalid_signature');
    const notANotification = JSON.stringify({ topic: 'conversation.admin.closed' });
    const invalid = await fake!.post(notANotification, fake!.sign(notANotification));
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.code).toBe('invalid_request');
    const wrongTypes = JSON.stringify({
      type: 'notification_event',
      id: 'notif_2',
      topic: 'conversation.admin.replied',
      data: { item: { id: '1', conversation_parts: { conversation_parts: [{ id: '5', part_type: 'comment', body: 17 }] } } },
    });
    const refused = await fake!.post(wrongTypes, fake!.sign(wrongTypes));
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('invalid_request');
    // Intercom checks the endpoint with a HEAD request when the URL is saved.
    expect((await fetch(fake!.webhookTarget, { method: 'HEAD', signal: AbortSignal.timeout(10_000) })).status).toBe(200);
    expect(
      (await fetch(fake!.webhookTarget.replace(/\/connectors\/[^/]+\//, '/connectors/con_missing/'), { method: 'HEAD', signal: AbortSignal.timeout(10_000) }))
        .status,
    ).toBe(404);
    // The ping Intercom sends to a new subscription is acknowledged: its id is null, and sent twice it is
    // not a duplicate (no receipt is kept of it).
    const ping = JSON.stringify({ type: 'notification_event', id: null, topic: 'ping', data: { item: { type: 'ping', message: 'something' } } });
    expect(await fake!.post(ping, fake!.sign(ping))).toMatchObject({ status: 200, body: { ok: true, duplicate: false } });
    expect(await fake!.post(ping, fake!.sign(ping))).toMatchObject({ status: 200, body: { ok: true, duplicate: false } });
    // A topic acted on still needs its id.
    const anonymous = JSON.stringify({ type: 'notification_event', id: null, topic: 'conversation.admin.closed', data: { item: { id: '1' } } });
    expect((await fake!.post(anonymous, fake!.sign(anonymous))).status).toBe(400);
  });

  it('applies a redelivered notification once (same id, one more attempt, signed again), for replies, assignment and closing', async () => {
    const { apiKey, botEvents } = await setUp();
    const { handoverId, conversation } = await handOver(apiKey, { conversationId: 'c-redeliver', queue: 'general', user: { id: 'u-redeliver' } });
    const ada = fake!.admins[1]!;
    for (const act of [
      () => fake!.assign(conversation.id, ada),
      () => fake!.agentReply(conversation.id, 'hello <b>there</b> & welcome'),
      () => fake!.closeConversation(conversation.id),
    ]) {
      expect((await act()).body).toEqual({ ok: true, duplicate: false });
      const delivered = fake!.deliveries.at(-1)!.notification;
      const again = await fake!.resend(delivered);
      expect(again).toEqual({ status: 200, body: { ok: true, duplicate: true } });
    }
    const events = await eventually(async () => {
      const list = await botEvents(handoverId);
      return list.some((e) => e.type === 'handover.ended') ? list : null;
    }, 'the end at the bot');
    expect(events.filter((e) => e.type === 'handover.accepted')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'handover.accepted')[0]!.data.agent).toEqual({ id: 'intercom:7002', name: 'Ada' });
    expect(events.filter((e) => e.type === 'message.created').map((e) => e.data.message.text)).toEqual(['hello <b>there</b> & welcome']);
    expect(events.filter((e) => e.type === 'handover.ended').map((e) => e.data.reason)).toEqual(['agent_ended']);
    // The agent closed it: nothing is closed again from our side.
    expect(conversation.parts.filter((p) => p.part_type === 'close')).toHaveLength(1);
  });

  it('ends: an admin closing ends the handover; the user ending closes the conversation, and its echo ends nothing twice', async () => {
    const { apiKey, botEvents } = await setUp();
    const first = await handOver(apiKey, { conversationId: 'c-agent-ends', queue: 'general', user: { id: 'u-ends' } });
    await fake!.closeConversation(first.conversation.id);
    const ended = await eventually(async () => (await botEvents(first.handoverId)).find((e) => e.type === 'handover.ended'), 'agent_ended');
    expect(ended.data.reason).toBe('agent_ended');

    const second = await handOver(apiKey, { conversationId: 'c-user-ends', queue: 'general', user: { id: 'u-ends' } });
    // The returning user's contact is reused (Intercom answered 409 naming it).
    expect(second.conversation.contactId).toBe(first.conversation.contactId);
    expect(fake!.contacts).toHaveLength(1);
    const end = await t!.api('POST', `/v1/handovers/${second.handoverId}/end`, { token: apiKey, body: { reason: 'user_ended' } });
    expect(end.status).toBe(200);
    await eventually(async () => second.conversation.state === 'closed', 'the conversation closed');
    const close = second.conversation.parts.find((p) => p.part_type === 'close')!;
    expect(close.author).toMatchObject({ type: 'admin', id: fake!.botAdminId });
    // Our own close came back as a notification, was acknowledged, and changed nothing.
    const echo = await eventually(
      async () => fake!.deliveries.find((d) => d.notification.topic === 'conversation.admin.closed' && d.notification.data.item.id === second.conversation.id),
      'the echo of our close',
    );
    expect(echo.status).toBe(200);
    const events = await botEvents(second.handoverId);
    expect(events.filter((e) => e.type === 'handover.ended').map((e) => e.data.reason)).toEqual(['user_ended']);
  });

  it('relays what an admin leaves with a close, drops an unassignment, and ends the handover when the conversation is deleted', async () => {
    const { apiKey, botEvents } = await setUp();
    const ada = fake!.admins[1]!;
    const first = await handOver(apiKey, { conversationId: 'c-close-says', queue: 'general', user: { id: 'u-close-says' } });
    expect((await fake!.assign(first.conversation.id, ada)).status).toBe(200);
    // Unassigned (nobody is named): acknowledged, nothing for the bot.
    expect(await fake!.unassign(first.conversation.id)).toEqual({ status: 200, body: { ok: true, duplicate: false } });
    expect((await fake!.closeConversation(first.conversation.id, ada, '<p>Goodbye :)</p>')).status).toBe(200);
    const events = await eventually(async () => {
      const list = await botEvents(first.handoverId);
      return list.some((e) => e.type === 'handover.ended') ? list : null;
    }, 'the end at the bot');
    // The bot is told of the join as the handover accepted.
    const told = events.filter((e) => ['handover.accepted', 'message.created', 'handover.ended'].includes(e.type));
    expect(told.map((e) => e.type)).toEqual(['handover.accepted', 'message.created', 'handover.ended']);
    expect(told[1]!.data.message.text).toBe('Goodbye :)');
    expect(told[1]!.data.agent).toMatchObject({ id: `intercom:${ada.id}` });

    const second = await handOver(apiKey, { conversationId: 'c-deleted', queue: 'general', user: { id: 'u-deleted' } });
    expect(await fake!.deleteConversation(second.conversation.id)).toEqual({ status: 200, body: { ok: true, duplicate: false } });
    const ended = await eventually(async () => (await botEvents(second.handoverId)).find((e) => e.type === 'handover.ended'), 'the end at the bot');
    expect(ended.data.reason).toBe('agent_ended');
  });

  it("reuses the contact a conflict names only when it is the user's: an archived one is unarchived, another user's (matched by email) is left", async () => {
    const { apiKey } = await setUp();
    fake!.contacts.push(
      { id: 'a'.repeat(24), external_id: 'u-archived', name: null, email: null, archived: true },
      { id: 'b'.repeat(24), external_id: 'someone-else', name: null, email: 'shared@example.test' },
      { id: 'c'.repeat(24), external_id: 'someone-archived', name: null, email: 'old@example.test', archived: true },
    );
    const archived = await handOver(apiKey, { conversationId: 'c-archived', queue: 'general', user: { id: 'u-archived' } });
    expect(archived.conversation.contactId).toBe('a'.repeat(24));
    expect(fake!.contacts[0]!.archived).toBe(false);
    const shared = await handOver(apiKey, { conversationId: 'c-shared-email', queue: 'general', user: { id: 'u-email', email: 'shared@example.test' } });
    const mine = fake!.contacts.find((c) => c.id === shared.conversation.contactId)!;
    expect(mine).toMatchObject({ external_id: 'u-email', email: null });
    // Another user's archived contact, matched by the email, is left archived and not used.
    const other = await handOver(apiKey, { conversationId: 'c-old-email', queue: 'general', user: { id: 'u-old', email: 'old@example.test' } });
    expect(other.conversation.contactId).not.toBe('c'.repeat(24));
    expect(fake!.contacts.find((c) => c.id === 'c'.repeat(24))!.archived).toBe(true);
  });

  it('goes on with the conversation an earlier try opened when a start fails half-way', async () => {
    const { apiKey } = await setUp();
    fake!.failNext.set('POST /conversations/:id/parts', 1);
    const { conversation } = await handOver(apiKey, {
      conversationId: 'c-retry',
      queue: 'general',
      user: { id: 'u-retry' },
      transcript: [{ role: 'user', text: 'help' }],
    });
    expect(fake!.conversations.size).toBe(1);
    expect(conversation.parts.filter((p) => p.part_type === 'note')).toHaveLength(1);
    expect(conversation.parts.filter((p) => p.part_type === 'assignment').map((p) => p.assigned_to)).toEqual([{ type: 'team', id: '501' }]);
  });

  it('routes to the team of the queue or of the metadata, as the connector admin', async () => {
    const { apiKey } = await setUp({ teams: { billing: '502' } });
    const byQueue = await handOver(apiKey, { conversationId: 'c-q', queue: 'billing', user: { id: 'u-q' } });
    const byMetadata = await handOver(apiKey, { conversationId: 'c-m', queue: 'billing', user: { id: 'u-m' }, metadata: { intercomTeamId: '501' } });
    const byDefault = await handOver(apiKey, { conversationId: 'c-d', queue: 'general', user: { id: 'u-d' } });
    expect([byQueue, byMetadata, byDefault].map((h) => h.conversation.teamAssigneeId)).toEqual(['502', '501', '501']);
    const assignment = byQueue.conversation.parts.find((p) => p.part_type === 'assignment')!;
    expect(assignment.author.id).toBe(fake!.botAdminId);
    expect(fake!.refused).toEqual([]);
  });

  it("relays attachments: the user's images as attachment_urls, other files as links; the agent's as attachments", async () => {
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
    const reply = await eventually(async () => conversation.parts.find((p) => p.part_type === 'comment' && p.author.type === 'user'), 'the user reply');
    expect(reply.body).toBe('see these\nb.pdf: https://files.example.com/b.pdf');
    expect(reply.attachments.map((a) => a.url)).toEqual(['https://files.example.com/a.png']);
    await fake!.agentReply(conversation.id, 'here is the form', fake!.admins[1], [
      {
        type: 'upload',
        name: 'form.pdf',
        url: 'https://downloads.intercomcdn.com/form.pdf',
        content_type: 'application/pdf',
        filesize: 1200,
        width: 0,
        height: 0,
      },
    ]);
    const message = await eventually(async () => (await botEvents(handoverId)).find((e) => e.type === 'message.created'), 'the agent reply');
    expect(message.data.message).toMatchObject({
      text: 'here is the form',
      attachments: [{ url: 'https://downloads.intercomcdn.com/form.pdf', name: 'form.pdf', contentType: 'application/pdf' }],
    });
    expect(fake!.refused).toEqual([]);
  });

  it('with reconcileIntervalMs, reads what it missed while unreachable: a reply and the close whose notifications were lost', async () => {
    const { apiKey, botEvents } = await setUp({ reconcileIntervalMs: 300 }, { 'streams.tickMs': 100 });
    const { handoverId, conversation } = await handOver(apiKey, { conversationId: 'c-outage', queue: 'general', user: { id: 'u-outage' } });
    await fake!.agentReply(conversation.id, 'before the outage');
    await eventually(async () => (await botEvents(handoverId)).some((e) => e.type === 'message.created'), 'the first reply');
    fake!.webhooksLost = true;
    await fake!.agentReply(conversation.id, 'sent while you were away');
    await eventually(
      async () => (await botEvents(handoverId)).some((e) => e.type === 'message.created' && e.data.message.text === 'sent while you were away'),
      'the missed reply',
    );
    await fake!.closeConversation(conversation.id, fake!.admins[1]!, '<p>Closing this, bye</p>');
    await eventually(async () => (await botEvents(handoverId)).some((e) => e.type === 'handover.ended'), 'the missed close');
    const events = await botEvents(handoverId);
    // The reply taken from its notification is not taken again from the conversation; what the admin
    // left with the close comes before the end.
    expect(events.filter((e) => e.type === 'message.created').map((e) => e.data.message.text)).toEqual([
      'before the outage',
      'sent while you were away',
      'Closing this, bye',
    ]);
    expect(events.find((e) => e.type === 'handover.ended')!.data).toMatchObject({ reason: 'agent_ended' });
    expect(fake!.refused).toEqual([]);
  });
});
