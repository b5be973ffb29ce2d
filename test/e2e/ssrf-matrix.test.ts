import { createServer, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { listenOnLoopback } from '../support/ports.js';
import { createTestDb, type TestDb } from '../support/test-db.js';
import { eventually, setUpDesk, startTestService, type TestService } from '../support/test-service.js';

/**
 * The SSRF matrix, through the public API: every kind of forbidden destination is refused when a
 * tenant or an admin sets it, by default (as with DATABASE_URL), and accepted only with
 * HANDOVER_ALLOW_PRIVATE_URLS; a name that resolves to loopback is refused where the connection is
 * made; a redirect is never followed, wherever it leads.
 */
const strictSettings = { 'outbound.allowPrivate': false, 'outbound.allowHttp': false };
const secret = 'whsec_' + Buffer.from('a-secret-of-enough-length-0123456').toString('base64');

const matrix: Array<[string, RegExp]> = [
  ['https://127.0.0.1/hook', /127\.0\.0\.1 is a loopback/],
  ['https://10.20.30.40/hook', /10\.20\.30\.40/],
  ['https://172.16.0.1/hook', /172\.16\.0\.1/],
  ['https://172.31.255.254/hook', /172\.31\.255\.254/],
  ['https://192.168.1.20/hook', /192\.168\.1\.20/],
  ['https://169.254.169.254/latest/meta-data/', /169\.254\.169\.254/],
  ['https://[::1]/hook', /::1 is a loopback/],
  ['https://[fd12:3456:789a::1]/hook', /fd12:3456:789a::1/],
  ['https://[::ffff:10.0.0.1]/hook', /10\.0\.0\.1/],
  ['https://localhost/hook', /localhost is this machine/],
  ['https://localhost./hook', /localhost is this machine/],
];

interface CountingServer {
  url: string;
  hits: number;
  close(): Promise<void>;
}

async function listen(answer: (res: ServerResponse) => void): Promise<CountingServer> {
  const state = { hits: 0 };
  const { port, close } = await listenOnLoopback(
    createServer((req, res) => {
      state.hits++;
      req.resume();
      req.on('end', () => answer(res));
    }),
  );
  return {
    // A name, not an address: resolved (to loopback) where the connection is made.
    url: `http://localhost:${port}/hook`,
    get hits() {
      return state.hits;
    },
    close,
  };
}

describe('SSRF matrix (pg)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  const start = async (settings: Record<string, unknown>, db?: TestDb) => {
    const t = await startTestService('pg', settings, db ? { db } : {});
    cleanup.push(() => t.close());
    return t;
  };
  const attempts = async (db: TestDb | TestService['db'], tenantId: string) =>
    (
      await db.query<{ error: string | null; outcome: string }>(
        `select a.error, a.outcome from delivery_attempts a join outbox o on o.id = a.outbox_id where o.tenant_id = $1 and o.target = 'bot' order by a.id`,
        [tenantId],
      )
    ).rows;
  /** A handover accepted at the desk: the bot's webhook is called with handover.accepted. */
  const acceptOne = async (t: TestService, desk: { apiKey: string; agentToken: string }) => {
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    expect(created.status).toBe(201);
    expect((await t.api('POST', `/v1/desk/handovers/${created.body.id}/accept`, { token: desk.agentToken })).status).toBe(200);
  };

  it('refuses every forbidden destination when it is set, by default, and accepts it only with the setting', async () => {
    const strict = await start(strictSettings);
    const lenient = await start({ 'outbound.allowPrivate': true, 'outbound.allowHttp': false });
    const tenant = await strict.admin('POST', '/v1/admin/tenants', { name: 'Acme' });
    expect(tenant.status).toBe(201);
    const lenientTenant = await lenient.admin('POST', '/v1/admin/tenants', { name: 'Acme' });
    for (const [url, reason] of matrix) {
      const asWebhook = await strict.admin('PATCH', `/v1/admin/tenants/${tenant.body.id}`, { webhookUrl: url });
      expect(asWebhook.status, url).toBe(400);
      expect(asWebhook.body.error.code).toBe('url_not_allowed');
      expect(asWebhook.body.error.message).toMatch(reason);
      const asHelpdesk = await strict.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, { type: 'webhook', name: 'hd', config: { url, secret } });
      expect(asHelpdesk.status, url).toBe(400);
      expect(asHelpdesk.body.error.code).toBe('url_not_allowed');

      expect((await lenient.admin('PATCH', `/v1/admin/tenants/${lenientTenant.body.id}`, { webhookUrl: url })).status, url).toBe(200);
    }
    // Nothing refused was stored.
    expect((await strict.admin('GET', '/v1/admin/tenants')).body.tenants[0].webhookUrl).toBeNull();
  });

  it('refuses, where it connects, a name that resolves to loopback; connects with the setting', async () => {
    const db = await createTestDb('pg');
    cleanup.push(() => db.dropAndClose());
    const target = await listen((res) => res.writeHead(204).end());
    cleanup.push(() => target.close());
    // Stored while private destinations were allowed (an earlier setting, or another instance); this
    // instance, which does not allow them, is the one that delivers.
    const strict = await start({ ...strictSettings, 'outbound.allowHttp': true }, db);
    const lenient = await start({}, db);
    await lenient.service.stopBackground(0);
    const desk = await setUpDesk(lenient, { webhookUrl: target.url });
    await acceptOne(lenient, desk);
    const refused = await eventually(async () => (await attempts(db, desk.tenantId))[0], 'a delivery attempt', 15_000);
    expect(refused.outcome).toBe('failed');
    expect(refused.error).toMatch(/^localhost may not be called: its address is not allowed \((127\.0\.0\.1|::1) is a loopback/);
    expect(target.hits).toBe(0);

    // The same URL, from an instance with HANDOVER_ALLOW_PRIVATE_URLS, is reached.
    await strict.service.stopBackground(0);
    const allowed = await start({ 'outbound.allowPrivate': true, 'outbound.allowHttp': true });
    const local = await setUpDesk(allowed, { webhookUrl: target.url });
    await acceptOne(allowed, local);
    await eventually(async () => target.hits > 0, 'the webhook to be reached');
  });

  it('never follows a redirect, even to an allowed destination', async () => {
    const inside = await listen((res) => res.writeHead(204).end());
    cleanup.push(() => inside.close());
    const redirecting = await listen((res) => res.writeHead(307, { location: inside.url.replace('localhost', '127.0.0.1') }).end());
    cleanup.push(() => redirecting.close());
    const t = await start({});
    const desk = await setUpDesk(t, { webhookUrl: redirecting.url });
    await acceptOne(t, desk);
    // Retried (a redirect is not a delivery), and never followed.
    const failed = await eventually(
      async () => {
        const rows = await attempts(t.db, desk.tenantId);
        return rows.length >= 2 ? rows : undefined;
      },
      'two delivery attempts',
      15_000,
    );
    for (const row of failed) {
      expect(row.outcome).not.toBe('delivered');
      expect(row.error).toMatch(/answered 307/);
    }
    expect(redirecting.hits).toBeGreaterThanOrEqual(2);
    expect(inside.hits).toBe(0);
  });
});
