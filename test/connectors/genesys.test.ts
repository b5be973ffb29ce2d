import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeGenesys, type FakeGenesys, type GenesysConversation } from '../fakes/genesys.js';
import { closeTenantWork, sharedServices } from '../support/shared-services.js';
import { eventually, type TestService } from '../support/test-service.js';

describe('genesys connector against its fake (pg)', () => {
  // One service per set of settings for the cases; each has a tenant and fake of its own, and its
  // handovers are ended and its deliveries settled before its fake closes.
  const service = sharedServices('pg');
  let t: TestService | undefined;
  let tenantOfCase: { id: string; apiKey: string } | undefined;
  let fake: FakeGenesys | undefined;
  afterEach(async () => {
    try {
      if (t && tenantOfCase) await closeTenantWork(t, tenantOfCase);
    } finally {
      await fake?.close();
      t = tenantOfCase = fake = undefined;
    }
  });

  async function setUp(prepare: (fake: FakeGenesys) => void = () => {}, overrides: Record<string, unknown> = {}) {
    t = await service();
    fake = await startFakeGenesys();
    prepare(fake);
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Gen' });
    tenantOfCase = { id: tenant.body.id, apiKey: tenant.body.apiKey };
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'genesys',
      name: 'genesys',
      config: {
        apiBaseUrl: fake.url,
        loginBaseUrl: fake.url,
        clientId: fake.clientId,
        clientSecret: fake.clientSecret,
        integrationId: fake.integrationId,
        webhookSecret: fake.webhookSecret,
        ...overrides,
      },
    });
    expect(connector.status, JSON.stringify(connector.body)).toBe(201);
    fake.webhookTarget = connector.body.inboundUrl;
    await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'general', connectorId: connector.body.id });
    const apiKey = tenant.body.apiKey as string;
    return {
      apiKey,
      botEvents: async (handoverId: string) =>
        (await t!.api('GET', `/v1/handovers/${handoverId}/events`, { token: apiKey })).body.events as Array<{ type: string; data: any }>,
    };
  }

  /** A handover whose Genesys conversation exists and whose reference is stored. */
  async function handOver(apiKey: string, conversationId: string): Promise<{ handoverId: string; conversation: GenesysConversation }> {
    const created = await t!.api('POST', '/v1/handovers', {
      token: apiKey,
      body: { conversationId, queue: 'general', user: { id: `u-${conversationId}`, name: 'Uma' } },
    });
    expect(created.status).toBe(201);
    const handoverId = created.body.id as string;
    const conversation = await eventually(async () => fake!.conversationFor(handoverId), 'the Genesys conversation');
    await eventually(
      async () => (await t!.db.query<{ external_ref: string | null }>('select external_ref from handovers where id = $1', [handoverId])).rows[0]?.external_ref,
      'the reference stored',
    );
    return { handoverId, conversation };
  }

  const textMessage = (to: string, id = 'm1') =>
    JSON.stringify({
      id,
      channel: {
        id: fake!.integrationId,
        platform: 'Open',
        type: 'Private',
        to: { id: to },
        from: { id: fake!.integrationId, idType: 'Opaque' },
        time: '2026-01-01T00:00:00.000Z',
      },
      type: 'Text',
      text: 'hi',
      direction: 'Outbound',
    });

  it('refuses a webhook request with a missing, forged or hex X-Hub-Signature-256 (401 invalid_signature) and a body that is no normalized message (400)', async () => {
    await setUp();
    const body = textMessage('ho_unknown');
    const missing = await fake!.post(body, {});
    expect(missing.status).toBe(401);
    expect(missing.body.error.code).toBe('invalid_signature');
    const forged = await fake!.post(body, fake!.sign(body, 'another-integrations-secret'));
    expect(forged.status).toBe(401);
    expect(forged.body.error.code).toBe('invalid_signature');
    // Signed over other bytes than those sent.
    const tampered = await fake!.post(body.replace('"hi"', '"hello"'), fake!.sign(body));
    expect(tampered.body.error.code).toBe('invalid_signature');
    // The right HMAC in hex: Genesys sends base64, and only that verifies.
    const { createHmac } = await import('node:crypto');
    const hex = await fake!.post(body, { 'x-hub-signature-256': `sha256=${createHmac('sha256', fake!.webhookSecret).update(body).digest('hex')}` });
    expect(hex.body.error.code).toBe('invalid_signature');
    const notAMessage = JSON.stringify({ type: 'Text', text: 'no id, no channel' });
    const invalid = await fake!.post(notAMessage, fake!.sign(notAMessage));
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.code).toBe('invalid_request');
    // A well-signed message for a conversation we never opened is acknowledged and dropped.
    expect(await fake!.post(body, fake!.sign(body))).toMatchObject({ status: 200, body: { ok: true } });
  });

  it('applies a redelivered webhook request once (same body, signed again): messages, typing and the disconnect', async () => {
    const { apiKey, botEvents } = await setUp();
    const { handoverId } = await handOver(apiKey, 'c-redeliver');
    for (const act of [
      () => fake!.agentSend(handoverId, 'hello there', { nickname: 'Ada' }),
      () => fake!.agentTyping(handoverId),
      () => fake!.agentDisconnect(handoverId),
    ]) {
      expect((await act()).body).toEqual({ ok: true, duplicate: false });
      const again = await fake!.resend(fake!.deliveries.at(-1)!.message);
      expect(again.status).toBe(200);
      expect(again.body).toEqual({ ok: true, duplicate: true });
    }
    const events = await eventually(async () => {
      const list = await botEvents(handoverId);
      return list.some((e) => e.type === 'handover.ended') ? list : null;
    }, 'the end at the bot');
    expect(events.filter((e) => e.type === 'message.created').map((e) => e.data.message.text)).toEqual(['hello there']);
    expect(events.find((e) => e.type === 'handover.accepted')?.data.agent).toMatchObject({ name: 'Ada' });
    expect(events.filter((e) => e.type === 'agent.typing')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'handover.ended').map((e) => e.data.reason)).toEqual(['agent_ended']);
    // Genesys's receipts of the user's messages are acknowledged, never relayed.
    expect(fake!.deliveries.filter((d) => d.message.type === 'Receipt').every((d) => d.status === 200)).toBe(true);
  });

  it('ends from both sides: the agent disconnecting ends the handover; the user ending disconnects the conversation, or, without its id, tells the agent', async () => {
    const { apiKey, botEvents } = await setUp();
    const byAgent = await handOver(apiKey, 'c-agent');
    await fake!.agentDisconnect(byAgent.handoverId);
    const ended = await eventually(async () => (await botEvents(byAgent.handoverId)).find((e) => e.type === 'handover.ended'), 'agent_ended');
    expect(ended.data.reason).toBe('agent_ended');
    // Not echoed back: the conversation was disconnected by the agent, not by us.
    expect(byAgent.conversation.disconnectedBy).toBe('agent');

    const byUser = await handOver(apiKey, 'c-user');
    expect((await t!.api('POST', `/v1/handovers/${byUser.handoverId}/end`, { token: apiKey, body: { reason: 'user_ended' } })).status).toBe(200);
    await eventually(async () => byUser.conversation.state === 'disconnected', 'the conversation disconnected');
    expect(byUser.conversation.disconnectedBy).toBe('api');

    fake!.answerConversationId = false;
    const unnamed = await handOver(apiKey, 'c-unnamed');
    expect((await t!.api('POST', `/v1/handovers/${unnamed.handoverId}/end`, { token: apiKey, body: { reason: 'user_ended' } })).status).toBe(200);
    await eventually(async () => unnamed.conversation.inbound.some((m) => m.text === 'The user ended the conversation.'), 'the agent told');
    expect(fake!.refused).toEqual([]);
  });

  it("learns that the agent ended the chat by reading the conversation, which Open Messaging's webhook does not tell", async () => {
    const { apiKey, botEvents } = await setUp(undefined, { endPollSeconds: 1 });
    const byAgent = await handOver(apiKey, 'c-polled');
    const staying = await handOver(apiKey, 'c-staying');
    await eventually(async () => (fake!.conversationReads >= 2 ? true : null), 'the conversations read');
    expect(await botEvents(byAgent.handoverId)).not.toContainEqual(expect.objectContaining({ type: 'handover.ended' }));
    fake!.agentEnds(byAgent.handoverId);
    const ended = await eventually(async () => (await botEvents(byAgent.handoverId)).find((e) => e.type === 'handover.ended'), 'agent_ended', 15_000);
    expect(ended.data.reason).toBe('agent_ended');
    // The other conversation goes on; ours was not disconnected again by us.
    expect((await t!.api('GET', `/v1/handovers/${staying.handoverId}`, { token: apiKey })).body.state).not.toBe('ended');
    expect(byAgent.conversation.disconnectedBy).toBe('agent');
    expect(fake!.refused).toEqual([]);
  });

  it("goes on with a handover whose conversation it may not read (403), only without learning of the agent's end that way", async () => {
    const { apiKey, botEvents } = await setUp((f) => (f.refuseConversationReads = 403), { endPollSeconds: 1 });
    const { handoverId } = await handOver(apiKey, 'c-unreadable');
    await eventually(async () => (fake!.conversationReads >= 1 ? true : null), 'a read refused');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // Read once, not again and again, and the handover is not ended for it.
    expect(fake!.conversationReads).toBe(1);
    expect(await botEvents(handoverId)).not.toContainEqual(expect.objectContaining({ type: 'handover.ended' }));
    expect((await t!.api('GET', `/v1/handovers/${handoverId}`, { token: apiKey })).body.state).not.toBe('ended');
  });

  it('reuses one token for many calls and asks for a new one before it expires rather than after a 401; a revoked token is replaced after one 401', async () => {
    const { apiKey } = await setUp((f) => {
      f.tokenLifetimeSeconds = 2;
    });
    const { handoverId, conversation } = await handOver(apiKey, 'c-token');
    for (let i = 0; i < 5; i++)
      expect((await t!.api('POST', `/v1/handovers/${handoverId}/messages`, { token: apiKey, body: { id: `m-${i}`, text: `user ${i}` } })).status).toBe(202);
    await eventually(async () => conversation.inbound.length === 6, 'five messages');
    expect(fake!.tokensIssued).toHaveLength(1);
    // Let the token reach its last tenth of life (or lapse); the next call renews it first.
    await sleep(2_100);
    expect((await t!.api('POST', `/v1/handovers/${handoverId}/messages`, { token: apiKey, body: { id: 'm-late', text: 'later' } })).status).toBe(202);
    await eventually(async () => conversation.inbound.some((m) => m.text === 'later'), 'the later message');
    expect(fake!.tokensIssued).toHaveLength(2);
    expect(fake!.refused).toEqual([]);
    // A token revoked on the Genesys side: the call is refused once, then made again with a new token.
    fake!.revokeTokens();
    expect((await t!.api('POST', `/v1/handovers/${handoverId}/messages`, { token: apiKey, body: { id: 'm-revoked', text: 'after revocation' } })).status).toBe(
      202,
    );
    await eventually(async () => conversation.inbound.some((m) => m.text === 'after revocation'), 'the message after revocation');
    expect(fake!.tokensIssued).toHaveLength(3);
    expect(fake!.refused.map((r) => r.reason)).toEqual(['unknown token']);
  });

  it('a user message retried after its answer was lost reaches the agent once (same messageId and time)', async () => {
    const { apiKey } = await setUp();
    const { handoverId, conversation } = await handOver(apiKey, 'c-lost');
    fake!.loseAnswerNext = 1;
    expect((await t!.api('POST', `/v1/handovers/${handoverId}/messages`, { token: apiKey, body: { id: 'm-lost', text: 'answer lost' } })).status).toBe(202);
    expect((await t!.api('POST', `/v1/handovers/${handoverId}/messages`, { token: apiKey, body: { id: 'm-next', text: 'next one' } })).status).toBe(202);
    await eventually(async () => conversation.inbound.some((m) => m.text === 'next one'), 'the next message');
    expect(conversation.inbound.slice(1).map((m) => m.text)).toEqual(['answer lost', 'next one']);
    // The first try was answered 500 after Genesys took it; the next message went only once it was retried.
    expect(fake!.refused.map((r) => r.reason)).toEqual(['injected']);
  });

  it('relays attachments both ways, typing of the user (On only), and messages of Genesys bots without naming an agent', async () => {
    const { apiKey, botEvents } = await setUp();
    const { handoverId, conversation } = await handOver(apiKey, 'c-media');
    await t!.api('POST', `/v1/handovers/${handoverId}/typing`, { token: apiKey, body: { typing: true } });
    await t!.api('POST', `/v1/handovers/${handoverId}/typing`, { token: apiKey, body: { typing: false } });
    const sent = await t!.api('POST', `/v1/handovers/${handoverId}/messages`, {
      token: apiKey,
      body: {
        id: 'm-1',
        text: 'see these',
        attachments: [
          { url: 'https://files.example.com/a.png', name: 'a.png', contentType: 'image/png' },
          { url: 'https://files.example.com/b.pdf', name: 'b.pdf', contentType: 'application/pdf' },
          // No content type: sent as bytes (the reference requires a mime).
          { url: 'https://files.example.com/c', name: 'c' },
        ],
      },
    });
    expect(sent.status).toBe(202);
    const message = await eventually(async () => conversation.inbound.find((m) => m.text === 'see these'), 'the message with attachments');
    expect(message.content.map((c) => [c.attachment.mediaType, c.attachment.url, c.attachment.filename, c.attachment.mime])).toEqual([
      ['Image', 'https://files.example.com/a.png', 'a.png', 'image/png'],
      ['File', 'https://files.example.com/b.pdf', 'b.pdf', 'application/pdf'],
      ['File', 'https://files.example.com/c', 'c', 'application/octet-stream'],
    ]);
    expect(conversation.typing).toBe(1);
    await fake!.agentSend(handoverId, 'I am the flow bot', { originatingEntity: 'Bot' });
    await fake!.agentSend(handoverId, 'here is the form', {
      nickname: 'Ada',
      attachments: [
        {
          contentType: 'Attachment',
          attachment: { mediaType: 'File', url: 'https://api.mypurecloud.com/form.pdf', mime: 'application/pdf', filename: 'form.pdf' },
        },
      ],
    });
    const events = await eventually(async () => {
      const list = (await botEvents(handoverId)).filter((e) => e.type === 'message.created');
      return list.length === 2 ? list : null;
    }, 'both messages at the bot');
    expect(events[0]!.data.message.text).toBe('I am the flow bot');
    expect(events[1]!.data.message).toMatchObject({
      text: 'here is the form',
      attachments: [{ url: 'https://api.mypurecloud.com/form.pdf', name: 'form.pdf', contentType: 'application/pdf' }],
    });
    expect(fake!.refused).toEqual([]);
  });
  it('checks its setup: a token for the OAuth client and a read of the integration; a wrong secret or integration id is named', async () => {
    t = await service({ 'connectors.checkIntervalMs': 1000 });
    fake = await startFakeGenesys();
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Gen' });
    const config = {
      apiBaseUrl: fake.url,
      loginBaseUrl: fake.url,
      clientId: fake.clientId,
      clientSecret: fake.clientSecret,
      integrationId: fake.integrationId,
      webhookSecret: fake.webhookSecret,
    };
    const add = async (name: string, overrides: Record<string, unknown>) => {
      const res = await t!.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, { type: 'genesys', name, config: { ...config, ...overrides } });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body.id as string;
    };
    const ids = {
      good: await add('good', {}),
      secret: await add('wrong-secret', { clientSecret: 'not-the-secret' }),
      integration: await add('wrong-integration', { integrationId: '00000000-0000-4000-8000-000000000000' }),
    };
    const lines = await eventually(async () => {
      const res = await t!.admin('GET', `/v1/admin/tenants/${tenant.body.id}/connector-checks`);
      return res.body.checks?.length === 3
        ? (res.body.checks as Array<{ connectorId: string; verdict: string; problem: string | null; reason: string }>)
        : null;
    }, 'the three connectors checked');
    const line = (id: string) => lines.find((l) => l.connectorId === id)!;
    expect(line(ids.good), line(ids.good).reason).toMatchObject({ verdict: 'ok', problem: null });
    expect(line(ids.good).reason).toContain(`the Open Messaging integration ${fake.integrationId}`);
    expect(line(ids.secret)).toMatchObject({ verdict: 'failing', problem: 'credentials_rejected' });
    expect(line(ids.secret).reason).toMatch(/oauth\/token.*401.*clientId\/clientSecret refused/);
    expect(line(ids.integration)).toMatchObject({ verdict: 'failing', problem: 'not_found' });
    expect(line(ids.integration).reason).toContain('no Open Messaging integration 00000000-0000-4000-8000-000000000000 in this org');
    expect(JSON.stringify(lines)).not.toContain(fake.clientSecret);
  });
});
