import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestJson } from '../../src/connectors/http-json.js';
import { SalesforceApi } from '../../src/connectors/salesforce/salesforce-api.js';
import { postBatch } from '../../src/connectors/webhook/webhook-api.js';
import { createOutboundAgent, getSignedJson, postSignedJson } from '../../src/outbound/index.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startTracing, type Tracing } from '../../src/telemetry/tracing.js';
import { startOtlpCollector, type OtlpCollector } from '../fakes/otlp-collector.js';
import { eventually } from '../support/test-service.js';
import { startReceiver, type Receiver } from './receiver.js';

const CLIENT = 3;
const SECRET = 'whsec_' + Buffer.from('outbound-tracing-test-secret-32b').toString('base64');
const deadline = () => AbortSignal.timeout(10_000);

/**
 * Every client that calls the outside, each through the one `send`: each call must carry a
 * `traceparent` naming its own CLIENT span, and the span must reach the collector with the answer's
 * status. Tracing is process-wide, so this file turns it on for all its tests.
 */
describe('every outbound call has a client span and sends its traceparent', () => {
  let collector: OtlpCollector;
  let tracing: Tracing;
  let agent: Agent;
  let receiver: Receiver;

  beforeAll(async () => {
    collector = await startOtlpCollector();
    tracing = await startTracing(
      { url: `${collector.url}/v1/traces`, serviceName: 'outbound-test', instanceId: 'i-1', sampler: 'always_on', samplerRatio: 1, headers: {} },
      createLogger('silent'),
    );
    agent = createOutboundAgent(5000, { allowPrivate: true, allowHttp: true });
    receiver = await startReceiver((req, res) => {
      if (req.url === '/eventrouter/v1/sse') {
        res.setHeader('content-type', 'text/event-stream');
        res.end(': ping\n\n');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(req.url === '/batch' ? '{"results":[]}' : req.url!.includes('access-token') ? '{"accessToken":"t","lastEventId":"1"}' : '{"agentsOnline":1}');
    });
  });
  afterAll(async () => {
    await agent?.close();
    await receiver?.close();
    await tracing?.shutdown();
    await collector?.close();
  });

  const salesforce = () => new SalesforceApi({ baseUrl: receiver.url, orgId: '00D000000000001', esDeveloperName: 'Web_Chat' }, agent, () => agent);
  const calls: Array<[string, string, () => Promise<unknown>]> = [
    ['a bot webhook (delivery)', '/hook', () => postSignedJson(agent, `${receiver.url}/hook`, SECRET, 'evt_1', { type: 'x' }, deadline())],
    ['a signed GET (availability)', '/availability', () => getSignedJson(agent, `${receiver.url}/availability`, SECRET, 'avail_1', deadline())],
    [
      'a vendor API call (http-json)',
      '/v2/apps/a/conversations',
      () => requestJson(agent, { method: 'POST', url: `${receiver.url}/v2/apps/a/conversations`, headers: {}, body: { a: 1 }, signal: deadline() }),
    ],
    ['a Salesforce API call', '/iamessage/api/v2/authorization/unauthenticated/access-token', () => salesforce().accessToken(deadline())],
    [
      'a Salesforce event stream',
      '/eventrouter/v1/sse',
      async () => {
        const opened = await salesforce().openStream('t', null, { timeoutMs: 5000, idleTimeoutMs: 5000, signal: deadline() });
        await opened.body.text();
      },
    ],
    [
      'a generic-webhook batch',
      '/batch',
      () =>
        postBatch({
          dispatcher: agent,
          url: `${receiver.url}/batch`,
          secret: SECRET,
          batchId: 'batch_1',
          body: '{"type":"batch","events":[]}',
          events: 0,
          signal: deadline(),
        }),
    ],
  ];

  it.each(calls)('%s', async (_name, path, call) => {
    await call();
    const request = receiver.received.filter((r) => r.url === path).at(-1);
    expect(request, `a request to ${path}`).toBeDefined();
    const traceparent = request!.headers.traceparent as string;
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const [, traceId, spanId] = traceparent.split('-');
    const span = await eventually(async () => collector.spans.find((s) => s.spanId === spanId), `the client span of ${path} at the collector`);
    expect(span).toMatchObject({
      traceId,
      kind: CLIENT,
      attributes: expect.objectContaining({ 'http.response.status_code': 200, 'server.address': '127.0.0.1' }),
    });
  });
});
