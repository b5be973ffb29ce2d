import { afterEach, describe, expect, it } from 'vitest';
import { startSignedWebhookServer, type SignedWebhookServer } from '../fakes/signed-webhook-server.js';
import { freePort } from '../support/ports.js';
import { setUpCaseDesk, sharedServices } from '../support/shared-services.js';
import { createTestDb, type TestDb } from '../support/test-db.js';
import { eventually, openDeskConsole, setUpDesk, startTestService, type DbKind, type TestService } from '../support/test-service.js';
import type { SseClient } from '../support/sse-client.js';

/**
 * Presence from live connections (docs/desk.md, "Presence"): an agent counts as online only while a
 * desk console of theirs is open, and for the reconnect grace after the last one closed. Waits are
 * polled with a bound; nothing here depends on how fast the machine is, except that the long-grace
 * checks assume a few requests take less than a minute.
 */
const SHORT_GRACE = { 'desk.presenceGraceMs': 1000 };
const LONG_GRACE = { 'desk.presenceGraceMs': 60_000 };

async function availability(
  t: TestService,
  apiKey: string,
): Promise<{ available: boolean; reason?: string; agentsOnline: number | null; estimatedWaitSeconds: number | null }> {
  const answer = await t.api('GET', '/v1/availability?queue=support', { token: apiKey });
  expect(answer.status).toBe(200);
  return answer.body;
}

const noAgents = async (t: TestService, apiKey: string) => (await availability(t, apiKey)).reason === 'no_agents';

describe.each<DbKind>(['pglite', 'pg'])('presence follows open desk consoles (%s)', (kind) => {
  // The cases with the same settings share one service; each has a tenant, queue and agents of its own
  // (setUpCaseDesk), and presence is counted per queue's tenant, so no case sees another's consoles.
  const serviceWith = sharedServices(kind);
  let own: TestService | undefined;
  let bot: SignedWebhookServer | undefined;
  const consoles: SseClient[] = [];
  afterEach(async () => {
    for (const c of consoles.splice(0)) c.close();
    await own?.close();
    await bot?.close();
    own = undefined;
    bot = undefined;
  });

  it('counts an agent only while a console is open: signed in and available without one is not online', async () => {
    const t = await serviceWith(SHORT_GRACE);
    const desk = await setUpCaseDesk(t, { console: false });
    // Signed in and available, but no desk open anywhere: nobody is there to answer.
    expect(await availability(t, desk.apiKey)).toMatchObject({ available: false, reason: 'no_agents', agentsOnline: 0, estimatedWaitSeconds: null });
    const refused = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c-0', queue: 'support', user: { id: 'u-0' } } });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('no_agents_available');

    // The console's `ready` means it is counted: availability says so on the next request.
    const first = await openDeskConsole(t, desk.agentToken);
    consoles.push(first);
    expect(await availability(t, desk.apiKey)).toMatchObject({ available: true, agentsOnline: 1 });

    // Two tabs: closing one keeps the agent online, well past the grace.
    const second = await openDeskConsole(t, desk.agentToken);
    consoles.push(second);
    first.close();
    await new Promise((r) => setTimeout(r, 3 * SHORT_GRACE['desk.presenceGraceMs']));
    expect(await availability(t, desk.apiKey)).toMatchObject({ available: true, agentsOnline: 1 });

    // The last one closes: within the grace (and a bound) nobody is online, and a new user is told so.
    second.close();
    await eventually(() => noAgents(t, desk.apiKey), 'availability to say nobody is online', 15_000);
    const late = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c-1', queue: 'support', user: { id: 'u-1' } } });
    expect(late.status).toBe(409);
    expect(late.body.error).toMatchObject({ code: 'no_agents_available', details: { agentsOnline: 0 } });

    // Back at the desk: online again at once, without touching presence.
    consoles.push(await openDeskConsole(t, desk.agentToken));
    expect(await availability(t, desk.apiKey)).toMatchObject({ available: true, agentsOnline: 1 });
    expect((await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c-2', queue: 'support', user: { id: 'u-2' } } })).status).toBe(
      201,
    );
  });

  it('counts every console when many open and close at once (a reconnect after a restart)', async () => {
    const t = await serviceWith(SHORT_GRACE);
    const desk = await setUpCaseDesk(t, { agent: { maxChats: 10 } });
    const tokens = await Promise.all(
      Array.from({ length: 4 }, async (_, i) => {
        const email = `agent-${i}@example.com`;
        expect(
          (await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/agents`, { email, name: `Agent ${i}`, password: 'correct horse battery' })).status,
        ).toBe(201);
        const token = (await t.api('POST', '/v1/desk/login', { body: { email, password: 'correct horse battery' } })).body.token as string;
        expect((await t.api('PUT', '/v1/desk/presence', { token, body: { presence: 'available' } })).status).toBe(200);
        return token;
      }),
    );
    // Two consoles each, all opening together.
    const opened = await Promise.all([...tokens, ...tokens].map((token) => openDeskConsole(t, token)));
    consoles.push(...opened);
    expect(await availability(t, desk.apiKey)).toMatchObject({ available: true, agentsOnline: 5 });
    const { rows } = await t.db.query<{ consoles: number }>('select coalesce(sum(consoles), 0)::int as consoles from desk_consoles where tenant_id = $1', [
      desk.tenantId,
    ]);
    expect(rows[0]!.consoles).toBe(9);
    // All close together: only the agent whose console stays is online once the grace has run out.
    for (const c of opened) c.close();
    await eventually(async () => (await availability(t, desk.apiKey)).agentsOnline === 1, 'only the agent still at a desk to count', 15_000);
  });

  it('renews desk streams: a console that comes back at once stays online, one that does not (a laptop put to sleep) stops counting', async () => {
    // A service of its own: it renews every console, and the other cases' consoles (plain SSE readers) do not reconnect.
    const t = (own = await startTestService(kind, { ...SHORT_GRACE, 'desk.consoleRenewMs': 1500 }));
    const desk = await setUpCaseDesk(t);
    const renewed = (c: SseClient) => c.waitFor((events) => events.some((e) => e.event === 'renew'), 15_000, 'renew');
    await renewed(desk.console!);
    await eventually(async () => desk.console!.ended, 'the server to end the renewed stream', 10_000);
    // The web desk opens the next stream at once.
    const next = await openDeskConsole(t, desk.agentToken);
    consoles.push(next);
    expect(await availability(t, desk.apiKey)).toMatchObject({ available: true, agentsOnline: 1 });
    // This one never comes back after its renewal, like a console whose network vanished.
    await renewed(next);
    await eventually(() => noAgents(t, desk.apiKey), 'the agent whose console did not come back to go', 15_000);
  });

  it('keeps an agent online through a reload within the grace', async () => {
    const t = await serviceWith(LONG_GRACE);
    const desk = await setUpCaseDesk(t);
    desk.console!.close();
    await eventually(
      async () => (await t.db.query<{ consoles: number }>('select consoles from desk_consoles where agent_id = $1', [desk.agentId])).rows[0]?.consoles === 0,
      'the closed console to be recorded',
      10_000,
    );
    expect(await availability(t, desk.apiKey)).toMatchObject({ available: true, agentsOnline: 1 });
    consoles.push(await openDeskConsole(t, desk.agentToken));
    expect(await availability(t, desk.apiKey)).toMatchObject({ available: true, agentsOnline: 1 });
  });

  it('tells a waiting user at once when the last agent leaves, instead of at the no-answer timeout', async () => {
    const t = await serviceWith(SHORT_GRACE);
    let secret = '';
    bot = await startSignedWebhookServer(() => secret);
    const desk = await setUpCaseDesk(t, { webhookUrl: bot.url, queue: { noAnswerTimeoutSeconds: 3600 } });
    secret = desk.webhookSecret;
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c-1', queue: 'support', user: { id: 'u-1' } } });
    expect(created.status).toBe(201);
    desk.console!.close();
    const ended = await eventually(
      async () => {
        const view = await t.api('GET', `/v1/handovers/${created.body.id}`, { token: desk.apiKey });
        return view.body.state === 'ended' ? view.body : undefined;
      },
      'the wait to end once nobody is online',
      15_000,
    );
    expect(ended).toMatchObject({ state: 'ended', endReason: 'no_agent_answered' });
    // The bot hears why.
    await bot.waitFor((r) => r.some((w) => w.body.type === 'handover.ended'), 15_000, 'handover.ended at the bot');
    expect(bot.received.find((w) => w.body.type === 'handover.ended')!.body).toMatchObject({
      handoverId: created.body.id,
      data: { reason: 'no_agent_answered', detail: 'No agent of this queue is online any more.' },
    });
  });

  it('does not end waits when the agent steps away and back within the grace', async () => {
    const t = await serviceWith(LONG_GRACE);
    const desk = await setUpCaseDesk(t, { queue: { noAnswerTimeoutSeconds: 3600 } });
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c-1', queue: 'support', user: { id: 'u-1' } } });
    expect((await t.api('PUT', '/v1/desk/presence', { token: desk.agentToken, body: { presence: 'away' } })).status).toBe(200);
    // Away: new users are refused at once, but the one waiting keeps their place for the grace.
    expect(await availability(t, desk.apiKey)).toMatchObject({ available: false, reason: 'no_agents' });
    await new Promise((r) => setTimeout(r, 10 * 100)); // ten ticks of the no-answer timer (testSettings)
    expect((await t.api('PUT', '/v1/desk/presence', { token: desk.agentToken, body: { presence: 'available' } })).status).toBe(200);
    expect((await t.api('GET', `/v1/handovers/${created.body.id}`, { token: desk.apiKey })).body).toMatchObject({ state: 'queued', position: 1 });
  });

  it('shows supervisors who is at a desk, apart from who is signed in', async () => {
    const t = await serviceWith(SHORT_GRACE);
    const desk = await setUpCaseDesk(t, { agent: { role: 'supervisor' } });
    const team = async () => (await t.api('GET', '/v1/desk/team', { token: desk.agentToken })).body.agents[0];
    expect(await team()).toMatchObject({ signedIn: true, online: true, presence: 'available' });
    // The supervisor hears of a colleague's console opening on its own stream (a hint to re-read).
    await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/agents`, { email: 'bo@example.com', name: 'Bo', password: 'another long password' });
    const bo = await t.api('POST', '/v1/desk/login', { body: { email: 'bo@example.com', password: 'another long password' } });
    const boConsole = await openDeskConsole(t, bo.body.token);
    consoles.push(boConsole);
    await desk.console!.waitFor(
      (events) => events.some((e) => e.event === 'agent.online' && e.data.agentId === bo.body.agent.id),
      10_000,
      'agent.online for Bo',
    );
    boConsole.close();
    await eventually(
      async () => {
        const agents = (await t.api('GET', '/v1/desk/team', { token: desk.agentToken })).body.agents as Array<{
          id: string;
          signedIn: boolean;
          online: boolean;
        }>;
        const member = agents.find((a) => a.id === bo.body.agent.id);
        return member && member.signedIn && !member.online;
      },
      'Bo to show signed in but not at a desk',
      15_000,
    );
  });
});

describe('presence across instances (pg)', () => {
  let db: TestDb | undefined;
  const instances: TestService[] = [];
  afterEach(async () => {
    for (const t of instances.splice(0)) await t.close();
    await db?.dropAndClose();
    db = undefined;
  });

  it('is the same on every instance, with Redis unreachable, and a dead instance’s consoles lapse', async () => {
    db = await createTestDb('pg');
    // Redis configured but not there: live signals degrade to polling; presence does not depend on them.
    const settings = { ...SHORT_GRACE, 'redis.url': `redis://127.0.0.1:${await freePort()}`, 'redis.timeoutMs': 200, 'redis.degradedPollMs': 300 };
    const a = await startTestService('pg', settings, { db });
    instances.push(a);
    const b = await startTestService('pg', settings, { db });
    instances.push(b);
    const desk = await setUpDesk(a);

    // The console is on A; B answers the same. Past several graces, A's refresh keeps it counted.
    expect(await availability(b, desk.apiKey)).toMatchObject({ available: true, agentsOnline: 1 });
    await new Promise((r) => setTimeout(r, 3 * SHORT_GRACE['desk.presenceGraceMs']));
    expect(await availability(b, desk.apiKey)).toMatchObject({ available: true, agentsOnline: 1 });

    // The console moves to B (a reload through the load balancer), then closes there.
    const onB = await openDeskConsole(b, desk.agentToken);
    desk.console!.close();
    await new Promise((r) => setTimeout(r, 3 * SHORT_GRACE['desk.presenceGraceMs']));
    expect(await availability(a, desk.apiKey)).toMatchObject({ available: true, agentsOnline: 1 });
    onB.close();
    await eventually(() => noAgents(a, desk.apiKey), 'A to see the agent gone from B', 15_000);

    // An instance that died with consoles open refreshes them no more: they lapse within the grace.
    await db.query(
      `insert into desk_consoles (agent_id, instance_id, tenant_id, consoles, expires_at) values ($1, 'crashed-instance', $2, 3, now() + interval '1 second')`,
      [desk.agentId, desk.tenantId],
    );
    expect(await availability(b, desk.apiKey)).toMatchObject({ available: true, agentsOnline: 1 });
    await eventually(() => noAgents(b, desk.apiKey), 'the dead instance’s consoles to lapse', 15_000);
  });
});
