import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { provisionDemo } from '../../src/demo/provision-demo.js';
import { ADMIN_TOKEN, startTestService, type TestService } from '../support/test-service.js';

describe('the browser pages and the demo provisioning', () => {
  let t: TestService | undefined;
  afterEach(async () => t?.close());

  it('serves the desk and the demo as files, with a strict policy and no way out of web/', async () => {
    t = await startTestService('pglite', { 'demo.enabled': true, 'demo.port': 18181 });
    const page = await fetch(`${t.url}/desk`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(await page.text()).toContain('<script type="module" src="/desk/app.js">');
    const script = await fetch(`${t.url}/desk/app.js`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await fetch(`${t.url}/demo/`)).status).toBe(200);
    expect(await (await fetch(`${t.url}/demo/config.json`)).json()).toEqual({ botPort: 18181 });
    expect((await fetch(`${t.url}/demo`)).headers.get('content-security-policy')).toContain("connect-src 'self' http://127.0.0.1:18181");

    for (const path of [
      '/desk/..%2F..%2Fpackage.json',
      '/desk/%2e%2e%2fpackage.json',
      '/desk/.env',
      '/desk/app.js%00.html',
      '/desk/nothing.js',
      '/desk/..%5Cpackage.json',
      '/demo/..%2Fdesk%2Fapp.js',
    ]) {
      const res = await fetch(`${t.url}${path}`);
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_found');
    }
  });

  it('keeps /demo away when the demo is off', async () => {
    t = await startTestService('pglite', { 'demo.enabled': false });
    expect((await fetch(`${t.url}/desk`)).status).toBe(200);
    expect((await fetch(`${t.url}/demo`)).status).toBe(404);
    expect((await fetch(`${t.url}/demo/config.json`)).status).toBe(404);
  });

  it('provisions the demo with several admin tokens configured (it sent the whole list before)', async () => {
    t = await startTestService('pglite', { adminToken: `rotated-out-token-0123456789, ${ADMIN_TOKEN}` });
    const dataDir = await mkdtemp(join(tmpdir(), 'handover-demo-'));
    try {
      const demo = await provisionDemo(t.service.app, t.service.adminToken, dataDir);
      expect((await t.api('GET', '/v1/availability?queue=support', { token: demo.apiKey })).status).toBe(200);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('provisions the demo tenant once and replaces lost secrets', async () => {
    t = await startTestService('pglite');
    const dataDir = await mkdtemp(join(tmpdir(), 'handover-demo-'));
    try {
      const first = await provisionDemo(t.service.app, t.adminToken, dataDir);
      expect((await stat(join(dataDir, 'demo.json'))).mode & 0o077).toBe(0);
      const again = await provisionDemo(t.service.app, t.adminToken, dataDir);
      expect(again).toEqual(first);
      const tenants = await t.admin('GET', '/v1/admin/tenants');
      expect(tenants.body.tenants.filter((x: { name: string }) => x.name === 'Demo')).toHaveLength(1);
      const queues = await t.admin('GET', `/v1/admin/tenants/${first.tenantId}/queues`);
      expect(queues.body.queues.map((q: { name: string }) => q.name).sort()).toEqual(['billing', 'support']);

      // The agent login works, and the API key reaches the bot API.
      const login = await t.api('POST', '/v1/desk/login', { body: { email: first.agentEmail, password: first.agentPassword } });
      expect(login.status).toBe(200);
      expect((await t.api('GET', '/v1/availability?queue=support', { token: first.apiKey })).status).toBe(200);

      // demo.json lost: same tenant, a new key and a new agent (passwords cannot be read back).
      await rm(join(dataDir, 'demo.json'));
      const fresh = await provisionDemo(t.service.app, t.adminToken, dataDir);
      expect(fresh.tenantId).toBe(first.tenantId);
      expect(fresh.apiKey).not.toBe(first.apiKey);
      expect(fresh.agentEmail).not.toBe(first.agentEmail);
      expect((await t.api('POST', '/v1/desk/login', { body: { email: fresh.agentEmail, password: fresh.agentPassword } })).status).toBe(200);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
