import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { startSignedWebhookServer, type SignedWebhookServer } from '../fakes/signed-webhook-server.js';
import { eventually, setUpDesk, startTestService, type DbKind, type DeskSetup, type TestService } from '../support/test-service.js';
import { parsePromText, valueOf, type Sample } from '../support/prom-text.js';

/**
 * One service, real traffic through every path the metrics describe (bot API, desk, a helpdesk
 * connector, the bot's webhook, a refusal, an abandoned wait), then one scrape checked line by line.
 */
describe.each<DbKind>(['pglite', 'pg'])('metrics after real traffic (%s)', (kind) => {
  let t: TestService;
  let helpdesk: GenericHelpdesk;
  let bot: SignedWebhookServer;
  let desk: DeskSetup;
  let connectorId: string;
  let samples: Sample[];
  let text: string;

  beforeAll(async () => {
    t = await startTestService(kind, { 'status.sampleMs': 100 });
    helpdesk = await startGenericHelpdesk('whsec_' + Buffer.from('metrics-test-secret-0123456789ab').toString('base64'));
    let webhookSecret = '';
    bot = await startSignedWebhookServer(() => webhookSecret);
    desk = await setUpDesk(t, { webhookUrl: bot.url });
    webhookSecret = desk.webhookSecret;
    const connector = await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/connectors`, {
      type: 'webhook',
      name: 'hd',
      config: { url: helpdesk.url, secret: helpdesk.secret },
    });
    connectorId = connector.body.id;
    await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/queues`, { name: 'external', connectorId });

    // Desk: requested → queued → accepted → a message each way → ended by the agent.
    const a = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c-a', queue: 'support', user: { id: 'u' } } });
    expect((await t.api('POST', `/v1/desk/handovers/${a.body.id}/accept`, { token: desk.agentToken })).status).toBe(200);
    expect((await t.api('POST', `/v1/handovers/${a.body.id}/messages`, { token: desk.apiKey, body: { text: 'hello' } })).status).toBe(202);
    expect((await t.api('POST', `/v1/desk/handovers/${a.body.id}/end`, { token: desk.agentToken, body: {} })).status).toBe(200);
    // Abandoned: the user leaves before any agent joins.
    const b = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c-b', queue: 'support', user: { id: 'u2' } } });
    expect((await t.api('POST', `/v1/handovers/${b.body.id}/end`, { token: desk.apiKey, body: { reason: 'user_ended' } })).status).toBe(200);
    // Refused: a queue closed today (and tomorrow, should the test run across midnight).
    const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
    expect(
      (await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/queues`, { name: 'closed', timeZone: 'UTC', closedDates: [day(0), day(1)] })).status,
    ).toBe(201);
    const refused = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c-c', queue: 'closed', user: { id: 'u3' } } });
    expect(refused.status, JSON.stringify(refused.body)).toBe(409);
    // A helpdesk handover: the connector is called.
    const c = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c-d', queue: 'external', user: { id: 'u4' } } });
    await helpdesk.waitFor((r) => r.some((x) => x.body.handoverId === c.body.id), 20_000, 'the helpdesk to receive the handover');
    await bot.waitFor((r) => r.some((x) => (x.body as any).type === 'handover.ended'), 20_000, 'the bot to be told the handover ended');

    await eventually(async () => {
      text = await (await fetch(`${t.url}/metrics`)).text();
      samples = parsePromText(text);
      return (
        (valueOf(samples, 'handover_delivery_latency_seconds_count', { direction: 'to_agent' }) ?? 0) >= 1 &&
        (valueOf(samples, 'handover_delivery_latency_seconds_count', { direction: 'to_bot' }) ?? 0) >= 4
      );
    }, 'deliveries to be counted');
  });

  afterAll(async () => {
    await t?.close();
    await helpdesk?.close();
    await bot?.close();
  });

  it('request durations are labelled by route template, method and status; never by raw URL', () => {
    const routes = new Set(samples.filter((s) => s.name === 'http_server_request_duration_seconds_count').map((s) => s.labels.http_route));
    expect(routes).toContain('/v1/handovers/:id/messages');
    expect([...routes].some((r) => r?.includes('ho_'))).toBe(false);
    expect(
      valueOf(samples, 'http_server_request_duration_seconds_count', {
        http_request_method: 'POST',
        http_route: '/v1/handovers',
        http_response_status_code: '409',
      }),
    ).toBe(1);
    // Bucket edges sit at the latency targets: 20 ms refusals, 50 ms limiter target, 250 ms SLO.
    for (const le of ['0.02', '0.05', '0.25']) expect(text).toContain(`le="${le}"`);
  });

  it('the handover funnel counts each step', () => {
    expect(valueOf(samples, 'handover_requested_total')).toBe(4);
    expect(valueOf(samples, 'handover_rejected_total', { reason: 'queue_closed' })).toBe(1);
    expect(valueOf(samples, 'handover_queued_total')).toBe(3);
    expect(valueOf(samples, 'handover_accepted_total')).toBe(1);
    expect(valueOf(samples, 'handover_time_to_agent_seconds_count')).toBe(1);
    expect(valueOf(samples, 'handover_ended_total', { reason: 'agent_ended' })).toBe(1);
    expect(valueOf(samples, 'handover_ended_total', { reason: 'user_ended' })).toBe(1);
    expect(valueOf(samples, 'handover_abandoned_total')).toBe(1);
  });

  it('delivery: end-to-end latency per direction, connector calls per connector and outcome, bot webhook calls', () => {
    expect(valueOf(samples, 'handover_connector_call_duration_seconds_count', { connector_id: connectorId, outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(samples, 'handover_bot_webhook_call_duration_seconds_count', { outcome: 'ok' })).toBeGreaterThanOrEqual(4);
    expect(valueOf(samples, 'handover_delivery_latency_seconds_count', { direction: 'to_bot' })).toBeGreaterThanOrEqual(4);
  });

  it('pool and runtime gauges are present', () => {
    expect(valueOf(samples, 'db_client_connection_count', { state: 'used' })).toBeGreaterThanOrEqual(0);
    expect(valueOf(samples, 'db_client_connection_pending_requests')).toBe(0);
    expect(valueOf(samples, 'db_client_connection_max')).toBe(kind === 'pg' ? t.service.deps.config.database.poolSize : 1);
    expect(valueOf(samples, 'handover_heap_limit_bytes')).toBeGreaterThan(0);
  });

  it('every metric the Grafana dashboard and the alert rules query is exposed', () => {
    // A metric exists once its TYPE line is there, even before its first labelled sample.
    const exposed = new Set<string>();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      exposed.add(m[1]!);
      if (m[2] === 'histogram') for (const suffix of ['_bucket', '_count', '_sum']) exposed.add(m[1]! + suffix);
    }
    const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/handover-dashboard.json', import.meta.url), 'utf8')) as {
      panels: Array<{ targets?: Array<{ expr: string }> }>;
    };
    const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((target) => target.expr));
    const rules = readFileSync(new URL('../../deploy/prometheus/handover.rules.yml', import.meta.url), 'utf8');
    queries.push(...[...rules.matchAll(/expr: (.+)/g)].map((m) => m[1]!), ...rules.split('\n').filter((l) => /^\s+(\(|or$)/.test(l)));
    // Every metric of this service has one of these prefixes; recording rules (with ':') are not scraped.
    const used = new Set(queries.flatMap((q) => [...q.matchAll(/\b(?:handover|http_server|db_client)_[a-z0-9_]+\b/g)].map((m) => m[0])));
    expect(queries.length).toBeGreaterThan(30);
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((name) => !exposed.has(name))).toEqual([]);
  });

  it('the status lists each connector in use by name, with the admin token only', async () => {
    const component = await eventually(async () => {
      const status = (await t.api('GET', '/status.json', { token: t.adminToken })).body;
      return status.components.find((c: any) => c.id === `connector:${connectorId}`);
    }, 'the connector to be listed');
    expect(component).toMatchObject({ name: 'Helpdesk hd (webhook, tenant Acme)', state: 'operational' });
    const pub = (await t.api('GET', '/status.json')).body;
    expect(JSON.stringify(pub)).not.toContain(connectorId);
  });

  it('backlog per connector is sampled in the background and reads the stuck item and its age', async () => {
    helpdesk.respond = () => ({ status: 503 });
    const stuck = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c-stuck', queue: 'external', user: { id: 'u5' } } });
    expect(stuck.status).toBe(201);
    const found = await eventually(async () => {
      const now = parsePromText(await (await fetch(`${t.url}/metrics`)).text());
      const items = valueOf(now, 'handover_outbox_backlog_items', { target: 'agent', connector_id: connectorId });
      const age = valueOf(now, 'handover_outbox_oldest_pending_age_seconds', { target: 'agent', connector_id: connectorId });
      return items === 1 && age !== undefined && age > 0
        ? { items, age, retries: valueOf(now, 'handover_connector_call_duration_seconds_count', { connector_id: connectorId, outcome: 'retry' }) }
        : null;
    }, 'the backlog sample to show the stuck item');
    expect(found.items).toBe(1);
    helpdesk.respond = () => ({ status: 200 });
  });
});
