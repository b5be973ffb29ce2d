import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbKinds, type DbKind } from '../support/test-db.js';
import { setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * The supervisor's view over the desk API: queue figures (waiting, longest wait, chats held, agents
 * online), every agent's load and every live chat; reading a chat another agent holds, and taking it
 * over. Agents are refused both routes with a stable code.
 */
const PASSWORD = 'supervisor password 1';

describe.each<DbKind>(dbKinds)('the supervisor view (%s)', (kind) => {
  let t: TestService;
  let desk: DeskSetup;
  let sup: string;

  beforeAll(async () => {
    t = await startTestService(kind);
    desk = await setUpDesk(t);
    expect((await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/queues`, { name: 'billing' })).status).toBe(201);
    const email = `sam-${kind}@example.com`;
    expect(
      (await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/agents`, { email, name: 'Sam Supervisor', password: PASSWORD, role: 'supervisor' })).status,
    ).toBe(201);
    sup = (await t.api('POST', '/v1/desk/login', { body: { email, password: PASSWORD } })).body.token;
  });

  afterAll(async () => {
    desk?.console?.close();
    await t?.close();
  });

  const ask = async (n: number, name: string) => {
    const res = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId: `sup-${n}`, queue: 'support', user: { id: `u-${n}`, name } },
    });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };

  it('shows queue figures and live chats, and lets a supervisor read and take a chat', async () => {
    const uma = await ask(1, 'Uma');
    expect((await t.api('POST', `/v1/desk/handovers/${uma}/accept`, { token: desk.agentToken })).status).toBe(200);
    expect((await t.api('POST', `/v1/handovers/${uma}/messages`, { token: desk.apiKey, body: { id: 'm-1', text: 'My parcel is late' } })).status).toBe(202);
    const vic = await ask(2, 'Vic');

    // Agents are refused, with the stable code.
    for (const [method, path] of [
      ['GET', '/v1/desk/supervisor/overview'],
      ['POST', `/v1/desk/handovers/${vic}/take`],
    ] as const) {
      const refused = await t.api(method, path, { token: desk.agentToken });
      expect(refused.status, path).toBe(403);
      expect(refused.body.error.code).toBe('forbidden_role');
    }

    const overview = await t.api('GET', '/v1/desk/supervisor/overview', { token: sup });
    expect(overview.status).toBe(200);
    const support = overview.body.queues.find((q: { name: string }) => q.name === 'support');
    expect(support).toMatchObject({ waiting: 1, activeChats: 1, agentsOnline: 1 });
    expect(support.longestWaitSeconds).toBeGreaterThanOrEqual(0);
    expect(overview.body.queues.find((q: { name: string }) => q.name === 'billing')).toMatchObject({
      waiting: 0,
      longestWaitSeconds: null,
      oldestQueuedAt: null,
      activeChats: 0,
      agentsOnline: 1,
    });
    expect(overview.body.agentsOnline).toBe(1);
    expect(overview.body.agents.find((a: { id: string }) => a.id === desk.agentId)).toMatchObject({ name: 'Ada Agent', online: true, activeChats: 1 });
    expect(overview.body.chats.map((c: { id: string; state: string }) => [c.id, c.state])).toEqual([
      [vic, 'queued'],
      [uma, 'active'],
    ]);
    expect(overview.body.chats[1]).toMatchObject({ queue: 'support', user: { id: 'u-1', name: 'Uma' }, agent: { id: desk.agentId, name: 'Ada Agent' } });

    // Reading Ada's chat; writing in it is not the supervisor's until they take it.
    const messages = await t.api('GET', `/v1/desk/handovers/${uma}/messages`, { token: sup });
    expect(messages.body.messages.map((m: { text: string }) => m.text)).toEqual(['My parcel is late']);
    expect((await t.api('POST', `/v1/desk/handovers/${uma}/messages`, { token: sup, body: { text: 'Hi' } })).body.error.code).toBe('handover_not_yours');

    const taken = await t.api('POST', `/v1/desk/handovers/${uma}/take`, { token: sup });
    expect(taken.status).toBe(200);
    expect(taken.body).toMatchObject({ state: 'active', agent: { name: 'Sam Supervisor' } });
    expect((await t.api('POST', `/v1/desk/handovers/${uma}/take`, { token: sup })).status).toBe(200);
    expect((await t.api('POST', `/v1/desk/handovers/${uma}/messages`, { token: sup, body: { text: 'Sam here, I will sort it out.' } })).status).toBe(202);
    expect((await t.api('POST', `/v1/desk/handovers/${uma}/messages`, { token: desk.agentToken, body: { text: 'Ada again' } })).body.error.code).toBe(
      'handover_not_yours',
    );
    const events = (await t.api('GET', `/v1/handovers/${uma}/events`, { token: desk.apiKey })).body.events as Array<{
      type: string;
      data: { agent?: { name: string } };
    }>;
    expect(events.filter((e) => e.type === 'handover.accepted').map((e) => e.data.agent?.name)).toEqual(['Ada Agent', 'Sam Supervisor']);

    // A waiting user can be taken too; an ended chat cannot.
    expect((await t.api('POST', `/v1/desk/handovers/${vic}/take`, { token: sup })).body).toMatchObject({ state: 'active', agent: { name: 'Sam Supervisor' } });
    expect((await t.api('POST', `/v1/desk/handovers/${vic}/end`, { token: sup, body: {} })).status).toBe(200);
    const ended = await t.api('POST', `/v1/desk/handovers/${vic}/take`, { token: sup });
    expect(ended.status).toBe(409);
    expect(ended.body.error.code).toBe('handover_ended');
    expect((await t.api('POST', '/v1/desk/handovers/ho_nothing/take', { token: sup })).status).toBe(404);

    const after = await t.api('GET', '/v1/desk/supervisor/overview', { token: sup });
    expect(after.body.queues.find((q: { name: string }) => q.name === 'support')).toMatchObject({ waiting: 0, longestWaitSeconds: null, activeChats: 1 });
    expect(after.body.agents.find((a: { id: string }) => a.id === desk.agentId).activeChats).toBe(0);
  });
});
