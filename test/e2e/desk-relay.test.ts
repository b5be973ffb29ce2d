import { afterEach, describe, expect, it } from 'vitest';
import { startSignedWebhookServer, type SignedWebhookServer } from '../fakes/signed-webhook-server.js';
import { openSseClient } from '../support/sse-client.js';
import { firstArrivals as deduped, messageTexts, numbered } from '../support/receivers.js';
import { setUpDesk, startTestService, type DbKind, type TestService } from '../support/test-service.js';

const MESSAGES = 200;

describe.each<DbKind>(['pglite', 'pg'])('bot ⇄ built-in desk, end to end over HTTP (%s)', (kind) => {
  let t: TestService | undefined;
  let bot: SignedWebhookServer | undefined;
  afterEach(async () => {
    await t?.close();
    await bot?.close();
  });

  it(`relays ${MESSAGES} messages each way in order, without loss or duplicates, and hands back to the bot`, async () => {
    t = await startTestService(kind);
    let secret = '';
    bot = await startSignedWebhookServer(() => secret);
    const desk = await setUpDesk(t, { webhookUrl: bot.url });
    secret = desk.webhookSecret;
    const auth = { token: desk.apiKey };
    const sse = openSseClient(`${t.url}/v1/events`, { authorization: `Bearer ${desk.apiKey}` });
    expect(await sse.opened).toBe(200);

    const availability = await t.api('GET', '/v1/availability?queue=support', auth);
    expect(availability.body).toMatchObject({ available: true, agentsOnline: 1, queueLength: 0 });

    const created = await t.api('POST', '/v1/handovers', {
      ...auth,
      body: {
        conversationId: 'conv-1',
        queue: 'support',
        user: { id: 'u-1', name: 'Uma User' },
        transcript: [
          { role: 'user', text: 'I want a human' },
          { role: 'bot', text: 'One moment' },
        ],
      },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ state: 'queued', position: 1 });
    const handoverId: string = created.body.id;

    // A second request for the same conversation returns the live one.
    const again = await t.api('POST', '/v1/handovers', { ...auth, body: { conversationId: 'conv-1', queue: 'support', user: { id: 'u-1' } } });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(handoverId);

    const list = await t.api('GET', '/v1/desk/handovers', { token: desk.agentToken });
    expect(list.body.waiting.map((h: { id: string }) => h.id)).toEqual([handoverId]);
    expect(list.body.waiting[0].transcript).toHaveLength(2);

    const accepted = await t.api('POST', `/v1/desk/handovers/${handoverId}/accept`, { token: desk.agentToken });
    expect(accepted.status).toBe(200);
    expect(accepted.body.state).toBe('active');

    // Both directions at once, each side sending in its own order.
    const userSide = (async () => {
      for (let i = 0; i < MESSAGES; i++) {
        const res = await t!.api('POST', `/v1/handovers/${handoverId}/messages`, { ...auth, body: { id: `u-${i}`, text: `user ${i}` } });
        expect(res.status).toBe(202);
      }
    })();
    const agentSide = (async () => {
      for (let i = 0; i < MESSAGES; i++) {
        const res = await t!.api('POST', `/v1/desk/handovers/${handoverId}/messages`, { token: desk.agentToken, body: { id: `a-${i}`, text: `agent ${i}` } });
        expect(res.status).toBe(202);
      }
    })();
    await Promise.all([userSide, agentSide]);

    // A retried user message with the same id is not stored twice.
    const first = await t.api('POST', `/v1/handovers/${handoverId}/messages`, { ...auth, body: { id: 'u-7', text: 'user 7' } });
    expect(first.status).toBe(202);

    const seen = await t.api('GET', `/v1/desk/handovers/${handoverId}/messages`, { token: desk.agentToken });
    const toAgent = seen.body.messages.filter((m: { direction: string }) => m.direction === 'to_agent').map((m: { text: string }) => m.text);
    expect(toAgent).toEqual(numbered('user', MESSAGES));

    await bot.waitFor((r) => r.filter((w) => w.body.type === 'message.created').length >= MESSAGES, 30_000, 'agent messages at the bot');
    expect(messageTexts(bot.received.map((r) => r.body))).toEqual(numbered('agent', MESSAGES));

    const ended = await t.api('POST', `/v1/desk/handovers/${handoverId}/end`, { token: desk.agentToken, body: {} });
    expect(ended.body).toMatchObject({ state: 'ended', endReason: 'agent_ended' });
    await bot.waitFor((r) => r.some((w) => w.body.type === 'handover.ended'), 10_000, 'handover.ended');
    const endedEvent = bot.received.find((w) => w.body.type === 'handover.ended')!.body;
    expect(endedEvent).toMatchObject({ handoverId, conversationId: 'conv-1', data: { reason: 'agent_ended' } });

    // The bot's view of the whole story, in order, on the webhook and on the SSE stream alike.
    const types = deduped(bot.received.map((r) => r.body)).map((b) => b.type);
    expect(types[0]).toBe('handover.queued');
    expect(types[1]).toBe('handover.accepted');
    expect(types.at(-1)).toBe('handover.ended');
    await sse.waitFor((events) => events.some((e) => e.event === 'handover.ended'), 10_000, 'handover.ended on SSE');
    expect(sse.events.map((e) => e.data.type)).toEqual(types);
    sse.close();
    expect(bot.rejected).toEqual([]);

    const late = await t.api('POST', `/v1/handovers/${handoverId}/messages`, { ...auth, body: { text: 'too late' } });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('handover_ended');
  });
});
