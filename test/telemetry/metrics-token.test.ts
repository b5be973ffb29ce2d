import { afterEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../support/test-service.js';

describe('/metrics behind HANDOVER_METRICS_TOKEN (pglite)', () => {
  let t: TestService | undefined;
  afterEach(async () => t?.close());

  it('answers only the configured tokens when one is set', async () => {
    t = await startTestService('pglite', { metricsToken: 'scrape-old-0123456789,scrape-new-0123456789' });
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Metrics' });
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'webhook',
      name: 'hd',
      config: { url: 'http://127.0.0.1:9/hook', secret: 'whsec_' + Buffer.alloc(32, 1).toString('base64') },
    });
    expect(connector.status).toBe(201);
    for (const token of [undefined, 'wrong', t.adminToken]) {
      const res = await t.api('GET', '/metrics', { token });
      expect(res.status, String(token)).toBe(401);
      expect(res.body.error.code).toBe('unauthorized');
      expect(JSON.stringify(res.body)).not.toContain(connector.body.id);
    }
    for (const token of ['scrape-old-0123456789', 'scrape-new-0123456789']) {
      const res = await t.api('GET', '/metrics', { token });
      expect(res.status).toBe(200);
      expect(res.body).toContain('http_server_active_requests');
    }
  });

  it('is open without one (the default)', async () => {
    t = await startTestService('pglite');
    expect((await t.api('GET', '/metrics')).status).toBe(200);
  });
});
