import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';
import { openSseClient } from '../support/sse-client.js';

/**
 * Roles on the desk. An agent answers the chats they hold; a supervisor also sees the team, reads and
 * moves any chat of the built-in desk, sets an absent agent away and signs an agent out — within their
 * own tenant only. Roles are set by the admin API and take effect on the next request.
 */
const PASSWORD = 'correct horse battery';

describe('agent and supervisor roles (pg)', () => {
  let t: TestService;
  let desk: DeskSetup;
  let other: DeskSetup;
  let supervisor: { id: string; token: string };
  let colleague: { id: string; token: string };

  async function addAgent(role: 'agent' | 'supervisor', tenantId = desk.tenantId) {
    const email = `${role}-${Math.random().toString(36).slice(2)}@example.com`;
    const created = await t.admin('POST', `/v1/admin/tenants/${tenantId}/agents`, { email, name: `${role} ${email.slice(0, 12)}`, password: PASSWORD, role });
    expect(created.status).toBe(201);
    expect(created.body.role).toBe(role);
    const login = await t.api('POST', '/v1/desk/login', { body: { email, password: PASSWORD } });
    expect(login.status).toBe(200);
    expect(login.body.agent.role).toBe(role);
    return { id: created.body.id as string, token: login.body.token as string };
  }

  async function newHandover(conversationId: string) {
    const res = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId, queue: 'support', user: { id: `u-${conversationId}`, name: 'Uma User' } },
    });
    expect(res.status).toBe(201);
    return res.body.id as string;
  }

  beforeAll(async () => {
    t = await startTestService('pg');
    desk = await setUpDesk(t);
    other = await setUpDesk(t);
    supervisor = await addAgent('supervisor');
    colleague = await addAgent('agent');
  });

  afterAll(async () => {
    await t?.close();
  });

  it('keeps the team view and the supervisor actions to supervisors', async () => {
    for (const [method, path, body] of [
      ['GET', '/v1/desk/team', undefined],
      ['PUT', `/v1/desk/agents/${colleague.id}/presence`, { presence: 'away' }],
      ['POST', `/v1/desk/agents/${colleague.id}/sign-out`, undefined],
    ] as const) {
      const res = await t.api(method, path, { token: desk.agentToken, body });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error.code).toBe('forbidden_role');
    }
    // The colleague was neither set away nor signed out.
    expect((await t.api('GET', '/v1/desk/me', { token: colleague.token })).status).toBe(200);
  });

  it('lets a supervisor see the team with its load, and read, move and end a chat another agent holds', async () => {
    const held = await newHandover('held-1');
    expect((await t.api('POST', `/v1/desk/handovers/${held}/accept`, { token: desk.agentToken })).status).toBe(200);
    expect((await t.api('POST', `/v1/handovers/${held}/messages`, { token: desk.apiKey, body: { id: 'm1', text: 'my card was charged twice' } })).status).toBe(
      202,
    );

    const team = await t.api('GET', '/v1/desk/team', { token: supervisor.token });
    expect(team.status).toBe(200);
    const ada = team.body.agents.find((a: { id: string }) => a.id === desk.agentId);
    expect(ada).toMatchObject({ role: 'agent', presence: 'available', signedIn: true, online: true, activeChats: 1 });
    // Signed in through the API, but no desk console open: not online (docs/desk.md, "Presence").
    expect(team.body.agents.find((a: { id: string }) => a.id === colleague.id)).toMatchObject({ signedIn: true, online: false, activeChats: 0 });
    expect(team.body.chats).toContainEqual(expect.objectContaining({ id: held, agentId: desk.agentId, queue: 'support', userName: 'Uma User' }));
    // Nothing of the other tenant.
    expect(JSON.stringify(team.body)).not.toContain(other.agentId);

    // A colleague with the agent role may not touch it.
    for (const path of [`/v1/desk/handovers/${held}/transfer`, `/v1/desk/handovers/${held}/end`]) {
      const res = await t.api('POST', path, { token: colleague.token, body: path.endsWith('transfer') ? { queue: 'support' } : {} });
      expect(res.status, path).toBe(409);
      expect(res.body.error.code).toBe('handover_not_yours');
    }

    // The supervisor reads it and puts it back in the line: it waits there like a new request.
    const messages = await t.api('GET', `/v1/desk/handovers/${held}/messages`, { token: supervisor.token });
    expect(messages.status).toBe(200);
    expect(messages.body.messages.map((m: { text: string }) => m.text)).toContain('my card was charged twice');
    const moved = await t.api('POST', `/v1/desk/handovers/${held}/transfer`, { token: supervisor.token, body: { queue: 'support' } });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ state: 'queued', agent: null });
    // ...and can end one that is still waiting.
    const ended = await t.api('POST', `/v1/desk/handovers/${held}/end`, { token: supervisor.token, body: { reason: 'abandoned' } });
    expect(ended.status).toBe(200);
    expect(ended.body).toMatchObject({ state: 'ended', endReason: 'abandoned' });
  });

  it('moves a waiting user to another line: those behind them move up and are told; the same line keeps their place', async () => {
    const billing = await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/queues`, { name: 'billing' });
    expect(billing.status).toBe(201);
    const first = await newHandover('line-1');
    const second = await newHandover('line-2');
    const positions = async (id: string) =>
      (await t.api('GET', `/v1/handovers/${id}/events`, { token: desk.apiKey })).body.events
        .filter((e: { type: string }) => e.type === 'queue.updated')
        .map((e: { data: { position: number } }) => e.data.position);
    expect((await t.api('GET', `/v1/handovers/${second}`, { token: desk.apiKey })).body.position).toBe(2);
    // Moved to the line it is in already: nothing changes, nobody is told anything.
    const same = await t.api('POST', `/v1/desk/handovers/${second}/transfer`, { token: supervisor.token, body: { queue: 'support' } });
    expect(same.status).toBe(200);
    expect(await positions(second)).toEqual([]);
    expect((await t.api('GET', `/v1/handovers/${second}`, { token: desk.apiKey })).body.position).toBe(2);
    const moved = await t.api('POST', `/v1/desk/handovers/${first}/transfer`, { token: supervisor.token, body: { queue: 'billing' } });
    expect(moved.status).toBe(200);
    expect(await positions(second)).toEqual([1]);
    expect((await t.api('GET', `/v1/handovers/${second}`, { token: desk.apiKey })).body.position).toBe(1);
    for (const id of [first, second])
      expect((await t.api('POST', `/v1/desk/handovers/${id}/end`, { token: supervisor.token, body: { reason: 'abandoned' } })).status).toBe(200);
  });

  it('refuses a supervisor the power to make someone else available', async () => {
    const res = await t.api('PUT', `/v1/desk/agents/${colleague.id}/presence`, { token: supervisor.token, body: { presence: 'available' } });
    expect(res.status).toBe(400);
  });

  it("keeps a supervisor to their own tenant's agents and chats", async () => {
    const theirs = await t.api('POST', '/v1/handovers', { token: other.apiKey, body: { conversationId: 'x-1', queue: 'support', user: { id: 'x' } } });
    expect(theirs.status).toBe(201);
    for (const [method, path, body] of [
      ['PUT', `/v1/desk/agents/${other.agentId}/presence`, { presence: 'away' }],
      ['POST', `/v1/desk/agents/${other.agentId}/sign-out`, undefined],
      ['GET', `/v1/desk/handovers/${theirs.body.id}/messages`, undefined],
      ['POST', `/v1/desk/handovers/${theirs.body.id}/end`, {}],
      ['POST', `/v1/desk/handovers/${theirs.body.id}/transfer`, { queue: 'support' }],
    ] as const) {
      const res = await t.api(method, path, { token: supervisor.token, body });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(JSON.stringify(res.body)).not.toContain(other.tenantId);
    }
    const me = await t.api('GET', '/v1/desk/me', { token: other.agentToken });
    expect(me.body.presence).toBe('available');
  });

  it('lets a supervisor set an absent agent away, so chats stop going to them', async () => {
    const lone = await setUpDesk(t);
    const boss = await addAgent('supervisor', lone.tenantId);
    const available = () => t.api('GET', '/v1/availability?queue=support', { token: lone.apiKey });
    expect((await available()).body).toMatchObject({ available: true, agentsOnline: 1 });
    const away = await t.api('PUT', `/v1/desk/agents/${lone.agentId}/presence`, { token: boss.token, body: { presence: 'away' } });
    expect(away.status).toBe(200);
    expect(away.body).toMatchObject({ id: lone.agentId, presence: 'away' });
    // The supervisor is away too (never set available), so nobody answers this queue now.
    expect((await available()).body).toMatchObject({ available: false, reason: 'no_agents' });
  });

  it('signs an agent out everywhere: their token stops working, their open console is told and closed, the audit log says who did it', async () => {
    const stream = openSseClient(`${t.url}/v1/desk/events`, { authorization: `Bearer ${colleague.token}` });
    try {
      expect(await stream.opened).toBe(200);
      await stream.waitFor((events) => events.some((e) => e.event === 'ready'), 10_000, 'the ready event');
      const out = await t.api('POST', `/v1/desk/agents/${colleague.id}/sign-out`, { token: supervisor.token });
      expect(out.status).toBe(200);
      expect(out.body.endedSessions).toBe(1);
      await stream.waitFor((events) => events.some((e) => e.event === 'session.ended'), 10_000, 'session.ended');
      await eventually(async () => stream.ended, 'the server to end the stream');
    } finally {
      stream.close();
    }
    const after = await t.api('GET', '/v1/desk/me', { token: colleague.token });
    expect(after.status).toBe(401);
    const audit = await t.admin('GET', `/v1/admin/audit-log?tenantId=${desk.tenantId}`);
    expect(audit.body.entries).toContainEqual(
      expect.objectContaining({ action: 'desk.agent.signed_out', details: expect.objectContaining({ agentId: colleague.id, by: supervisor.id }) }),
    );
    // Signed out means offline in the team view.
    const team = await t.api('GET', '/v1/desk/team', { token: supervisor.token });
    expect(team.body.agents.find((a: { id: string }) => a.id === colleague.id)).toMatchObject({ signedIn: false, online: false, presence: 'away' });
    colleague = await addAgent('agent');
  });

  it("keeps chats waiting in queues an agent does not serve out of that agent's live signals", async () => {
    expect((await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/queues`, { name: 'vip' })).status).toBe(201);
    const email = `support-only-${Math.random().toString(36).slice(2)}@example.com`;
    expect(
      (await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/agents`, { email, name: 'Support only', password: PASSWORD, queues: ['support'] })).status,
    ).toBe(201);
    const token = (await t.api('POST', '/v1/desk/login', { body: { email, password: PASSWORD } })).body.token as string;
    const stream = openSseClient(`${t.url}/v1/desk/events`, { authorization: `Bearer ${token}` });
    const watching = openSseClient(`${t.url}/v1/desk/events`, { authorization: `Bearer ${supervisor.token}` });
    try {
      expect(await stream.opened).toBe(200);
      expect(await watching.opened).toBe(200);
      await stream.waitFor((events) => events.some((e) => e.event === 'ready'), 10_000, 'the ready event');
      await watching.waitFor((events) => events.some((e) => e.event === 'ready'), 10_000, 'the ready event');
      const vip = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c-vip-signal', queue: 'vip', user: { id: 'u-vip' } } });
      expect(vip.status).toBe(201);
      const support = await newHandover('c-support-signal');
      // The supervisor sees both; the agent only the one of its queue, which came after the other.
      await watching.waitFor((events) => events.some((e) => e.event === 'handover.queued' && e.data.handoverId === support), 10_000, 'both queued');
      expect(watching.events.some((e) => e.event === 'handover.queued' && e.data.handoverId === vip.body.id)).toBe(true);
      await stream.waitFor((events) => events.some((e) => e.event === 'handover.queued' && e.data.handoverId === support), 10_000, 'the support chat');
      expect(stream.events.some((e) => JSON.stringify(e.data).includes(vip.body.id))).toBe(false);
    } finally {
      stream.close();
      watching.close();
    }
  });

  it('changes roles through the admin API, effective on the next request', async () => {
    const promoted = await t.admin('PATCH', `/v1/admin/tenants/${desk.tenantId}/agents/${desk.agentId}`, { role: 'supervisor' });
    expect(promoted.status).toBe(200);
    expect(promoted.body.role).toBe('supervisor');
    expect((await t.api('GET', '/v1/desk/team', { token: desk.agentToken })).status).toBe(200);
    expect((await t.admin('PATCH', `/v1/admin/tenants/${desk.tenantId}/agents/${desk.agentId}`, { role: 'agent', maxChats: 5 })).body).toMatchObject({
      role: 'agent',
      maxChats: 5,
    });
    expect((await t.api('GET', '/v1/desk/team', { token: desk.agentToken })).status).toBe(403);
    // Demoted: no longer moves a chat someone else holds.
    const held = await newHandover('after-demotion');
    expect((await t.api('POST', `/v1/desk/handovers/${held}/accept`, { token: supervisor.token })).status).toBe(409); // away: may not accept
    await t.api('PUT', '/v1/desk/presence', { token: supervisor.token, body: { presence: 'available' } });
    expect((await t.api('POST', `/v1/desk/handovers/${held}/accept`, { token: supervisor.token })).status).toBe(200);
    const refused = await t.api('POST', `/v1/desk/handovers/${held}/end`, { token: desk.agentToken, body: {} });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('handover_not_yours');
    expect((await t.api('POST', `/v1/desk/handovers/${held}/end`, { token: supervisor.token, body: {} })).status).toBe(200);
    // Bad changes are refused with a stable code; another tenant's agent is not found.
    expect((await t.admin('PATCH', `/v1/admin/tenants/${desk.tenantId}/agents/${desk.agentId}`, { role: 'owner' })).status).toBe(400);
    expect((await t.admin('PATCH', `/v1/admin/tenants/${desk.tenantId}/agents/${desk.agentId}`, {})).status).toBe(400);
    expect((await t.admin('PATCH', `/v1/admin/tenants/${desk.tenantId}/agents/${desk.agentId}`, { queues: ['nope'] })).body.error.code).toBe('queue_not_found');
    const foreign = await t.admin('PATCH', `/v1/admin/tenants/${desk.tenantId}/agents/${other.agentId}`, { role: 'supervisor' });
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('agent_not_found');
    // The admin can sign an agent out too.
    const out = await t.admin('DELETE', `/v1/admin/tenants/${desk.tenantId}/agents/${colleague.id}/sessions`);
    expect(out.body).toEqual({ endedSessions: 1 });
    expect((await t.api('GET', '/v1/desk/me', { token: colleague.token })).status).toBe(401);
  });

  it('an admin disables an agent (signed out, cannot sign in again until enabled) or sets a new password (the old one stops working)', async () => {
    const email = `leaver-${Math.random().toString(36).slice(2)}@example.com`;
    const created = await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/agents`, { email, name: 'Leaver', password: PASSWORD });
    expect(created.body.disabled).toBe(false);
    const agentPath = `/v1/admin/tenants/${desk.tenantId}/agents/${created.body.id}`;
    const signIn = (password: string) => t.api('POST', '/v1/desk/login', { body: { email, password } });
    const session = (await signIn(PASSWORD)).body.token as string;
    expect((await t.api('GET', '/v1/desk/me', { token: session })).status).toBe(200);

    const disabled = await t.admin('PATCH', agentPath, { disabled: true });
    expect(disabled.body).toMatchObject({ disabled: true, presence: 'away' });
    expect((await t.api('GET', '/v1/desk/me', { token: session })).status).toBe(401);
    // The same answer as a wrong password: the form does not tell a disabled account from a wrong guess.
    const refused = await signIn(PASSWORD);
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe('invalid_credentials');
    expect((await t.admin('GET', `/v1/admin/tenants/${desk.tenantId}/agents`)).body.agents.find((a: { id: string }) => a.id === created.body.id)).toMatchObject(
      {
        disabled: true,
      },
    );

    expect((await t.admin('PATCH', agentPath, { disabled: false })).body.disabled).toBe(false);
    const again = (await signIn(PASSWORD)).body.token as string;
    expect((await t.api('GET', '/v1/desk/me', { token: again })).status).toBe(200);

    // A new password: every session ends, the old password no longer signs in, the new one does.
    expect((await t.admin('PATCH', agentPath, { password: 'a-new-password-9' })).status).toBe(200);
    expect((await t.api('GET', '/v1/desk/me', { token: again })).status).toBe(401);
    expect((await signIn(PASSWORD)).status).toBe(401);
    expect((await signIn('a-new-password-9')).status).toBe(200);
    expect((await t.admin('PATCH', agentPath, { password: 'short' })).status).toBe(400);
  });
});

describe('desk session idle timeout (pg)', () => {
  let t: TestService;
  beforeAll(async () => {
    // The shortest idle time the setting allows, so an open console's keep-alive runs every 2 s here.
    t = await startTestService('pg', { 'desk.sessionIdleSeconds': 6 });
  });
  afterAll(async () => {
    await t?.close();
  });

  const idleDeadline = async (agentId: string) =>
    (await t.db.query<{ at: Date }>('select max(idle_expires_at) as at from agent_sessions where agent_id = $1', [agentId])).rows[0]!.at.getTime();
  // Time passing without use, without waiting for it: the session's idle deadline is moved into the past.
  const goIdle = (agentId: string) => t.db.query(`update agent_sessions set idle_expires_at = now() - interval '1 second' where agent_id = $1`, [agentId]);

  it('ends a session left unused: the token stops working and the agent counts as offline', async () => {
    const desk = await setUpDesk(t);
    expect((await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey })).body.available).toBe(true);
    await goIdle(desk.agentId);
    const res = await t.api('GET', '/v1/desk/me', { token: desk.agentToken });
    expect(res.status).toBe(401);
    expect(res.body.error.message).toMatch(/idle/);
    expect((await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey })).body).toMatchObject({ available: false, reason: 'no_agents' });
  });

  it('moves the idle deadline forward on use, and while a console holds its live stream open', async () => {
    const desk = await setUpDesk(t);
    // Use: a request moves a deadline that is close to running out.
    await t.db.query(`update agent_sessions set idle_expires_at = now() + interval '2 seconds' where agent_id = $1`, [desk.agentId]);
    const before = await idleDeadline(desk.agentId);
    expect((await t.api('GET', '/v1/desk/me', { token: desk.agentToken })).status).toBe(200);
    expect(await idleDeadline(desk.agentId)).toBeGreaterThan(before + 2000);

    // An open console, with no requests: its stream keeps the session alive.
    const stream = openSseClient(`${t.url}/v1/desk/events`, { authorization: `Bearer ${desk.agentToken}` });
    try {
      expect(await stream.opened).toBe(200);
      const opened = await idleDeadline(desk.agentId);
      await eventually(async () => (await idleDeadline(desk.agentId)) > opened + 1000, 'the stream to keep the session alive');
      // When the session ends by idleness anyway (as if the keep-alive could not reach the database),
      // the stream is ended at its next check.
      await goIdle(desk.agentId);
      await stream.waitFor((events) => events.some((e) => e.event === 'session.ended'), 15_000, 'session.ended');
      await eventually(async () => stream.ended, 'the server to end the stream');
      expect(stream.events.filter((e) => e.event === 'session.ended')).toHaveLength(1);
    } finally {
      stream.close();
    }
  });
});
