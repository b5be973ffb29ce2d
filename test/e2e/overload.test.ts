import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { webRoot } from '../../src/http/routes/web-routes.js';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { holdHandover } from '../support/row-lock.js';
import { eventually, setUpDesk, startTestService, type TestService } from '../support/test-service.js';

async function metric(t: TestService, name: string): Promise<string[]> {
  const res = await fetch(`${t.url}/metrics`);
  return (await res.text()).split('\n').filter((line) => line.startsWith(name));
}

/**
 * A desk's tenant with one handover, and a message to it held on the handover's row lock: with a limit
 * of one, that request holds the only slot until `lock.release()`.
 */
async function holdTheOnlySlot(t: TestService) {
  const desk = await setUpDesk(t);
  const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
  const lock = await holdHandover(t, created.body.id);
  const stuck = t.api('POST', `/v1/handovers/${created.body.id}/messages`, { token: desk.apiKey, body: { text: 'held' } });
  await eventually(async () => (await metric(t, 'http_server_active_requests'))[0]?.endsWith(' 1'), 'the held request to take the slot', 5000);
  return { desk, lock, stuck };
}

describe('overload is refused at the door with the real cause (pg)', () => {
  let t: TestService | undefined;
  let helpdesk: GenericHelpdesk | undefined;
  afterEach(async () => {
    await t?.close();
    await helpdesk?.close();
  });

  it('queue wait: 503 overloaded_queue_wait with Retry-After, the measured wait, and a metric', async () => {
    t = await startTestService('pg', { 'admission.adaptive': false, 'admission.initialLimit': 1, 'admission.queueTimeoutMs': 60 });
    const { desk, lock, stuck } = await holdTheOnlySlot(t);

    const refused = await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body.error.code).toBe('overloaded_queue_wait');
    expect(refused.body.error.message).toMatch(/waited \d+ ms for a slot; limit 1 in flight/);
    // Health and metrics stay reachable while the API is saturated.
    expect((await t.api('GET', '/healthz')).status).toBe(200);
    expect(await metric(t, 'handover_admission_rejections_total{cause="queue_wait"}')).toEqual(['handover_admission_rejections_total{cause="queue_wait"} 1']);

    await lock.release();
    expect((await stuck).status).toBe(202);
    expect((await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey })).status).toBe(200);
  });

  it('shedding: while no request could get a slot, API requests are refused before routing, parsing or any hook; health and admitted work go on', async () => {
    t = await startTestService('pg', {
      'admission.adaptive': false,
      'admission.initialLimit': 1,
      'admission.queueTimeoutMs': 60,
      'admission.codelTargetMs': 0,
      'admission.codelIntervalMs': 10_000,
    });
    const desk = await setUpDesk(t);
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    expect((await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey })).status).toBe(200);
    const lock = await holdHandover(t, created.body.id);
    const stuck = t.api('POST', `/v1/handovers/${created.body.id}/messages`, { token: desk.apiKey, body: { text: 'held' } });
    await eventually(async () => (await metric(t!, 'http_server_active_requests'))[0]?.endsWith(' 1'), 'the held request to take the slot', 5000);
    // Not shedding yet: this one waits its bound, and its expiry starts the shedding.
    const waited = await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey });
    expect(waited.body.error.message).toMatch(/waited \d+ ms for a slot/);

    // Now refused before anything looks at them: a body that is not JSON, a route that does not exist.
    const garbled = await fetch(`${t.url}/v1/handovers/${created.body.id}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${desk.apiKey}`, 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(garbled.status).toBe(503);
    expect(garbled.headers.get('retry-after')).toBe('1');
    const body = (await garbled.json()) as { error: { code: string; message: string; details: { cause: string } } };
    expect(body.error).toMatchObject({ code: 'overloaded_queue_wait', details: { cause: 'queue_wait' } });
    expect(body.error.message).toMatch(/refused at once, without waiting/);
    expect((await t.api('GET', '/v1/no-such-route', { token: desk.apiKey })).status).toBe(503);
    // Health, readiness and metrics are answered as ever; the refusals are counted.
    expect((await t.api('GET', '/healthz')).status).toBe(200);
    expect(await metric(t, 'handover_admission_rejections_total{cause="queue_wait"}')).toEqual(['handover_admission_rejections_total{cause="queue_wait"} 3']);
    expect((await metric(t, 'http_server_request_duration_seconds_count')).some((l) => l.includes('refused before routing'))).toBe(true);

    // The admitted request finishes; with a slot free, requests are admitted again.
    await lock.release();
    expect((await stuck).status).toBe(202);
    expect((await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey })).status).toBe(200);
  });

  it("the desk's and the demo's own files are served while the API is refused: a page that cannot load its scripts is no page", async () => {
    t = await startTestService('pg', {
      'admission.adaptive': false,
      'admission.initialLimit': 1,
      'admission.queueTimeoutMs': 60,
      'admission.codelTargetMs': 0,
      'admission.codelIntervalMs': 10_000,
      'demo.enabled': true,
      'demo.port': 18182,
    });
    const { desk, lock, stuck } = await holdTheOnlySlot(t);
    // The API is refused: the agent's own calls too.
    const refused = await t.api('GET', '/v1/desk/handovers', { token: desk.agentToken });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('overloaded_queue_wait');

    // Every file of both pages, all at once from one address as a browser asks for them.
    const files = async (page: string) => (await readdir(join(webRoot, page))).map((file) => `/${page}/${file}`);
    const paths = ['/desk', '/demo', '/demo/config.json', ...(await files('desk')), ...(await files('demo'))];
    expect(paths).toEqual(expect.arrayContaining(['/desk/app.js', '/desk/dom.js', '/desk/notes.js', '/desk/desk.css', '/demo/widget.js']));
    const answers = await Promise.all(paths.map(async (path) => `${path} ${(await fetch(`${t!.url}${path}`)).status}`));
    expect(answers).toEqual(paths.map((path) => `${path} 200`));
    expect(await metric(t, 'handover_admission_rejections_total{cause="queue_wait"}')).toEqual(['handover_admission_rejections_total{cause="queue_wait"} 1']);
    // Still refusing the API: the files were not served because the line had cleared.
    expect((await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey })).status).toBe(503);

    await lock.release();
    expect((await stuck).status).toBe(202);
  });

  it('deadline: a request that runs past its deadline is answered 503 deadline_exceeded', async () => {
    // Long enough for the setup requests (a login hashes a password) on a busy machine.
    t = await startTestService('pg', { 'admission.handlerTimeoutMs': 1500 });
    const desk = await setUpDesk(t);
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    const lock = await holdHandover(t, created.body.id);
    const res = await t.api('POST', `/v1/handovers/${created.body.id}/messages`, { token: desk.apiKey, body: { id: 'late-1', text: 'late' } });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('deadline_exceeded');
    expect(res.body.error.message).toContain('1500 ms');
    await lock.release();
  });

  it('deadline: the work a late request started is cut short too, not left waiting on the database', async () => {
    // A statement timeout far beyond the test: only the request's deadline can end the wait.
    t = await startTestService('pg', { 'admission.handlerTimeoutMs': 1500, 'database.statementTimeoutMs': 120_000 });
    const desk = await setUpDesk(t);
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    const lock = await holdHandover(t, created.body.id);
    const holder = lock.xid;
    try {
      const waitersOnHolder = async (): Promise<number> => {
        const { rows } = await t!.db.query<{ n: number }>(
          `select count(*)::int as n from pg_locks where not granted and locktype = 'transactionid' and transactionid::text = $1`,
          [holder],
        );
        return rows[0]!.n;
      };
      // Ending a handover locks its row in a transaction: it queues behind the holder.
      const ending = t.api('POST', `/v1/handovers/${created.body.id}/end`, { token: desk.apiKey, body: {} });
      await eventually(async () => (await waitersOnHolder()) === 1, 'the end request to wait for the row lock', 5000);
      const res = await ending;
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('deadline_exceeded');
      // The server cancelled the statement at the deadline: nothing of ours still waits, though the lock is held.
      await eventually(async () => (await waitersOnHolder()) === 0, 'the abandoned statement to be cancelled', 5000);
    } finally {
      await lock.release();
    }
    // Nothing was half done: the handover is still live and can be ended now.
    const ended = await t.api('POST', `/v1/handovers/${created.body.id}/end`, { token: desk.apiKey, body: {} });
    expect(ended.status).toBe(200);
  });

  it('memory: refused only with the memory code, while health stays up', async () => {
    // Any real heap is above 0.01% of its limit: the reading is real, the threshold is not.
    t = await startTestService('pg', { 'admission.heapUsedLimitRatio': 0.0001 });
    const res = await t.api('GET', '/v1/availability?queue=x', { token: 'handover_sk_x' });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.body.error.code).toBe('overloaded_memory');
    expect(res.body.error.message).toMatch(/Heap \d+ MiB used of a \d+ MiB limit/);
    expect((await t.api('GET', '/healthz')).status).toBe(200);
    expect(await metric(t, 'handover_admission_rejections_total{cause="memory"}')).toEqual(['handover_admission_rejections_total{cause="memory"} 1']);
  });

  it('event loop: refused while the process is CPU-bound, served again once it is not', async () => {
    t = await startTestService('pg', { 'admission.eventLoopDelayLimitMs': 40, 'admission.warmupMs': 0 });
    // Saturate this process's event loop: busy 80 ms out of every 90 ms.
    const burn = setInterval(() => {
      const end = Date.now() + 80;
      while (Date.now() < end);
    }, 10);
    try {
      await new Promise((r) => setTimeout(r, 1200));
      const res = await t.api('GET', '/v1/availability?queue=x', { token: 'handover_sk_x' });
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('overloaded_event_loop');
      // CPU-bound, or short of CPU when the other test worker and PostgreSQL leave this thread under 80 %
      // of a core (76 % seen in a full run): which is the machine's, and test/unit/admission.test.ts checks
      // that the refusal tells the two apart.
      expect(res.body.error.message).toMatch(/run \d+ ms late .*(this instance is CPU-bound|this instance does not get the CPU it needs)/);
    } finally {
      clearInterval(burn);
    }
    await eventually(
      async () => (await t!.api('GET', '/v1/availability?queue=x', { token: 'handover_sk_x' })).status === 401,
      'recovery once the loop is free',
      5000,
    );
    expect((await metric(t, 'handover_admission_rejections_total{cause="event_loop"}'))[0]).toMatch(/ [1-9]\d*$/);
  });

  it('a failing helpdesk opens its circuit: bots are told "degraded", other queues are untouched', async () => {
    t = await startTestService('pg', { 'connectors.failureThreshold': 2, 'connectors.cooldownMs': 60_000, 'delivery.maxAttempts': 20 });
    helpdesk = await startGenericHelpdesk('whsec_' + Buffer.from('circuit-test-secret-0123456789ab').toString('base64'));
    helpdesk.respond = () => ({ status: 503 });
    const desk = await setUpDesk(t);
    const connector = await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/connectors`, {
      type: 'webhook',
      name: 'hd',
      config: { url: helpdesk.url, secret: helpdesk.secret },
    });
    await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/queues`, { name: 'external', connectorId: connector.body.id });
    const before = await t.api('GET', '/v1/availability?queue=external', { token: desk.apiKey });
    expect(before.body).toMatchObject({ available: true });

    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'external', user: { id: 'u' } } });
    expect(created.status).toBe(201);
    const degraded = await eventually(async () => {
      const res = await t!.api('GET', '/v1/availability?queue=external', { token: desk.apiKey });
      return res.body.reason === 'degraded' ? res.body : null;
    }, 'the circuit to open');
    expect(degraded).toMatchObject({ available: false, reason: 'degraded' });
    expect(await metric(t, 'handover_connector_circuit_state')).toContain(`handover_connector_circuit_state{connector_id="${connector.body.id}"} 2`);

    const refused = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c2', queue: 'external', user: { id: 'u2' } } });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('connector_degraded');
    // While open, no more calls go out: the helpdesk saw only the failures that opened it.
    const calls = helpdesk.received.length + 0;
    await new Promise((r) => setTimeout(r, 300));
    expect(helpdesk.received.length).toBe(calls);
    // The desk queue of the same tenant is untouched.
    expect((await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey })).body).toMatchObject({ available: true });
    // Nothing accepted was dropped: the request is still waiting in its lane.
    const { rows } = await t.db.query<{ state: string }>(`select state from outbox where handover_id = $1 and target = 'agent'`, [created.body.id]);
    expect(rows).toEqual([{ state: 'pending' }]);
  });
});
