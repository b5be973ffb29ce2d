import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { startOtlpCollector, type OtlpCollector } from '../fakes/otlp-collector.js';
import { startTestService, type TestService } from '../support/test-service.js';
import { tracingEnabled } from '../../src/telemetry/tracing.js';

const HELPDESK_SECRET = 'whsec_' + Buffer.from('untraced-helpdesk-secret-32-bytes!').toString('base64');
/** Where the OpenTelemetry API keeps what is registered for the process (a provider, a propagator). */
const OTEL_GLOBAL = Symbol.for('opentelemetry.js.api.1');

// Its own file: the OpenTelemetry API is process-wide, and vitest runs each file in its own process.
describe('tracing off (no OTLP endpoint configured)', () => {
  let t: TestService | undefined;
  let helpdesk: GenericHelpdesk | undefined;
  let collector: OtlpCollector | undefined;
  afterEach(async () => {
    await t?.close();
    await helpdesk?.close();
    await collector?.close();
    t = helpdesk = collector = undefined;
  });

  it('relays without loading the SDK, storing a trace context or sending traceparent', async () => {
    // A collector that would take spans, were any exported: none may be (the exporter's own defaults
    // point at localhost:4318, never here; this checks nothing is sent anywhere it could see).
    collector = await startOtlpCollector();
    t = await startTestService('pg', { 'tracing.endpoint': undefined, 'tracing.tracesEndpoint': undefined });
    helpdesk = await startGenericHelpdesk(HELPDESK_SECRET);
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Untraced' });
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'webhook',
      name: 'untraced',
      config: { url: helpdesk.url, secret: HELPDESK_SECRET },
    });
    expect(connector.status).toBe(201);
    expect((await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'helpdesk', connectorId: connector.body.id })).status).toBe(201);
    const created = await t.api('POST', '/v1/handovers', {
      token: tenant.body.apiKey,
      headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      body: { conversationId: 'c-u', queue: 'helpdesk', user: { id: 'u-u' } },
    });
    expect(created.status).toBe(201);
    const posted = await t.api('POST', `/v1/handovers/${created.body.id}/messages`, { token: tenant.body.apiKey, body: { id: 'u-1', text: 'hello' } });
    expect(posted.status).toBe(202);
    await helpdesk.waitFor((r) => r.some((w) => w.body.type === 'message.created'), 20_000, 'the message at the helpdesk');

    expect(tracingEnabled()).toBe(false);
    // No SDK registered a tracer provider, propagator or context manager with the API.
    const registered = (globalThis as Record<symbol, Record<string, unknown> | undefined>)[OTEL_GLOBAL];
    expect(registered?.trace).toBeUndefined();
    expect(registered?.propagation).toBeUndefined();
    expect(registered?.context).toBeUndefined();
    for (const w of helpdesk.received) expect(w.headers.traceparent).toBeUndefined();
    const { rows } = await t.service.deps.db.query<{ n: number }>('select count(*)::int as n from outbox where trace_parent is not null');
    expect(rows[0]!.n).toBe(0);
    expect(collector.rawBodies).toEqual([]);
  });

  it('imports the SDK in one module, which is loaded only by a dynamic import', async () => {
    const root = new URL('../../src/', import.meta.url).pathname;
    const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.ts'));
    const sdkImporters: string[] = [];
    const sdkModuleImporters: string[] = [];
    for (const file of files) {
      const source = await readFile(join(root, file), 'utf8');
      // Any OpenTelemetry package but the API (which is a no-op until an SDK registers).
      if (/from '@opentelemetry\/(?!api')/.test(source)) sdkImporters.push(file);
      if (/from '\.\/tracing-sdk\.js'|import '\.\/tracing-sdk\.js'/.test(source)) sdkModuleImporters.push(file);
    }
    expect(sdkImporters).toEqual(['telemetry/tracing-sdk.ts']);
    expect(sdkModuleImporters).toEqual([]);
    expect(await readFile(join(root, 'telemetry/tracing.ts'), 'utf8')).toContain("await import('./tracing-sdk.js')");
  });
});
