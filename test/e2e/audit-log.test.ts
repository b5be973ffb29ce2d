import { afterEach, describe, expect, it } from 'vitest';
import { setUpDesk, startTestService, type TestService } from '../support/test-service.js';

describe('audit log (pg)', () => {
  let t: TestService | undefined;
  afterEach(async () => {
    await t?.close();
  });

  it('records admin changes and sign-ins, newest first, never their secrets, and cannot be rewritten', async () => {
    t = await startTestService('pg');
    const desk = await setUpDesk(t);
    const key = await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/api-keys`);
    expect(key.status).toBe(201);
    expect((await t.admin('PATCH', `/v1/admin/tenants/${desk.tenantId}`, { name: 'Renamed' })).status).toBe(200);
    expect((await t.admin('GET', '/v1/admin/tenants')).status).toBe(200);
    const me = await t.api('GET', '/v1/desk/me', { token: desk.agentToken });
    const email: string = me.body.agent?.email ?? me.body.email;
    expect((await t.api('POST', '/v1/desk/login', { body: { email, password: 'not it' } })).status).toBe(401);
    expect((await t.api('POST', '/v1/desk/login', { body: { email, password: 'correct horse battery' } })).status).toBe(200);

    const log = await t.admin('GET', `/v1/admin/audit-log?tenantId=${desk.tenantId}`);
    expect(log.status).toBe(200);
    const actions = log.body.entries.map((e: { actor: string; action: string; outcome: number }) => `${e.actor} ${e.action} ${e.outcome}`);
    expect(actions.slice(0, 3)).toEqual([
      `agent:${email} desk.login 200`,
      'admin PATCH /v1/admin/tenants/:tenantId 200',
      'admin POST /v1/admin/tenants/:tenantId/api-keys 201',
    ]);
    // Setting up the desk: queue and agent created, the first sign-in.
    expect(actions).toContain('admin POST /v1/admin/tenants/:tenantId/queues 201');
    expect(actions).toContain('admin POST /v1/admin/tenants/:tenantId/agents 201');
    expect(log.body.entries.every((e: { tenantId: string }) => e.tenantId === desk.tenantId)).toBe(true);
    // The failed sign-in names no tenant (the password did not prove one): it is in the whole log.
    const all = await t.admin('GET', '/v1/admin/audit-log?limit=50');
    expect(all.body.entries.some((e: { action: string; actor: string }) => e.action === 'desk.login.failed' && e.actor === `agent:${email}`)).toBe(true);
    // Reads are not recorded; secrets never are.
    expect(all.body.entries.some((e: { action: string }) => e.action.startsWith('GET'))).toBe(false);
    const text = JSON.stringify(all.body);
    for (const secret of [key.body.apiKey, desk.apiKey, desk.webhookSecret, 'correct horse battery', 'not it']) expect(text).not.toContain(secret);
    // Paging: older entries after the last id of a page.
    const page = await t.admin('GET', `/v1/admin/audit-log?limit=2`);
    const next = await t.admin('GET', `/v1/admin/audit-log?limit=2&before=${page.body.entries[1].id}`);
    expect(Number(next.body.entries[0].id)).toBeLessThan(Number(page.body.entries[1].id));

    // Append-only, even for the database's own users.
    await expect(t.db.query(`update audit_log set actor = 'someone else'`)).rejects.toThrow(/append-only/);
    await expect(t.db.query('delete from audit_log')).rejects.toThrow(/append-only/);
    // The API has no way to change it either: the path answers reads only.
    const deleted = await t.admin('DELETE', '/v1/admin/audit-log');
    expect(deleted.status).toBe(405);
    expect(deleted.headers.get('allow')).toBe('GET, HEAD');
  });
});
