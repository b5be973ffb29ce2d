import { afterEach, describe, expect, it } from 'vitest';
import { setUpDesk, startTestService, type TestService } from '../support/test-service.js';

describe('API keys: several per tenant, scopes, last use, revocation (pg)', () => {
  let t: TestService | undefined;
  afterEach(async () => {
    await t?.close();
  });

  it('rotates keys, keeps a read-only key to reads, and stops a revoked key', async () => {
    t = await startTestService('pg', { 'http.apiKeyCacheMs': 0 });
    const desk = await setUpDesk(t);
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    expect(created.status).toBe(201);

    const second = await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/api-keys`);
    expect(second.body).toMatchObject({ scope: 'bot' });
    const reader = await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/api-keys`, { scope: 'read' });
    expect(reader.body.scope).toBe('read');
    expect((await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/api-keys`, { scope: 'admin' })).status).toBe(400);

    // Both bot keys work side by side (rotation); the read-only key reads but changes nothing.
    expect((await t.api('GET', `/v1/handovers/${created.body.id}`, { token: second.body.apiKey })).status).toBe(200);
    expect((await t.api('GET', `/v1/handovers/${created.body.id}`, { token: reader.body.apiKey })).status).toBe(200);
    const write = await t.api('POST', `/v1/handovers/${created.body.id}/messages`, { token: reader.body.apiKey, body: { text: 'not allowed' } });
    expect(write.status).toBe(403);
    expect(write.body.error.code).toBe('forbidden_scope');

    // The list shows which keys are used, never the keys.
    const list = await t.admin('GET', `/v1/admin/tenants/${desk.tenantId}/api-keys`);
    expect(list.body.apiKeys).toHaveLength(3);
    expect(JSON.stringify(list.body)).not.toContain(second.body.apiKey.slice(0, 20));
    const bySecond = list.body.apiKeys.find((k: { id: string }) => k.id === second.body.id);
    expect(bySecond).toMatchObject({ scope: 'bot', hint: `…${second.body.apiKey.slice(-4)}`, revokedAt: null });
    expect(bySecond.lastUsedAt).not.toBeNull();

    // Revoking the first key: it stops, the second carries on.
    const first = list.body.apiKeys.find((k: { id: string }) => k.id !== second.body.id && k.id !== reader.body.id);
    expect((await t.admin('DELETE', `/v1/admin/tenants/${desk.tenantId}/api-keys/${first.id}`)).status).toBe(204);
    const revoked = await t.api('GET', `/v1/handovers/${created.body.id}`, { token: desk.apiKey });
    expect(revoked.status).toBe(401);
    expect(revoked.body.error.message).toMatch(/revoked/);
    expect((await t.api('GET', `/v1/handovers/${created.body.id}`, { token: second.body.apiKey })).status).toBe(200);
    // Unknown keys, and keys of another tenant, are not found.
    expect((await t.admin('DELETE', `/v1/admin/tenants/${desk.tenantId}/api-keys/key_nope`)).body.error.code).toBe('api_key_not_found');
    const other = await setUpDesk(t);
    expect((await t.admin('DELETE', `/v1/admin/tenants/${other.tenantId}/api-keys/${second.body.id}`)).status).toBe(404);
  });
});
