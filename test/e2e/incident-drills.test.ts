import { afterEach, describe, expect, it } from 'vitest';
import { diagnose } from '../../src/cli/diagnose.js';
import { createPgDb } from '../../src/store/pg-db.js';
import { startLossyProxy, type LossyProxy } from '../support/lossy-proxy.js';
import { createTestDb, testDatabaseUrl, type TestDb } from '../support/test-db.js';
import { eventually, setUpDesk, startTestService, type TestService } from '../support/test-service.js';

/**
 * Incident drills: each stages one cause and checks that the code a client gets, the status page's
 * sentence and the doctor's first line all name that cause — and that none of them says "memory".
 * (Other causes have their drills beside the code they exercise: a slow helpdesk in slow-helpdesk.test.ts,
 * a failing one, queue waits, memory and a busy event loop in overload.test.ts and the doctor's tests,
 * Redis gone in fan-out.test.ts.)
 */
async function record(t: TestService): Promise<{ metrics: string; status: { components: Array<{ id: string; name: string; state: string; cause: string }> } }> {
  const metrics = await (await fetch(`${t.url}/metrics`)).text();
  const status = (await t.api('GET', '/status.json', { token: t.adminToken })).body;
  return { metrics, status };
}

const saysMemory = (texts: string[]) => texts.some((text) => /memory|heap/i.test(text));

describe('incident drills (pg)', () => {
  let t: TestService | undefined;
  let proxy: LossyProxy | undefined;
  let db: TestDb | undefined;
  afterEach(async () => {
    await t?.close();
    await proxy?.close();
    await db?.dropAndClose();
    t = undefined;
    proxy = undefined;
    db = undefined;
  });

  it('database gone: clients get database_unavailable, the status page and the doctor name the database first', async () => {
    db = await createTestDb('pg');
    proxy = await startLossyProxy(testDatabaseUrl());
    const real = new URL(testDatabaseUrl());
    const through = new URL(testDatabaseUrl());
    through.port = new URL(proxy.url).port;
    // The service reaches PostgreSQL only through the proxy, which the drill takes away.
    const proxied = createPgDb({
      url: through.toString(),
      searchPath: db.schema!,
      poolSize: 5,
      poolTimeoutMs: 2000,
      statementTimeoutMs: 5000,
      idleInTransactionTimeoutMs: 10_000,
    });
    const viaProxy: TestDb = Object.assign(proxied, { schema: db.schema, url: undefined, dropAndClose: () => proxied.close() });
    expect(real.port).not.toBe(through.port);
    t = await startTestService('pg', { 'status.sampleMs': 100 }, { db: viaProxy });
    const desk = await setUpDesk(t);
    expect((await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey })).status).toBe(200);

    await proxy.close();
    proxy = undefined;
    const refused = await eventually(
      async () => {
        const res = await t!.api('GET', '/v1/availability?queue=support', { token: desk.apiKey });
        return res.status === 503 ? res : null;
      },
      'a refusal',
      15_000,
    );
    expect(refused.body.error.code).toBe('database_unavailable');
    expect((await t.api('GET', '/readyz')).status).toBe(503);

    const state = await eventually(
      async () => {
        const s = await record(t!);
        return s.status.components.find((c) => c.id === 'database')?.state === 'major_outage' ? s : null;
      },
      'the status to name the database',
      15_000,
    );
    const component = state.status.components.find((c) => c.id === 'database')!;
    expect(component.cause).toMatch(/^Database unreachable \(database_unavailable\): .* refused with 503 database_unavailable; nothing accepted is lost/);
    const d = diagnose(state.metrics, state.status);
    expect(d.healthy).toBe(false);
    expect(d.findings[0]!.cause).toBe('Database unreachable');
    expect(d.findings[0]!.action).toMatch(/^check PostgreSQL/);
    expect(saysMemory([refused.body.error.message, component.cause, ...d.findings.map((f) => f.cause)])).toBe(false);
  });

  it('one tenant flooding: its excess is refused as queue waits while another tenant is served; nothing says memory', async () => {
    // The quiet tenant may wait 250 ms for its slot: on a loaded machine two slots can come back more than
    // 50 ms apart. The flooder's waits are cut to CoDel's 5 ms once its line stands (200 ms).
    t = await startTestService('pg', { 'admission.adaptive': false, 'admission.initialLimit': 2, 'admission.queueTimeoutMs': 250, 'status.sampleMs': 100 });
    const flooder = await setUpDesk(t);
    const quiet = await t.admin('POST', '/v1/admin/tenants', { name: 'Quiet' });
    await t.admin('POST', `/v1/admin/tenants/${quiet.body.id}/queues`, { name: 'support' });

    // The flooder keeps 24 requests in flight for 2 s; the quiet tenant asks ten times meanwhile.
    const until = Date.now() + 2000;
    const codes: Record<string, number> = {};
    const flood = Array.from({ length: 24 }, async () => {
      while (Date.now() < until) {
        const res = await t!.api('GET', '/v1/availability?queue=support', { token: flooder.apiKey });
        const code = res.status === 200 ? '200' : String(res.body.error?.code);
        codes[code] = (codes[code] ?? 0) + 1;
      }
    });
    const quietAnswers: number[] = [];
    for (let i = 0; i < 10; i++) {
      quietAnswers.push((await t.api('GET', '/v1/availability?queue=support', { token: quiet.body.apiKey })).status);
      await new Promise((r) => setTimeout(r, 100));
    }
    await Promise.all(flood);
    // A freed slot goes to the caller with the fewest in flight: the quiet tenant is not starved.
    expect(quietAnswers.filter((s) => s === 200).length).toBeGreaterThanOrEqual(8);
    expect(codes.overloaded_queue_wait).toBeGreaterThan(0);
    expect(Object.keys(codes).every((c) => c === '200' || c === 'overloaded_queue_wait')).toBe(true);

    const state = await eventually(async () => {
      const s = await record(t!);
      return s.status.components.find((c) => c.id === 'bot_api')?.state !== 'operational' ? s : null;
    }, 'the status to see the refusals');
    const api = state.status.components.find((c) => c.id === 'bot_api')!;
    expect(api.cause).toMatch(/refused — requests queue for a slot/);
    const d = diagnose(state.metrics, state.status);
    expect(d.findings[0]?.cause ?? '').toMatch(/^At capacity: requests queue for a slot/);
    expect(saysMemory([api.cause, ...d.findings.map((f) => f.cause)])).toBe(false);
  });
});
