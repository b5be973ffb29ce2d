import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * Tenant isolation as a tested property: every tenant-scoped operation, called with one tenant's
 * credentials and another tenant's ids, answers 404 and gives nothing of the other tenant away. The
 * operations come from the service's own OpenAPI document, so a new route cannot be forgotten here:
 * one without a request recipe below fails the test.
 */
const bodies: Record<string, unknown> = {
  'POST /v1/handovers/{id}/messages': { id: 'x-1', text: 'intruder' },
  'POST /v1/handovers/{id}/typing': { typing: true },
  'POST /v1/handovers/{id}/end': {},
  'POST /v1/handovers/{id}/rating': { score: 5 },
  'GET /v1/handovers/{id}': undefined,
  'GET /v1/handovers/{id}/events': undefined,
  'GET /v1/handovers/{id}/messages': undefined,
  'POST /v1/desk/handovers/{id}/accept': {},
  'POST /v1/desk/handovers/{id}/messages': { text: 'intruder' },
  'GET /v1/desk/handovers/{id}/messages': undefined,
  'POST /v1/desk/handovers/{id}/typing': { typing: true },
  'POST /v1/desk/handovers/{id}/transfer': { queue: 'support' },
  'POST /v1/desk/handovers/{id}/end': {},
  'GET /v1/desk/handovers/{id}/notes': undefined,
  'POST /v1/desk/handovers/{id}/notes': { text: 'intruder' },
  'GET /v1/desk/handovers/{id}': undefined,
  'GET /v1/desk/handovers/{id}/earlier': undefined,
  'POST /v1/desk/handovers/{id}/take': undefined,
  'POST /v1/handovers/{id}/attachments': { intruder: true },
  'GET /v1/handovers/{id}/attachments/{attachmentId}': undefined,
  'POST /v1/desk/handovers/{id}/attachments': { intruder: true },
};
/** Operations for supervisors only: called with a supervisor of the first tenant (an agent gets 403 first). */
const supervisorOnly = new Set(['POST /v1/desk/handovers/{id}/take']);

describe('tenant isolation: another tenant’s ids are not found (pg)', () => {
  let t: TestService;
  let a: DeskSetup;
  let b: DeskSetup;
  let bHandover: string;
  let bAccepted: string;
  let aSupervisor: string;
  const bSecrets: string[] = [];

  beforeAll(async () => {
    t = await startTestService('pg');
    a = await setUpDesk(t);
    const supervisor = { email: 'sam-a@example.com', password: 'supervisor password 1' };
    expect((await t.admin('POST', `/v1/admin/tenants/${a.tenantId}/agents`, { ...supervisor, name: 'Sam', role: 'supervisor' })).status).toBe(201);
    aSupervisor = (await t.api('POST', '/v1/desk/login', { body: supervisor })).body.token;
    b = await setUpDesk(t, { queue: { name: 'support' } });
    // Tenant B has a waiting handover and an accepted one with a message in it.
    const waiting = await t.api('POST', '/v1/handovers', {
      token: b.apiKey,
      body: { conversationId: 'b-1', queue: 'support', user: { id: 'b-user', email: 'secret-b@example.com' } },
    });
    expect(waiting.status).toBe(201);
    bHandover = waiting.body.id;
    const accepted = await t.api('POST', '/v1/handovers', { token: b.apiKey, body: { conversationId: 'b-2', queue: 'support', user: { id: 'b-user-2' } } });
    bAccepted = accepted.body.id;
    expect((await t.api('POST', `/v1/desk/handovers/${bAccepted}/accept`, { token: b.agentToken })).status).toBe(200);
    expect((await t.api('POST', `/v1/handovers/${bAccepted}/messages`, { token: b.apiKey, body: { id: 'b-m', text: 'b private text' } })).status).toBe(202);
    bSecrets.push(bHandover, bAccepted, 'secret-b@example.com', 'b private text', 'b-user', b.tenantId);
  });

  afterAll(async () => {
    await t?.close();
  });

  it('covers every operation on a handover id, for the bot API and the desk', async () => {
    const spec = (await t.api('GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const operations = Object.entries(spec.paths)
      .filter(([path]) => /^\/v1\/(desk\/)?handovers\/\{id\}/.test(path))
      .flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`));
    expect(operations.length).toBeGreaterThan(8);
    const withoutRecipe = operations.filter((op) => !(op in bodies));
    expect(withoutRecipe, 'operations without a request recipe in this test').toEqual([]);

    for (const op of operations) {
      const [method, template] = op.split(' ') as [string, string];
      const desk = template.startsWith('/v1/desk/');
      for (const id of [bHandover, bAccepted]) {
        const res = await t.api(method, template.replace('{id}', id), {
          token: supervisorOnly.has(op) ? aSupervisor : desk ? a.agentToken : a.apiKey,
          ...(bodies[op] !== undefined ? { body: bodies[op] } : {}),
        });
        expect(res.status, `${op} with another tenant's handover`).toBe(404);
        expect(res.body.error.code, op).toBe('handover_not_found');
        const text = JSON.stringify(res.body);
        for (const secret of bSecrets) expect(text, `${op} leaks ${secret}`).not.toContain(secret);
      }
    }
    // Nothing of B changed: its handovers are as they were, with no intruder's message.
    const waiting = await t.api('GET', `/v1/handovers/${bHandover}`, { token: b.apiKey });
    expect(waiting.body).toMatchObject({ state: 'queued' });
    const accepted = await t.api('GET', `/v1/handovers/${bAccepted}`, { token: b.apiKey });
    expect(accepted.body).toMatchObject({ state: 'active' });
    const messages = await t.db.query<{ text: string }>('select text from messages where handover_id = any($1) order by seq', [[bHandover, bAccepted]]);
    expect(messages.rows.map((r) => r.text)).toEqual(['b private text']);
  });

  it("counts only the tenant's own agents when it says whether someone can answer", async () => {
    // Tenants A and B have available agents serving all their queues; tenant C has none.
    const c = await t.admin('POST', '/v1/admin/tenants', { name: 'Nobody Home' });
    expect((await t.admin('POST', `/v1/admin/tenants/${c.body.id}/queues`, { name: 'support' })).status).toBe(201);
    const availability = await t.api('GET', '/v1/availability?queue=support', { token: c.body.apiKey });
    expect(availability.status).toBe(200);
    expect(availability.body).toMatchObject({ available: false, reason: 'no_agents', agentsOnline: 0 });
    const refused = await t.api('POST', '/v1/handovers', { token: c.body.apiKey, body: { conversationId: 'c-1', queue: 'support', user: { id: 'u' } } });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('no_agents_available');
  });

  it('keeps names, cursors and lists within the tenant', async () => {
    // A queue name only B has is unknown to A.
    const onlyB = await t.admin('POST', `/v1/admin/tenants/${b.tenantId}/queues`, { name: 'b-only' });
    expect(onlyB.status).toBe(201);
    for (const [method, path, body] of [
      ['GET', '/v1/availability?queue=b-only', undefined],
      ['POST', '/v1/handovers', { conversationId: 'a-x', queue: 'b-only', user: { id: 'u' } }],
    ] as const) {
      const res = await t.api(method, path, { token: a.apiKey, ...(body ? { body } : {}) });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe('queue_not_found');
    }
    // B's event ids are no cursor for A.
    const bEvents = await t.api('GET', `/v1/handovers/${bAccepted}/events`, { token: b.apiKey });
    const bEventId: string = bEvents.body.events[0].id;
    const cursor = await t.api('GET', `/v1/handovers/${bAccepted}/events?after=${bEventId}`, { token: a.apiKey });
    expect(cursor.status).toBe(404);
    // A's desk lists show nothing of B.
    for (const path of ['/v1/desk/handovers', '/v1/desk/queues', '/v1/desk/me']) {
      const res = await t.api('GET', path, { token: a.agentToken });
      expect(res.status, path).toBe(200);
      const text = JSON.stringify(res.body);
      for (const secret of bSecrets) expect(text, `${path} leaks ${secret}`).not.toContain(secret);
    }
    // A's agent cannot take B's next waiting user.
    const next = await t.api('POST', '/v1/desk/accept-next', { token: a.agentToken, body: {} });
    expect(JSON.stringify(next.body)).not.toContain(bHandover);
  });
});
