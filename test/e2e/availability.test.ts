import { afterEach, describe, expect, it } from 'vitest';
import { startSignedWebhookServer, type SignedWebhookServer } from '../fakes/signed-webhook-server.js';
import { setUpCaseDesk, sharedServices } from '../support/shared-services.js';
import { eventually, type DbKind } from '../support/test-service.js';

function isoDate(d: Date, zone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
}

describe.each<DbKind>(['pglite', 'pg'])('availability and lifecycle rules through the public API (%s)', (kind) => {
  // One service for the cases: each has a tenant and queue of its own (setUpCaseDesk), and availability,
  // positions and wait estimates are the queue's.
  const service = sharedServices(kind);
  let bot: SignedWebhookServer | undefined;
  afterEach(async () => {
    await bot?.close();
    bot = undefined;
  });

  it('refuses a handover while the queue is closed and says when it opens', async () => {
    const t = await service();
    const zone = 'Pacific/Auckland';
    const now = new Date();
    // Closed today and tomorrow (local dates in the queue's zone); open around the clock otherwise.
    const closedDates = [isoDate(now, zone), isoDate(new Date(now.getTime() + 86_400_000), zone)];
    const desk = await setUpCaseDesk(t, { queue: { timeZone: zone, closedDates } });
    const availability = await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey });
    expect(availability.body).toMatchObject({ available: false, reason: 'closed' });
    const opensAt = new Date(availability.body.nextOpenAt);
    expect(opensAt.getTime()).toBeGreaterThan(now.getTime());
    expect(isoDate(opensAt, zone)).toBe(isoDate(new Date(now.getTime() + 2 * 86_400_000), zone));

    const refused = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'queue_closed', details: { reason: 'closed', nextOpenAt: availability.body.nextOpenAt } });
  });

  it('refuses when no agent is available, and accepts once one is', async () => {
    const t = await service();
    const desk = await setUpCaseDesk(t, { available: false });
    const before = await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey });
    expect(before.body).toMatchObject({ available: false, reason: 'no_agents', agentsOnline: 0 });
    const refused = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('no_agents_available');

    await t.api('PUT', '/v1/desk/presence', { token: desk.agentToken, body: { presence: 'available' } });
    const after = await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey });
    expect(after.body).toMatchObject({ available: true, agentsOnline: 1 });

    // Signing out takes the agent off the roster.
    await t.api('POST', '/v1/desk/logout', { token: desk.agentToken });
    const gone = await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey });
    expect(gone.body).toMatchObject({ available: false, reason: 'no_agents' });
  });

  it('refuses when every agent is at capacity and the line is full', async () => {
    const t = await service();
    const desk = await setUpCaseDesk(t, { agent: { maxChats: 1 }, queue: { maxWaiting: 0 } });
    const ask = (conversationId: string) =>
      t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId, queue: 'support', user: { id: conversationId } } });

    const first = await ask('c-1');
    expect(first.status).toBe(201);
    const second = await ask('c-2');
    expect(second.status).toBe(409);
    expect(second.body.error).toMatchObject({ code: 'queue_full', details: { reason: 'at_capacity', queueLength: 1 } });

    const accepted = await t.api('POST', `/v1/desk/handovers/${first.body.id}/accept`, { token: desk.agentToken });
    expect(accepted.status).toBe(200);
    const stillFull = await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey });
    expect(stillFull.body).toMatchObject({ available: false, reason: 'at_capacity', queueLength: 0 });

    await t.api('POST', `/v1/desk/handovers/${first.body.id}/end`, { token: desk.agentToken, body: {} });
    expect((await ask('c-3')).status).toBe(201);
  });

  it('ends a handover nobody accepts in time with no_agent_answered', async () => {
    const t = await service();
    let secret = '';
    bot = await startSignedWebhookServer(() => secret);
    const desk = await setUpCaseDesk(t, { webhookUrl: bot.url, queue: { noAnswerTimeoutSeconds: 1 } });
    secret = desk.webhookSecret;
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    expect(created.status).toBe(201);
    await bot.waitFor((r) => r.some((w) => w.body.type === 'handover.ended'), 15_000, 'no-answer end');
    expect(bot.received.find((w) => w.body.type === 'handover.ended')!.body).toMatchObject({
      handoverId: created.body.id,
      data: { reason: 'no_agent_answered' },
    });
    const state = await t.api('GET', `/v1/handovers/${created.body.id}`, { token: desk.apiKey });
    expect(state.body).toMatchObject({ state: 'ended', endReason: 'no_agent_answered' });
    const late = await t.api('POST', `/v1/desk/handovers/${created.body.id}/accept`, { token: desk.agentToken });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('handover_not_waiting');
  });

  it('gives queue positions, moves people up, and estimates waits from real waits', async () => {
    const t = await service();
    const desk = await setUpCaseDesk(t, { agent: { maxChats: 10 } });
    const ask = (c: string) => t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: c, queue: 'support', user: { id: c } } });
    const a = await ask('a');
    const b = await ask('b');
    const c = await ask('c');
    expect([a.body.position, b.body.position, c.body.position]).toEqual([1, 2, 3]);
    // No history yet: the estimate is unknown rather than invented.
    expect(c.body.estimatedWaitSeconds).toBeNull();

    const next = await t.api('POST', '/v1/desk/accept-next', { token: desk.agentToken, body: {} });
    expect(next.body.handover.id).toBe(a.body.id);
    const bView = await t.api('GET', `/v1/handovers/${b.body.id}`, { token: desk.apiKey });
    expect(bView.body.position).toBe(1);
    expect(typeof bView.body.estimatedWaitSeconds).toBe('number');

    const events = await eventually(async () => {
      const res = await t.api('GET', `/v1/handovers/${c.body.id}/events`, { token: desk.apiKey });
      const updates = res.body.events.filter((e: { type: string }) => e.type === 'queue.updated');
      return updates.length > 0 ? updates : null;
    }, 'queue.updated for c');
    expect(events.at(-1).data.position).toBe(2);
  });
});
