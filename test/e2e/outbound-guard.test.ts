import { afterEach, describe, expect, it } from 'vitest';
import { startSignedWebhookServer, type SignedWebhookServer } from '../fakes/signed-webhook-server.js';
import { createTestDb, type TestDb } from '../support/test-db.js';
import { eventually, setUpDesk, startTestService, type TestService } from '../support/test-service.js';

/** With DATABASE_URL the defaults refuse private and plain-http destinations (SSRF). */
describe('tenant-supplied URLs cannot reach private addresses (pg)', () => {
  let db: TestDb | undefined;
  let bot: SignedWebhookServer | undefined;
  const instances: TestService[] = [];
  afterEach(async () => {
    for (const t of instances.splice(0)) await t.close();
    await db?.dropAndClose();
    await bot?.close();
  });

  it('refuses such URLs when they are set, and refuses the connection when one was stored earlier', async () => {
    db = await createTestDb('pg');
    const strict = await startTestService('pg', { 'outbound.allowPrivate': false, 'outbound.allowHttp': false }, { db });
    instances.push(strict);
    for (const [webhookUrl, message] of [
      ['http://hooks.example.com/bot', /must use https/],
      ['https://127.0.0.1:8443/bot', /127\.0\.0\.1 is a loopback/],
      ['https://169.254.169.254/latest/meta-data/', /169\.254\.169\.254/],
      ['https://localhost/bot', /localhost is this machine/],
    ] as const) {
      const res = await strict.admin('POST', '/v1/admin/tenants', { name: 'Acme', webhookUrl });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('url_not_allowed');
      expect(res.body.error.message).toMatch(message);
    }
    const tenant = await strict.admin('POST', '/v1/admin/tenants', { name: 'Acme', webhookUrl: 'https://hooks.example.com/bot' });
    expect(tenant.status).toBe(201);
    expect((await strict.admin('PATCH', `/v1/admin/tenants/${tenant.body.id}`, { webhookUrl: 'https://10.0.0.8/bot' })).body.error.code).toBe(
      'url_not_allowed',
    );
    const connector = await strict.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'webhook',
      name: 'hd',
      config: { url: 'https://192.168.0.10/events', secret: 'whsec_' + Buffer.from('a-secret-of-enough-length-0123456').toString('base64') },
    });
    expect(connector.status).toBe(400);
    expect(connector.body.error).toMatchObject({ code: 'url_not_allowed', message: expect.stringMatching(/config\.url may not point there: 192\.168\.0\.10/) });
    // Changing a connector's config later is held to the same rule.
    const hdSecret = 'whsec_' + Buffer.from('a-secret-of-enough-length-0123456').toString('base64');
    const fine = await strict.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'webhook',
      name: 'hd',
      config: { url: 'https://hooks.example.com/events', secret: hdSecret },
    });
    expect(fine.status).toBe(201);
    const patched = await strict.admin('PATCH', `/v1/admin/tenants/${tenant.body.id}/connectors/${fine.body.id}`, {
      config: { url: 'http://hooks.example.com/events' },
    });
    expect(patched.status).toBe(400);
    expect(patched.body.error.code).toBe('url_not_allowed');

    // A URL stored while private destinations were allowed (another instance, or an older setting)
    // is still refused where the connection is made.
    const lenient = await startTestService('pg', {}, { db });
    instances.push(lenient);
    await lenient.service.stopBackground(0);
    let secret = '';
    bot = await startSignedWebhookServer(() => secret);
    const local = await setUpDesk(lenient, { webhookUrl: bot.url });
    secret = local.webhookSecret;
    const created = await lenient.api('POST', '/v1/handovers', { token: local.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    expect(created.status).toBe(201);
    expect((await lenient.api('POST', `/v1/desk/handovers/${created.body.id}/accept`, { token: local.agentToken })).status).toBe(200);
    const attempt = await eventually(
      async () => {
        const { rows } = await db!.query<{ error: string; outcome: string }>(
          `select a.error, a.outcome from delivery_attempts a join outbox o on o.id = a.outbox_id where o.tenant_id = $1 and o.target = 'bot'`,
          [local.tenantId],
        );
        return rows[0];
      },
      'the strict instance to try the stored webhook',
      15_000,
    );
    expect(attempt.outcome).toBe('failed');
    expect(attempt.error).toMatch(/^127\.0\.0\.1 may not be called: 127\.0\.0\.1 is a loopback/);
    expect(bot.received).toEqual([]);
  });
});
