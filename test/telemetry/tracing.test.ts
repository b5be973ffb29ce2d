import { afterEach, describe, expect, it } from 'vitest';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { startOtlpCollector, type CollectedSpan, type OtlpCollector } from '../fakes/otlp-collector.js';
import { startSignedWebhookServer, type SignedWebhookServer } from '../fakes/signed-webhook-server.js';
import { eventually, startTestService, type TestService } from '../support/test-service.js';

const HELPDESK_SECRET = 'whsec_' + Buffer.from('tracing-helpdesk-secret-of-32-byte').toString('base64');
const USER_TEXT = 'my account number is 12345678, please help';
const AGENT_TEXT = 'happy to help with that account';
const SERVER = 2;
const CLIENT = 3;
const CONSUMER = 5;

/** `00-<trace id>-<parent span id>-<flags>` → its parts. */
function parseTraceparent(header: unknown): { traceId: string; spanId: string } {
  expect(header).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  const [, traceId, spanId] = (header as string).split('-');
  return { traceId: traceId!, spanId: spanId! };
}

describe('tracing to an OTLP/HTTP collector (pg)', () => {
  let t: TestService | undefined;
  let bot: SignedWebhookServer | undefined;
  let helpdesk: GenericHelpdesk | undefined;
  let collector: OtlpCollector | undefined;
  afterEach(async () => {
    await t?.close();
    await bot?.close();
    await helpdesk?.close();
    await collector?.close();
  });

  it('follows a bot message from the API request through the outbox to the helpdesk calls (a refused try, then a retry) in one trace, and an inbound event to the bot', async () => {
    collector = await startOtlpCollector();
    t = await startTestService('pg', {
      'tracing.endpoint': collector.url,
      'tracing.serviceName': 'handover-under-test',
      'tracing.headers': { authorization: 'Bearer collector-token' },
      // The start's warm-up on: its calls, to a server of its own, make no span.
      'delivery.warmUpCalls': 5,
    });
    let botSecret = '';
    bot = await startSignedWebhookServer(() => botSecret);
    helpdesk = await startGenericHelpdesk(HELPDESK_SECRET);
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Traced', webhookUrl: bot.url });
    botSecret = tenant.body.webhookSecret;
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'webhook',
      name: 'traced-helpdesk',
      config: { url: helpdesk.url, secret: HELPDESK_SECRET },
    });
    expect(connector.status).toBe(201);
    helpdesk.inboundUrl = connector.body.inboundUrl;
    const connectorId: string = connector.body.id;
    expect((await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'helpdesk', connectorId })).status).toBe(201);
    const auth = { token: tenant.body.apiKey as string };

    const created = await t.api('POST', '/v1/handovers', {
      ...auth,
      body: { conversationId: 'c-t', queue: 'helpdesk', user: { id: 'u-t' }, transcript: [{ role: 'user', text: 'help' }] },
    });
    expect(created.status).toBe(201);
    const handoverId: string = created.body.id;
    await helpdesk.waitFor((r) => r.some((w) => w.body.type === 'handover.requested'), 20_000, 'handover.requested');

    // Bot → API → outbox → delivery → helpdesk; the helpdesk refuses the first try.
    helpdesk.respond = (body, attempt) => ({ status: body.type === 'message.created' && attempt === 1 ? 503 : 200 });
    const posted = await t.api('POST', `/v1/handovers/${handoverId}/messages`, { ...auth, body: { id: 'u-1', text: USER_TEXT } });
    expect(posted.status).toBe(202);
    await helpdesk.waitFor((r) => r.some((w) => w.body.type === 'message.created'), 20_000, 'the message at the helpdesk');
    const atHelpdesk = parseTraceparent(helpdesk.received.find((w) => w.body.type === 'message.created')!.headers.traceparent);

    const { rows } = await t.service.deps.db.query<{ trace_parent: string | null }>(
      `select trace_parent from outbox where handover_id = $1 and kind = 'message.created' and target = 'agent'`,
      [handoverId],
    );
    expect(rows).toHaveLength(1);
    const stored = parseTraceparent(rows[0]!.trace_parent);
    expect(stored.traceId).toBe(atHelpdesk.traceId);

    const find = (spans: CollectedSpan[]) => {
      const attempt = (n: number) => spans.find((s) => s.kind === CONSUMER && s.attributes['handover.delivery.attempt'] === n);
      const callUnder = (parent: CollectedSpan | undefined) => parent && spans.find((s) => s.kind === CLIENT && s.parentSpanId === parent.spanId);
      return {
        request: spans.find((s) => s.kind === SERVER && s.name === 'POST /v1/handovers/:id/messages'),
        failed: attempt(1),
        failedCall: callUnder(attempt(1)),
        delivery: attempt(2),
        call: callUnder(attempt(2)),
      };
    };
    const trace = await eventually(async () => {
      const found = find(collector!.spans.filter((s) => s.traceId === atHelpdesk.traceId));
      return Object.values(found).every(Boolean) ? found : null;
    }, 'request, both delivery attempts and their calls at the collector');
    const { request, failed, failedCall, delivery, call } = trace;

    // The refused try: a failed attempt and a call that names the status, both under the request.
    expect(failed!.parentSpanId).toBe(request!.spanId);
    expect(failed!.attributes).toMatchObject({ 'handover.delivery.outcome': 'retry', 'handover.connector.id': connectorId });
    expect(failed!.statusCode).toBe(2);
    expect(failedCall!.attributes).toMatchObject({ 'http.response.status_code': 503, 'error.type': '503' });

    expect(request!.parentSpanId).toBeUndefined();
    expect(request!.spanId).toBe(stored.spanId);
    expect(request!.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/v1/handovers/:id/messages',
      'http.response.status_code': 202,
      'handover.id': handoverId,
      'handover.tenant.id': tenant.body.id,
    });
    expect(delivery!.name).toBe('deliver message.created');
    expect(delivery!.parentSpanId).toBe(request!.spanId);
    expect(delivery!.attributes).toMatchObject({
      'handover.delivery.target': 'agent',
      'handover.delivery.attempt': 2,
      'handover.delivery.outcome': 'ok',
      'handover.connector.id': connectorId,
      'handover.connector.type': 'webhook',
      'handover.id': handoverId,
    });
    expect(call!.parentSpanId).toBe(delivery!.spanId);
    expect(call!.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.response.status_code': 200, 'server.address': '127.0.0.1' });
    // The helpdesk was told the call's span as its parent: its own spans join this trace.
    expect(atHelpdesk.spanId).toBe(call!.spanId);

    // Helpdesk → inbound webhook (a request span) → the bot's webhook, in the inbound request's trace.
    const reply = await helpdesk.send({
      type: 'message.created',
      handoverId,
      data: { message: { id: 'hd-1', text: AGENT_TEXT }, agent: { id: 'hd-a', name: 'Hal' } },
    });
    expect(reply.status).toBe(200);
    await bot.waitFor((r) => r.some((w) => w.body.type === 'message.created'), 20_000, 'the agent message at the bot');
    const atBot = parseTraceparent(bot.received.find((w) => w.body.type === 'message.created')!.headers.traceparent);
    const inbound = await eventually(async () => {
      const spans = collector!.spans.filter((s) => s.traceId === atBot.traceId);
      const server = spans.find((s) => s.kind === SERVER);
      const botCall = spans.find((s) => s.kind === CLIENT && s.spanId === atBot.spanId);
      return server && botCall ? { server, botCall, spans } : null;
    }, 'the inbound request span and the bot webhook call');
    expect(inbound.server.name).toBe('POST /v1/connectors/:connectorId/events');
    expect(inbound.server.attributes).toMatchObject({ 'handover.connector.id': connectorId, 'http.response.status_code': 200 });
    const botDelivery = inbound.spans.find((s) => s.spanId === inbound.botCall.parentSpanId)!;
    expect(botDelivery).toMatchObject({ kind: CONSUMER, parentSpanId: inbound.server.spanId });
    expect(botDelivery.attributes['handover.delivery.target']).toBe('bot');

    // A refused request: its span names the error code the caller got; a 4xx is not a server failure.
    const missing = await t.api('POST', '/v1/handovers/ho_0000000000000000000000000/messages', { ...auth, body: { id: 'u-x', text: USER_TEXT } });
    expect(missing.status).toBeGreaterThanOrEqual(400);
    expect(missing.status).toBeLessThan(500);
    const refused = await eventually(
      async () =>
        collector!.spans.find(
          (s) => s.kind === SERVER && s.name === 'POST /v1/handovers/:id/messages' && s.attributes['http.response.status_code'] === missing.status,
        ),
      'the refused request span',
    );
    expect(refused.attributes['error.type']).toBe(missing.body.error.code);
    expect(refused.statusCode).toBe(0);

    // Never message text or secrets in what leaves for the collector.
    const exported = collector.rawBodies.join('\n');
    for (const secret of [USER_TEXT, AGENT_TEXT, HELPDESK_SECRET, auth.token, botSecret]) expect(exported).not.toContain(secret);
    expect(collector.rejected).toEqual([]);
    expect(collector.requestHeaders.map((h) => h.authorization)).toEqual(collector.requestHeaders.map(() => 'Bearer collector-token'));
    expect(new Set(collector.spans.map((s) => s.serviceName))).toEqual(new Set(['handover-under-test']));
    // Every call the service made went to the helpdesk or the bot: none of the warm-up's was traced.
    const called = new Set(collector.spans.filter((s) => s.kind === CLIENT).map((s) => Number(s.attributes['server.port'])));
    expect([...called].sort()).toEqual([Number(new URL(helpdesk.url).port), Number(new URL(bot.url).port)].sort());
  });
});
