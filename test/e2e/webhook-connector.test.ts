import { afterEach, describe, expect, it } from 'vitest';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { startSignedWebhookServer, type SignedWebhookServer } from '../fakes/signed-webhook-server.js';
import { firstArrivals, messageTexts, numbered } from '../support/receivers.js';
import { eventually, startTestService, type DbKind, type TestService } from '../support/test-service.js';

const MESSAGES = 200;
const HELPDESK_SECRET = 'whsec_' + Buffer.from('helpdesk-shared-secret-of-32-bytes!!').toString('base64');

export async function setUpWebhookTenant(t: TestService, botUrl: string, helpdesk: GenericHelpdesk, queue: Record<string, unknown> = {}) {
  const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Globex', webhookUrl: botUrl });
  const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
    type: 'webhook',
    name: 'our-helpdesk',
    config: { url: helpdesk.url, secret: helpdesk.secret },
  });
  expect(connector.status).toBe(201);
  expect(JSON.stringify(connector.body)).not.toContain(helpdesk.secret);
  helpdesk.inboundUrl = connector.body.inboundUrl;
  const q = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'helpdesk', connectorId: connector.body.id, ...queue });
  expect(q.status).toBe(201);
  return {
    tenantId: tenant.body.id as string,
    apiKey: tenant.body.apiKey as string,
    webhookSecret: tenant.body.webhookSecret as string,
    connectorId: connector.body.id as string,
  };
}

describe.each<DbKind>(['pglite', 'pg'])('bot ⇄ generic webhook helpdesk, end to end over HTTP (%s)', (kind) => {
  let t: TestService | undefined;
  let bot: SignedWebhookServer | undefined;
  let helpdesk: GenericHelpdesk | undefined;
  afterEach(async () => {
    await t?.close();
    await bot?.close();
    await helpdesk?.close();
  });

  /** A service, the bot's webhook server and a generic helpdesk, with a tenant that hands over to it. */
  async function world(settings: Parameters<typeof startTestService>[1] = {}) {
    const service = (t = await startTestService(kind, settings));
    let botSecret = '';
    const botServer = (bot = await startSignedWebhookServer(() => botSecret));
    const desk = (helpdesk = await startGenericHelpdesk(HELPDESK_SECRET));
    const setup = await setUpWebhookTenant(service, botServer.url, desk);
    botSecret = setup.webhookSecret;
    return { t: service, bot: botServer, helpdesk: desk, setup };
  }

  it(`relays ${MESSAGES} messages each way in order through a helpdesk speaking the generic protocol`, async () => {
    const { t, bot, helpdesk, setup } = await world();
    const auth = { token: setup.apiKey };

    const created = await t.api('POST', '/v1/handovers', {
      ...auth,
      body: {
        conversationId: 'c-9',
        queue: 'helpdesk',
        user: { id: 'u-9', email: 'u9@example.com' },
        transcript: [{ role: 'user', text: 'help' }],
        metadata: { plan: 'gold' },
      },
    });
    expect(created.status).toBe(201);
    const handoverId: string = created.body.id;
    await helpdesk.waitFor((r) => r.some((w) => w.body.type === 'handover.requested'), 10_000, 'handover.requested');
    expect(helpdesk.eventsFor(handoverId, 'handover.requested')[0]).toMatchObject({
      handoverId,
      conversationId: 'c-9',
      data: { queue: 'helpdesk', user: { id: 'u-9' }, transcript: [{ role: 'user', text: 'help' }], metadata: { plan: 'gold' } },
    });

    const joined = await helpdesk.send({ type: 'agent.joined', handoverId, data: { agent: { id: 'hd-7', name: 'Hal' } } });
    expect(joined.status).toBe(200);
    await bot.waitFor((r) => r.some((w) => w.body.type === 'handover.accepted'), 10_000, 'handover.accepted');

    const userSide = (async () => {
      for (let i = 0; i < MESSAGES; i++) {
        const res = await t!.api('POST', `/v1/handovers/${handoverId}/messages`, { ...auth, body: { id: `u-${i}`, text: `user ${i}` } });
        expect(res.status).toBe(202);
      }
    })();
    const agentSide = (async () => {
      for (let i = 0; i < MESSAGES; i++) {
        const res = await helpdesk!.send({ type: 'message.created', handoverId, data: { message: { id: `hd-msg-${i}`, text: `agent ${i}` } } });
        expect(res.status).toBe(200);
      }
    })();
    await Promise.all([userSide, agentSide]);

    // A helpdesk retry (same webhook id) and a resent message id are both stored once.
    const retry = await helpdesk.send(
      { type: 'message.created', handoverId, data: { message: { id: 'hd-msg-3', text: 'agent 3' } } },
      { webhookId: 'fixed-id' },
    );
    const retryAgain = await helpdesk.send(
      { type: 'message.created', handoverId, data: { message: { id: 'hd-msg-3', text: 'agent 3' } } },
      { webhookId: 'fixed-id' },
    );
    expect(retry.status).toBe(200);
    expect(retryAgain.body).toMatchObject({ ok: true, duplicate: true });

    await helpdesk.waitFor(
      (r) => firstArrivals(r.map((w) => w.body)).filter((b) => b.type === 'message.created').length >= MESSAGES,
      30_000,
      'user messages at the helpdesk',
    );
    expect(messageTexts(helpdesk.eventsFor(handoverId))).toEqual(numbered('user', MESSAGES));

    await bot.waitFor(
      (r) => firstArrivals(r.map((w) => w.body)).filter((b) => b.type === 'message.created').length >= MESSAGES,
      30_000,
      'agent messages at the bot',
    );
    expect(messageTexts(bot.received.map((r) => r.body))).toEqual(numbered('agent', MESSAGES));

    const end = await helpdesk.send({ type: 'handover.ended', handoverId, data: { reason: 'agent_ended' } });
    expect(end.status).toBe(200);
    await bot.waitFor((r) => r.some((w) => w.body.type === 'handover.ended'), 10_000, 'handover.ended');
    expect(bot.received.find((w) => w.body.type === 'handover.ended')!.body).toMatchObject({ handoverId, data: { reason: 'agent_ended' } });

    // Never echoed: the agent side's own messages and its end are not sent back to it. Nothing is left
    // to deliver to it, and it received the start and the user's messages only.
    await eventually(async () => {
      const { rows } = await t!.db.query<{ n: number }>(
        `select count(*)::int as n from outbox where handover_id = $1 and target = 'agent' and state = 'pending'`,
        [handoverId],
      );
      return rows[0]!.n === 0;
    }, 'nothing pending for the helpdesk');
    const kinds = helpdesk.eventsFor(handoverId).map((e) => e.type as string);
    expect(kinds.filter((k) => k === 'handover.requested')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'message.created')).toHaveLength(MESSAGES);
    expect(kinds.filter((k) => k !== 'handover.requested' && k !== 'message.created')).toEqual([]);
    expect(helpdesk.rejected).toEqual([]);
    expect(bot.rejected).toEqual([]);
  });

  it('sends a retried handover.ended with the same body as its first try', async () => {
    const { t, helpdesk, setup } = await world();
    // The end's first try is refused; every try's body is kept.
    const tries = new Map<string, string[]>();
    helpdesk.respond = (body, attempt) => {
      if (body.type !== 'handover.ended') return { status: 200 };
      tries.set(String(body.id), [...(tries.get(String(body.id)) ?? []), JSON.stringify(body)]);
      return { status: attempt === 1 ? 503 : 200, headers: { 'retry-after': '0' } };
    };
    const created = await t.api('POST', '/v1/handovers', { token: setup.apiKey, body: { conversationId: 'c-same', queue: 'helpdesk', user: { id: 'u' } } });
    expect(created.status).toBe(201);
    const handoverId: string = created.body.id;
    expect((await t.api('POST', `/v1/handovers/${handoverId}/end`, { token: setup.apiKey, body: { reason: 'user_ended' } })).status).toBe(200);
    await eventually(async () => (helpdesk!.eventsFor(handoverId, 'handover.ended').length > 0 ? true : null), 'handover.ended taken');
    const [bodies] = [...tries.values()];
    expect(bodies!.length).toBe(2);
    expect(bodies![1]).toBe(bodies![0]);
    const ended = helpdesk.eventsFor(handoverId, 'handover.ended')[0]!;
    expect(Date.parse(String(ended.createdAt))).not.toBeNaN();
  });

  it('a message the helpdesk refuses for good ends the handover failed, and the helpdesk is told of that end', async () => {
    const { t, bot, helpdesk, setup } = await world();
    helpdesk.respond = (body) => (body.type === 'message.created' ? { status: 422 } : { status: 200 });
    const created = await t.api('POST', '/v1/handovers', { token: setup.apiKey, body: { conversationId: 'c-refused', queue: 'helpdesk', user: { id: 'u' } } });
    const handoverId: string = created.body.id;
    await eventually(async () => (helpdesk.eventsFor(handoverId, 'handover.requested').length > 0 ? true : null), 'the start taken');
    expect((await t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: setup.apiKey, body: { text: 'refused' } })).status).toBe(202);
    await bot.waitFor((r) => r.some((w) => w.body.type === 'handover.ended'), 20_000, 'handover.ended at the bot');
    const ended = await eventually(async () => helpdesk.eventsFor(handoverId, 'handover.ended')[0] ?? null, 'handover.ended at the helpdesk');
    expect(ended).toMatchObject({ type: 'handover.ended', data: { reason: 'failed' } });
  });

  it('an end queued behind a message that is then given up still reaches the helpdesk', async () => {
    const { t, helpdesk, setup } = await world();
    let ended = false;
    // The message is refused for now until the handover has ended, then for good.
    helpdesk.respond = (body) =>
      body.type === 'message.created' ? (ended ? { status: 422 } : { status: 503, headers: { 'retry-after': '0' } }) : { status: 200 };
    const created = await t.api('POST', '/v1/handovers', {
      token: setup.apiKey,
      body: { conversationId: 'c-end-behind', queue: 'helpdesk', user: { id: 'u' } },
    });
    const handoverId: string = created.body.id;
    await eventually(async () => (helpdesk.eventsFor(handoverId, 'handover.requested').length > 0 ? true : null), 'the start taken');
    expect((await t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: setup.apiKey, body: { text: 'stuck' } })).status).toBe(202);
    expect((await t.api('POST', `/v1/handovers/${handoverId}/end`, { token: setup.apiKey, body: { reason: 'user_ended' } })).status).toBe(200);
    ended = true;
    const end = await eventually(async () => helpdesk.eventsFor(handoverId, 'handover.ended')[0] ?? null, 'handover.ended at the helpdesk', 20_000);
    expect(end).toMatchObject({ data: { reason: 'user_ended' } });
  });

  it('refuses forged and stale inbound events, and tells the bot when the helpdesk stays down', async () => {
    const { t, bot, helpdesk, setup } = await world({ 'delivery.maxAttempts': 3 });
    helpdesk.respond = () => ({ status: 503 });

    const created = await t.api('POST', '/v1/handovers', { token: setup.apiKey, body: { conversationId: 'c-down', queue: 'helpdesk', user: { id: 'u' } } });
    const handoverId: string = created.body.id;

    const forged = await helpdesk.send(
      { type: 'agent.joined', handoverId, data: { agent: { id: 'x' } } },
      { secret: 'whsec_' + Buffer.from('not-the-secret-at-all-000000000').toString('base64') },
    );
    expect(forged.status).toBe(401);
    expect(forged.body.error.code).toBe('invalid_signature');
    const stale = await helpdesk.send({ type: 'agent.joined', handoverId, data: { agent: { id: 'x' } } }, { timestamp: Math.floor(Date.now() / 1000) - 600 });
    expect(stale.status).toBe(401);
    expect(stale.body.error.code).toBe('stale_timestamp');

    await bot.waitFor((r) => r.some((w) => w.body.type === 'handover.ended'), 20_000, 'handover.ended after the helpdesk stayed down');
    const ended = bot.received.find((w) => w.body.type === 'handover.ended')!.body as { data: { reason: string; detail: string } };
    expect(ended.data.reason).toBe('failed');
    expect(ended.data.detail).toContain('503');
    const attempts = await eventually(async () => {
      const { rows } = await t!.db.query<{ n: number }>(
        `select count(*)::int as n from delivery_attempts a join outbox o on o.id = a.outbox_id where o.handover_id = $1 and o.target = 'agent'`,
        [handoverId],
      );
      return rows[0]!.n >= 3 ? rows[0]!.n : null;
    }, 'recorded attempts');
    expect(attempts).toBe(3);
  });
});
