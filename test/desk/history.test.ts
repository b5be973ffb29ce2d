import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, dbKinds, type DbKind, type TestDb } from '../support/test-db.js';
import { setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * The desk's history over the API: closed chats of the agent and of the team, searched by user, text
 * and date, a bounded page at a time with a cursor, in a number of statements that does not grow with
 * the data; a returning user's earlier chats; one closed chat read on its own.
 */
const PASSWORD = 'correct horse battery';

describe.each<DbKind>(dbKinds)('desk history (%s)', (kind) => {
  let t: TestService;
  let db: TestDb;
  let desk: DeskSetup;
  let colleague: string;
  let billingAgent: string;
  let statements = 0;
  const ids: Record<string, string> = {};

  async function signIn(name: string, extra: Record<string, unknown> = {}) {
    const email = `${name.toLowerCase()}-${Math.random().toString(36).slice(2)}@example.com`;
    expect((await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/agents`, { email, name, password: PASSWORD, ...extra })).status).toBe(201);
    const token: string = (await t.api('POST', '/v1/desk/login', { body: { email, password: PASSWORD } })).body.token;
    expect((await t.api('PUT', '/v1/desk/presence', { token, body: { presence: 'available' } })).status).toBe(200);
    return token;
  }

  async function chat(
    name: string,
    input: { queue?: string; user: Record<string, string>; agent?: string; say?: string[]; transcript?: string[]; end?: boolean },
  ) {
    const created = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: {
        conversationId: `c-${name}`,
        queue: input.queue ?? 'support',
        user: input.user,
        transcript: (input.transcript ?? []).map((text) => ({ role: 'user', text })),
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id: string = created.body.id;
    if (input.agent) expect((await t.api('POST', `/v1/desk/handovers/${id}/accept`, { token: input.agent })).status).toBe(200);
    for (const [i, text] of (input.say ?? []).entries())
      expect((await t.api('POST', `/v1/handovers/${id}/messages`, { token: desk.apiKey, body: { id: `${name}-${i}`, text } })).status).toBe(202);
    if (input.end !== false) expect((await t.api('POST', `/v1/handovers/${id}/end`, { token: desk.apiKey, body: {} })).status).toBe(200);
    ids[name] = id;
    return id;
  }

  beforeAll(async () => {
    db = await createTestDb(kind);
    // The statements the service runs about closed chats or messages are counted (the real database
    // answers each); background work (timers, delivery) touches neither.
    const counting = new Proxy(db, {
      get(target, prop, receiver) {
        if (prop === 'query') {
          return (...args: Parameters<TestDb['query']>) => {
            const text = typeof args[0] === 'string' ? args[0] : args[0].text;
            if (/\bmessages\b|ended_at/.test(text)) statements++;
            return target.query(...args);
          };
        }
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    t = await startTestService(kind, {}, { db: counting });
    desk = await setUpDesk(t);
    expect((await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/queues`, { name: 'billing' })).status).toBe(201);
    colleague = await signIn('Cy');
    billingAgent = await signIn('Bea', { queues: ['billing'] });
    await chat('parcel', { user: { id: 'u-1', name: 'Uma Ulster', email: 'uma@example.com' }, agent: desk.agentToken, say: ['My parcel is late'] });
    await chat('refund', { user: { id: 'u-1', name: 'Uma Ulster', email: 'uma@example.com' }, agent: colleague, say: ['I want a refund'] });
    await chat('invoice', { user: { id: 'u-2', name: 'Otto' }, agent: desk.agentToken, transcript: ['A question about my invoice_2 (100%)'] });
    await chat('billing', { queue: 'billing', user: { id: 'u-3', name: 'Bo' }, agent: billingAgent, say: ['Charged twice'] });
    await chat('live', { user: { id: 'u-1', name: 'Uma Ulster' }, agent: desk.agentToken, end: false });
  });

  afterAll(async () => {
    desk?.console?.close();
    await t?.close();
    await db?.dropAndClose();
  });

  const history = (token: string, query = '') => t.api('GET', `/v1/desk/history${query}`, { token });
  const names = (res: { body: { handovers: Array<{ id: string }> } }) => res.body.handovers.map((h) => Object.keys(ids).find((k) => ids[k] === h.id));

  it("lists the agent's closed chats and the team's, newest first", async () => {
    const mine = await history(desk.agentToken);
    expect(mine.status).toBe(200);
    expect(names(mine)).toEqual(['invoice', 'parcel']);
    expect(mine.body.next).toBeNull();
    expect(mine.body.handovers[1]).toMatchObject({
      user: { id: 'u-1', name: 'Uma Ulster' },
      queue: 'support',
      agent: { name: 'Ada Agent' },
      endReason: 'bot_ended',
      preview: 'My parcel is late',
    });
    // No message: the preview is the last line said to the bot.
    expect(mine.body.handovers[0].preview).toBe('A question about my invoice_2 (100%)');
    expect(names(await history(desk.agentToken, '?scope=team'))).toEqual(['billing', 'invoice', 'refund', 'parcel']);
    // An agent of the billing queue sees its chats only.
    expect(names(await history(billingAgent, '?scope=team'))).toEqual(['billing']);
    expect(names(await history(colleague))).toEqual(['refund']);
  });

  it('searches by user, by text and by date', async () => {
    expect(names(await history(desk.agentToken, '?scope=team&user=u-1'))).toEqual(['refund', 'parcel']);
    expect(names(await history(desk.agentToken, '?scope=team&user=ULSTER'))).toEqual(['refund', 'parcel']);
    expect(names(await history(desk.agentToken, '?scope=team&user=uma%40example'))).toEqual(['refund', 'parcel']);
    expect(names(await history(desk.agentToken, '?scope=team&q=PARCEL'))).toEqual(['parcel']);
    // The conversation with the bot is searched too; LIKE wildcards are taken as typed.
    expect(names(await history(desk.agentToken, `?scope=team&q=${encodeURIComponent('invoice_2 (100%')}`))).toEqual(['invoice']);
    expect(names(await history(desk.agentToken, '?scope=team&q=e_2'))).toEqual(['invoice']);
    expect(names(await history(desk.agentToken, '?scope=team&q=nothing like this'))).toEqual([]);
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    expect(names(await history(desk.agentToken, `?scope=team&from=${today}&to=${today}`))).toHaveLength(4);
    expect(names(await history(desk.agentToken, `?scope=team&from=${tomorrow}`))).toEqual([]);
    expect(names(await history(desk.agentToken, `?scope=team&to=${yesterday}`))).toEqual([]);
    expect(names(await history(desk.agentToken, `?scope=team&user=u-1&from=${encodeURIComponent(new Date(Date.now() - 3_600_000).toISOString())}`))).toEqual([
      'refund',
      'parcel',
    ]);
  });

  it('pages with a cursor, and refuses what it cannot take', async () => {
    const seen: string[] = [];
    let before = '';
    for (let page = 0; page < 10; page++) {
      const res = await history(desk.agentToken, `?scope=team&limit=1${before ? `&before=${before}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.body.handovers.length).toBeLessThanOrEqual(1);
      seen.push(...(names(res) as string[]));
      if (!res.body.next) break;
      before = res.body.next;
    }
    expect(seen).toEqual(['billing', 'invoice', 'refund', 'parcel']);
    for (const bad of [
      '?limit=0',
      '?limit=51',
      '?scope=everyone',
      '?from=yesterday',
      '?to=2026-13-45',
      `?q=${'x'.repeat(201)}`,
      '?before=not-a-cursor',
      `?before=${Buffer.from('["x","y"]').toString('base64url')}`,
      // Dates the database cannot hold: year 0, and the day after the last day of 9999.
      '?from=0000-01-01',
      '?to=9999-12-31',
      `?before=${Buffer.from('["0000-01-01T00:00:00Z","ho_x"]').toString('base64url')}`,
      `?before=${Buffer.from('["+010000-01-01T00:00:00.000Z","ho_x"]').toString('base64url')}`,
    ]) {
      const res = await history(desk.agentToken, bad);
      expect(res.status, bad).toBe(400);
      expect(res.body.error.code, bad).toBe('invalid_request');
    }
  });

  it('answers a page in the same number of statements however many chats there are', async () => {
    const count = async () => {
      const before = statements;
      const res = await history(desk.agentToken, '?scope=team&limit=50');
      expect(res.status).toBe(200);
      return { statements: statements - before, chats: res.body.handovers.length as number };
    };
    const few = await count();
    for (let i = 0; i < 30; i++) await chat(`more-${i}`, { user: { id: `u-more-${i}` }, say: ['one', 'two'] });
    const many = await count();
    expect(many.chats).toBe(few.chats + 30);
    expect(many.statements).toBe(few.statements);
    expect(many.statements).toBe(1);
  });

  it("shows a returning user's earlier chats, and reads a closed chat on its own", async () => {
    const earlier = await t.api('GET', `/v1/desk/handovers/${ids.live}/earlier`, { token: desk.agentToken });
    expect(earlier.status).toBe(200);
    expect(names(earlier)).toEqual(['refund', 'parcel']);
    expect((await t.api('GET', `/v1/desk/handovers/${ids.invoice}/earlier`, { token: desk.agentToken })).body.handovers).toEqual([]);
    // Not for an agent who cannot read the chat, nor for another tenant.
    expect((await t.api('GET', `/v1/desk/handovers/${ids.live}/earlier`, { token: billingAgent })).body.error.code).toBe('handover_not_found');

    const closed = await t.api('GET', `/v1/desk/handovers/${ids.invoice}`, { token: desk.agentToken });
    expect(closed.status).toBe(200);
    expect(closed.body).toMatchObject({
      id: ids.invoice,
      state: 'ended',
      queue: 'support',
      transcript: [{ role: 'user', text: 'A question about my invoice_2 (100%)' }],
    });
    expect(
      (await t.api('GET', `/v1/desk/handovers/${ids.parcel}/messages`, { token: desk.agentToken })).body.messages.map((m: { text: string }) => m.text),
    ).toEqual(['My parcel is late']);
    expect((await t.api('GET', `/v1/desk/handovers/${ids.invoice}`, { token: billingAgent })).status).toBe(404);
    expect((await t.api('GET', '/v1/desk/handovers/ho_nothing', { token: desk.agentToken })).status).toBe(404);
  });
});
