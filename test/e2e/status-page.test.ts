import { afterEach, describe, expect, it } from 'vitest';
import { holdHandover } from '../support/row-lock.js';
import { eventually, setUpDesk, startTestService, type TestService } from '../support/test-service.js';

describe('status page (pg)', () => {
  let t: TestService | undefined;
  afterEach(async () => {
    await t?.close();
  });

  it('overload turns the Bot API degraded with the queue-wait cause, opens an incident, and resolves it after the load stops', async () => {
    // One slot, short waits, and status windows short enough for a test (defaults: 10 s / 60 s / 2 min);
    // the window is wide enough that the successes before the overload are still in it on a busy machine.
    t = await startTestService('pg', {
      'admission.adaptive': false,
      'admission.initialLimit': 1,
      'admission.queueTimeoutMs': 60,
      'status.sampleMs': 100,
      'status.windowMs': 10_000,
      'status.recoveryMs': 500,
      // Only the refusals may make it degraded: on a busy machine requests can be slower than 250 ms.
      'status.latencyTargetMs': 60_000,
    });
    const desk = await setUpDesk(t);
    const admin = async () => (await t!.api('GET', '/status.json', { token: t!.adminToken })).body;
    await eventually(async () => (await admin()).components?.find((c: any) => c.id === 'bot_api')?.state === 'operational', 'the first verdict');

    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    for (let i = 0; i < 5; i++) expect((await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey })).status).toBe(200);
    const lock = await holdHandover(t, created.body.id);
    const stuck = t.api('POST', `/v1/handovers/${created.body.id}/messages`, { token: desk.apiKey, body: { text: 'held' } });
    await eventually(
      async () => (await (await fetch(`${t!.url}/metrics`)).text()).includes('http_server_active_requests 1'),
      'the held request to take the slot',
      10_000,
    );
    for (let i = 0; i < 3; i++)
      expect((await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey })).body.error.code).toBe('overloaded_queue_wait');

    const during = await eventually(async () => {
      const s = await admin();
      const api = s.components.find((c: any) => c.id === 'bot_api');
      return /: 3 of \d+ requests/.test(api.cause) && s.incidents.some((i: any) => i.componentId === 'bot_api' && i.phase === 'investigating') ? s : null;
    }, 'the Bot API to be judged degraded');
    const api = during.components.find((c: any) => c.id === 'bot_api');
    expect(api.state).toBe('degraded');
    expect(api.cause).toMatch(/^Bot API degraded: 3 of \d+ requests in the last 10 s refused — requests queue for a slot — in-flight 1 at a limit of 1/);
    expect(during.status).toBe('degraded');
    const incident = during.incidents.find((i: any) => i.componentId === 'bot_api');
    expect(incident.timeline[0]).toMatchObject({ phase: 'investigating', state: 'degraded' });
    expect(incident.timeline[0].message).toContain('queue for a slot');
    expect(during.chart.length).toBe(60);

    // The public view: states and plain words, no numbers, no connector names, no measured details.
    const pub = (await t.api('GET', '/status.json')).body;
    expect(pub.components.map((c: any) => c.id)).toEqual(['bot_api', 'delivery', 'desk', 'database', 'helpdesks']);
    expect(pub.components[0]).toEqual({ id: 'bot_api', name: 'Bot API', state: 'degraded', cause: 'Some requests are refused: the service is at capacity.' });
    expect(pub.incidents[0].timeline[0].message).toBe('Some requests are refused: the service is at capacity.');
    expect(pub.chart).toBeUndefined();
    expect((await t.api('GET', '/status.json', { token: 'wrong' })).status).toBe(401);

    const page = await fetch(`${t.url}/status`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'none'");
    const html = await page.text();
    expect(html).toContain('Bot API');
    expect(html).toContain('<svg');
    expect(html).toContain('Some requests are refused');
    expect(html).not.toContain('<script');
    expect(html).not.toContain('style=');
    expect((await fetch(`${t.url}/status/status.css`)).status).toBe(200);

    // The load stops: the held request completes, refusals age out of the window, the incident resolves.
    await lock.release();
    expect((await stuck).status).toBe(202);
    const after = await eventually(
      async () => {
        const s = await admin();
        const i = s.incidents.find((x: any) => x.id === incident.id);
        return i.phase === 'resolved' ? { s, i } : null;
      },
      'the incident to resolve',
      30_000,
    );
    // Investigating (updated as the refusals' share changes), then monitoring once healthy, then resolved.
    const phases: string[] = after.i.timeline.map((e: any) => e.phase);
    expect(phases.slice(-2)).toEqual(['monitoring', 'resolved']);
    expect(new Set(phases.slice(0, -2))).toEqual(new Set(['investigating']));
    expect(after.i.timeline.at(-1).message).toMatch(/^Resolved\. Bot API operational/);
    expect(after.i.resolvedAt).not.toBeNull();
    expect(after.s.components.find((c: any) => c.id === 'bot_api').state).toBe('operational');
  });
});
