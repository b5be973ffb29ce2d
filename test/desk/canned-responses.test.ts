import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbKinds, type DbKind } from '../support/test-db.js';
import { setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * Canned responses over the desk API: the tenant's (supervisors manage them) and each agent's own
 * (nobody else sees them), searched by shortcut and text, placeholders filled from a chat.
 */
const PASSWORD = 'correct horse battery';

describe.each<DbKind>(dbKinds)('canned responses (%s)', (kind) => {
  let t: TestService;
  let desk: DeskSetup;
  let other: DeskSetup;
  let supervisor: string;
  let colleague: string;

  async function signIn(role: 'agent' | 'supervisor', name: string) {
    const email = `${role}-${Math.random().toString(36).slice(2)}@example.com`;
    expect((await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/agents`, { email, name, password: PASSWORD, role })).status).toBe(201);
    const login = await t.api('POST', '/v1/desk/login', { body: { email, password: PASSWORD } });
    expect(login.status).toBe(200);
    return login.body.token as string;
  }

  beforeAll(async () => {
    t = await startTestService(kind);
    desk = await setUpDesk(t);
    other = await setUpDesk(t, { console: false });
    supervisor = await signIn('supervisor', 'Sam Supervisor');
    colleague = await signIn('agent', 'Cy Colleague');
  });

  afterAll(async () => {
    desk?.console?.close();
    await t?.close();
  });

  const list = (token: string, query = '') => t.api('GET', `/v1/desk/canned-responses${query}`, { token });
  const create = (token: string, body: Record<string, unknown>) => t.api('POST', '/v1/desk/canned-responses', { token, body });

  it("keeps the tenant's to supervisors and each agent's own to that agent", async () => {
    const refused = await create(desk.agentToken, { shortcut: 'hello', text: 'Hello!', scope: 'tenant' });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('forbidden_role');

    const hello = await create(supervisor, { shortcut: 'hello', text: 'Hi {{user.name}}, {{agent.name}} here. How can I help?', scope: 'tenant' });
    expect(hello.status).toBe(201);
    expect(hello.body).toMatchObject({ scope: 'tenant', shortcut: 'hello' });
    const mine = await create(desk.agentToken, { shortcut: 'refund', text: 'Your refund for {{ user.email }} is on its way. {{user.unknown}}' });
    expect(mine.status).toBe(201);
    expect(mine.body.scope).toBe('personal');

    // The agent sees both; a colleague only the tenant's; another tenant nothing.
    expect((await list(desk.agentToken)).body.cannedResponses.map((c: { shortcut: string }) => c.shortcut)).toEqual(['hello', 'refund']);
    expect((await list(colleague)).body.cannedResponses.map((c: { shortcut: string }) => c.shortcut)).toEqual(['hello']);
    expect((await list(other.agentToken)).body.cannedResponses).toEqual([]);

    // A colleague cannot touch the agent's own (it does not exist for them), nor an agent the tenant's.
    const hidden = await t.api('PATCH', `/v1/desk/canned-responses/${mine.body.id}`, { token: colleague, body: { text: 'mine now' } });
    expect(hidden.status).toBe(404);
    expect(hidden.body.error.code).toBe('canned_response_not_found');
    expect((await t.api('DELETE', `/v1/desk/canned-responses/${mine.body.id}`, { token: other.agentToken })).status).toBe(404);
    expect((await t.api('PATCH', `/v1/desk/canned-responses/${hello.body.id}`, { token: desk.agentToken, body: { text: 'changed' } })).body.error.code).toBe(
      'forbidden_role',
    );
    expect((await t.api('DELETE', `/v1/desk/canned-responses/${hello.body.id}`, { token: desk.agentToken })).status).toBe(403);

    // The same shortcut twice in one scope is refused; the same in the other scope is fine.
    expect((await create(desk.agentToken, { shortcut: 'refund', text: 'again' })).body.error.code).toBe('already_exists');
    const own = await create(desk.agentToken, { shortcut: 'hello', text: 'Hey {{user.name}}!' });
    expect(own.status).toBe(201);
    expect((await t.api('PATCH', `/v1/desk/canned-responses/${own.body.id}`, { token: desk.agentToken, body: { shortcut: 'refund' } })).status).toBe(409);
    const renamed = await t.api('PATCH', `/v1/desk/canned-responses/${own.body.id}`, { token: desk.agentToken, body: { shortcut: 'hey' } });
    expect(renamed.status).toBe(200);
    expect(renamed.body.shortcut).toBe('hey');
    expect((await t.api('DELETE', `/v1/desk/canned-responses/${own.body.id}`, { token: desk.agentToken })).status).toBe(204);
    expect((await t.api('DELETE', `/v1/desk/canned-responses/${own.body.id}`, { token: desk.agentToken })).status).toBe(404);
  });

  it('searches shortcuts first, then texts, bounded, and fills placeholders from a chat it can read', async () => {
    await create(desk.agentToken, { shortcut: 'ship', text: 'Shipping takes 2 days.' });
    await create(desk.agentToken, { shortcut: 'wrap', text: 'Anything else about shipping? 100% sure_' });
    const found = await list(desk.agentToken, '?q=SHIP');
    expect(found.status).toBe(200);
    expect(found.body.cannedResponses.map((c: { shortcut: string }) => c.shortcut)).toEqual(['ship', 'wrap']);
    // LIKE wildcards typed by the agent are matched as themselves.
    expect((await list(desk.agentToken, `?q=${encodeURIComponent('0%')}`)).body.cannedResponses.map((c: { shortcut: string }) => c.shortcut)).toEqual(['wrap']);
    expect((await list(desk.agentToken, '?q=_')).body.cannedResponses.map((c: { shortcut: string }) => c.shortcut)).toEqual(['wrap']);
    expect((await list(desk.agentToken, '?limit=1')).body.cannedResponses).toHaveLength(1);
    for (const bad of ['?limit=0', '?limit=101', `?q=${'x'.repeat(101)}`]) {
      const res = await list(desk.agentToken, bad);
      expect(res.status, bad).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    }
    for (const body of [
      { shortcut: 'has space', text: 'x' },
      { shortcut: 'ok', text: '' },
      { shortcut: 'ok', text: 'x'.repeat(5001) },
      { shortcut: 'ok', text: 'x', scope: 'team' },
      { shortcut: 'ok', text: 'x', extra: 1 },
    ]) {
      expect((await create(desk.agentToken, body)).status, JSON.stringify(body).slice(0, 60)).toBe(400);
    }

    const handover = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId: `c-${kind}`, queue: 'support', user: { id: 'u-1', name: 'Uma', email: 'uma@example.com' } },
    });
    expect(handover.status).toBe(201);
    const rendered = await list(desk.agentToken, `?handoverId=${handover.body.id}`);
    expect(rendered.status).toBe(200);
    const byShortcut = Object.fromEntries(rendered.body.cannedResponses.map((c: { shortcut: string; rendered: string }) => [c.shortcut, c.rendered]));
    expect(byShortcut.hello).toBe('Hi Uma, Ada Agent here. How can I help?');
    expect(byShortcut.refund).toBe('Your refund for uma@example.com is on its way. {{user.unknown}}');
    // Another tenant's chat is unknown here.
    const foreign = await list(other.agentToken, `?handoverId=${handover.body.id}`);
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('handover_not_found');
  });
});
