import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openSseClient, type SseClient } from '../support/sse-client.js';
import { setUpCaseDesk } from '../support/shared-services.js';
import { eventually, startTestService, type DbKind, type TestService } from '../support/test-service.js';

describe.each<DbKind>(['pglite', 'pg'])('desk and bot stream features (%s)', (kind) => {
  // One service for the cases: each has a tenant, queue and agents of its own (setUpCaseDesk), and the
  // streams, events and idempotency keys it reads are the tenant's.
  let t: TestService;
  const streams: SseClient[] = [];
  const stream = (path: string, headers: Record<string, string>): SseClient => {
    const opened = openSseClient(`${t.url}${path}`, headers);
    streams.push(opened);
    return opened;
  };
  beforeAll(async () => {
    t = await startTestService(kind);
  });
  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
  });
  afterAll(async () => t?.close());

  it('resumes the bot SSE stream after Last-Event-ID with no gap and no repeat', async () => {
    const desk = await setUpCaseDesk(t);
    const auth = { authorization: `Bearer ${desk.apiKey}` };
    const first = stream('/v1/events', auth);
    expect(await first.opened).toBe(200);
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    const id = created.body.id;
    await t.api('POST', `/v1/desk/handovers/${id}/accept`, { token: desk.agentToken });
    for (let i = 0; i < 5; i++) await t.api('POST', `/v1/desk/handovers/${id}/messages`, { token: desk.agentToken, body: { text: `before ${i}` } });
    await first.waitFor((e) => e.length >= 7, 10_000, 'first 7 events');
    first.close();
    const lastSeen = first.events[6]!.id!;

    // Events that happen while the bot is disconnected.
    for (let i = 0; i < 5; i++) await t.api('POST', `/v1/desk/handovers/${id}/messages`, { token: desk.agentToken, body: { text: `while away ${i}` } });
    const resumed = stream('/v1/events', { ...auth, 'last-event-id': lastSeen });
    expect(await resumed.opened).toBe(200);
    await t.api('POST', `/v1/desk/handovers/${id}/messages`, { token: desk.agentToken, body: { text: 'after' } });
    await resumed.waitFor((e) => e.some((x) => x.data.data?.message?.text === 'after'), 10_000, 'the live event after resuming');
    expect(resumed.events.map((e) => e.data.data.message.text)).toEqual([0, 1, 2, 3, 4].map((i) => `while away ${i}`).concat('after'));
    resumed.close();

    const unknown = await t.api('GET', '/v1/events', { token: desk.apiKey, headers: { 'last-event-id': 'evt_unknown' } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe('invalid_cursor');

    // The JSON poll pages through the same log.
    const page1 = await t.api('GET', `/v1/handovers/${id}/events?limit=3`, { token: desk.apiKey });
    const page2 = await t.api('GET', `/v1/handovers/${id}/events?after=${page1.body.next}&limit=100`, { token: desk.apiKey });
    const all = [...page1.body.events, ...page2.body.events].map((e: { id: string }) => e.id);
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(2 + 11);
  });

  it('honours Idempotency-Key: a retried request returns the first handover', async () => {
    const desk = await setUpCaseDesk(t);
    const ask = (conversationId: string) =>
      t.api('POST', '/v1/handovers', {
        token: desk.apiKey,
        headers: { 'idempotency-key': 'key-1' },
        body: { conversationId, queue: 'support', user: { id: 'u' } },
      });
    const first = await ask('c-1');
    expect(first.status).toBe(201);
    await t.api('POST', `/v1/handovers/${first.body.id}/end`, { token: desk.apiKey, body: { reason: 'user_ended' } });
    const replay = await ask('c-1');
    expect(replay.status).toBe(201);
    expect(replay.body).toMatchObject({ id: first.body.id, state: 'ended', endReason: 'user_ended' });
    const misuse = await ask('c-2');
    expect(misuse.status).toBe(409);
    expect(misuse.body.error.code).toBe('idempotency_conflict');
  });

  it('shows typing both ways, transfers between queues, and streams desk signals', async () => {
    const desk = await setUpCaseDesk(t);
    await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/queues`, { name: 'billing' });
    const console = stream('/v1/desk/events', { authorization: `Bearer ${desk.agentToken}` });
    expect(await console.opened).toBe(200);
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    const id = created.body.id;
    await console.waitFor((e) => e.some((x) => x.event === 'handover.queued' && x.data.handoverId === id), 10_000, 'queued signal');

    // Typing before an agent holds the chat: the desk may not show typing for a chat nobody holds.
    const early = await t.api('POST', `/v1/desk/handovers/${id}/typing`, { token: desk.agentToken, body: { typing: true } });
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe('handover_not_active');

    await t.api('POST', `/v1/desk/handovers/${id}/accept`, { token: desk.agentToken });
    expect((await t.api('POST', `/v1/handovers/${id}/typing`, { token: desk.apiKey, body: { typing: true } })).status).toBe(202);
    await console.waitFor((e) => e.some((x) => x.event === 'user.typing' && x.data.typing === true), 10_000, 'user typing on the desk');
    expect((await t.api('POST', `/v1/desk/handovers/${id}/typing`, { token: desk.agentToken, body: { typing: true } })).status).toBe(202);
    const typing = await eventually(async () => {
      const res = await t.api('GET', `/v1/handovers/${id}/events`, { token: desk.apiKey });
      return res.body.events.find((e: { type: string }) => e.type === 'agent.typing');
    }, 'agent.typing for the bot');
    expect(typing.data).toEqual({ typing: true });

    const moved = await t.api('POST', `/v1/desk/handovers/${id}/transfer`, { token: desk.agentToken, body: { queue: 'billing' } });
    expect(moved.body).toMatchObject({ state: 'queued', agent: null });
    const events = await t.api('GET', `/v1/handovers/${id}/events`, { token: desk.apiKey });
    const transferred = events.body.events.find((e: { type: string }) => e.type === 'handover.transferred');
    expect(transferred.data).toMatchObject({ queue: 'billing' });
    const last = events.body.events.at(-1);
    expect(last).toMatchObject({ type: 'queue.updated', data: { position: 1 } });
    // The former agent no longer holds it; accepting it again from the new queue works.
    expect((await t.api('POST', `/v1/desk/handovers/${id}/messages`, { token: desk.agentToken, body: { text: 'x' } })).status).toBe(409);
    expect((await t.api('POST', `/v1/desk/handovers/${id}/accept`, { token: desk.agentToken })).status).toBe(200);
    console.close();
  });

  it('keeps agents to their own chats and their capacity', async () => {
    const desk = await setUpCaseDesk(t, { agent: { maxChats: 1 } });
    const email = 'bo@example.com';
    await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/agents`, { email, name: 'Bo', password: 'another long password' });
    const bo = await t.api('POST', '/v1/desk/login', { body: { email, password: 'another long password' } });
    await t.api('PUT', '/v1/desk/presence', { token: bo.body.token, body: { presence: 'available' } });
    const ask = (c: string) => t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: c, queue: 'support', user: { id: c } } });
    const a = await ask('a');
    const b = await ask('b');
    expect((await t.api('POST', `/v1/desk/handovers/${a.body.id}/accept`, { token: desk.agentToken })).status).toBe(200);
    const over = await t.api('POST', `/v1/desk/handovers/${b.body.id}/accept`, { token: desk.agentToken });
    expect(over.status).toBe(409);
    expect(over.body.error.code).toBe('agent_at_capacity');
    const taken = await t.api('POST', `/v1/desk/handovers/${a.body.id}/accept`, { token: bo.body.token });
    expect(taken.body.error.code).toBe('handover_not_waiting');
    const notYours = await t.api('POST', `/v1/desk/handovers/${a.body.id}/messages`, { token: bo.body.token, body: { text: 'hi' } });
    expect(notYours.body.error.code).toBe('handover_not_yours');
    const boList = await t.api('GET', '/v1/desk/handovers', { token: bo.body.token });
    expect(boList.body.mine).toEqual([]);
    expect(boList.body.waiting.map((h: { id: string }) => h.id)).toEqual([b.body.id]);
  });
});
