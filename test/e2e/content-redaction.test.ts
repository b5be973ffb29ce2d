import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/telemetry/logger.js';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { startOtlpCollector, type OtlpCollector } from '../fakes/otlp-collector.js';
import { startSignedWebhookServer, type SignedWebhookServer } from '../fakes/signed-webhook-server.js';
import { dumpTables } from '../support/dump-schema.js';
import { captureLogs, type LogCapture } from '../support/log-capture.js';
import { createTestDb, type TestDb } from '../support/test-db.js';
import { eventually, startTestService, type TestService } from '../support/test-service.js';

const HELPDESK_SECRET = 'whsec_' + Buffer.from('redaction-helpdesk-secret-32-byte').toString('base64');

/**
 * Where a conversation's text is stored by design: the messages, the handover's transcript and
 * metadata, the bot's message events, and the queued work that carries a message to the other side.
 * Everything else — stored delivery errors above all — must not hold it.
 */
function withoutDesignedCopies(table: string, row: Record<string, unknown>): Record<string, unknown> | null {
  switch (table) {
    case 'messages':
      return { ...row, text: null };
    case 'handovers':
      return { ...row, transcript: null, metadata: null };
    case 'events':
      return row.type === 'message.created' ? { ...row, data: null } : row;
    case 'outbox':
      return { ...row, payload: null };
    default:
      return row;
  }
}

/** The message text of an event as the generic protocol and bot webhooks carry it. */
function textOf(body: Record<string, unknown>): string {
  const text = (body.data as { message?: { text?: unknown } } | undefined)?.message?.text;
  if (typeof text !== 'string') throw new Error(`no message text in ${JSON.stringify(body)}`);
  return text;
}

interface Run {
  marker: string;
  handoverId: string;
  apiKey: string;
  logs: LogCapture;
  t: TestService;
}

describe('HANDOVER_REDACT_CONTENT: message text stays out of logs, stored errors, traces and failure reports (pg)', () => {
  let t: TestService | undefined;
  let db: TestDb | undefined;
  let bot: SignedWebhookServer | undefined;
  let helpdesk: GenericHelpdesk | undefined;
  let collector: OtlpCollector | undefined;
  afterEach(async () => {
    await t?.close();
    await db?.dropAndClose();
    await bot?.close();
    await helpdesk?.close();
    await collector?.close();
    t = db = bot = helpdesk = collector = undefined;
  });

  /**
   * A helpdesk that refuses the user's message with a 400 quoting it back, and a bot webhook that
   * answers the agent's message twice with a 500 quoting it back: the refusals a service sees when
   * vendors echo what they were sent.
   */
  async function run(overrides: Record<string, unknown>): Promise<Run> {
    const marker = `zq${randomBytes(8).toString('hex')}`;
    const logs = captureLogs();
    db = await createTestDb('pg');
    t = await startTestService('pg', { logLevel: 'trace', 'delivery.maxAttempts': 3, ...overrides }, { db, log: createLogger('trace', logs.stream) });
    let botSecret = '';
    bot = await startSignedWebhookServer(() => botSecret);
    bot.respond = (body, attempt) =>
      body.type === 'message.created' && attempt <= 2
        ? { status: 500, headers: { 'content-type': 'text/plain' }, body: `cannot take "${textOf(body)}"` }
        : { status: 200 };
    helpdesk = await startGenericHelpdesk(HELPDESK_SECRET);
    helpdesk.respond = (body) =>
      body.type === 'message.created'
        ? { status: 400, body: JSON.stringify({ error: 'invalid_message', description: `Could not post "${textOf(body)}"` }) }
        : { status: 200 };

    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Private', webhookUrl: bot.url });
    botSecret = tenant.body.webhookSecret;
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'webhook',
      name: 'echoing-helpdesk',
      config: { url: helpdesk.url, secret: HELPDESK_SECRET },
    });
    expect(connector.status).toBe(201);
    helpdesk.inboundUrl = connector.body.inboundUrl;
    expect((await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'helpdesk', connectorId: connector.body.id })).status).toBe(201);
    const auth = { token: tenant.body.apiKey as string };

    const created = await t.api('POST', '/v1/handovers', {
      ...auth,
      body: {
        conversationId: 'c-private',
        queue: 'helpdesk',
        user: { id: 'u-private' },
        transcript: [{ role: 'user', text: `${marker} transcript` }],
        metadata: { note: `${marker} metadata` },
      },
    });
    expect(created.status).toBe(201);
    const handoverId: string = created.body.id;
    await helpdesk.waitFor((r) => r.some((w) => w.body.type === 'handover.requested'), 20_000, 'handover.requested at the helpdesk');

    // Agent → bot: refused twice with the text quoted back, then taken.
    expect(
      (
        await helpdesk.send({
          type: 'message.created',
          handoverId,
          data: { message: { id: 'hd-1', text: `${marker} from the agent` }, agent: { id: 'a-1', name: 'Hal' } },
        })
      ).status,
    ).toBe(200);
    await bot.waitFor((r) => r.some((w) => w.body.type === 'message.created'), 20_000, 'the agent message at the bot');

    // Bot → helpdesk: refused for good with the text quoted back; the handover fails and the bot is told.
    expect((await t.api('POST', `/v1/handovers/${handoverId}/messages`, { ...auth, body: { id: 'u-1', text: `${marker} from the user` } })).status).toBe(202);
    await bot.waitFor((r) => r.some((w) => w.body.type === 'handover.ended'), 20_000, 'handover.ended at the bot');
    return { marker, handoverId, apiKey: auth.token, logs, t };
  }

  it('with the option on, the marker is only where conversations are stored by design, and failures are still described', async () => {
    collector = await startOtlpCollector();
    const { marker, handoverId, apiKey, logs, t: service } = await run({ redactContent: true, 'tracing.endpoint': collector.url });

    // What the bot is told of the failure: described, not quoted.
    const ended = bot!.received.find((w) => w.body.type === 'handover.ended')!.body as { data: { reason: string; detail: string } };
    expect(ended.data.reason).toBe('failed');
    expect(ended.data.detail).toMatch(/answered 400 \(application\/json, \d+ bytes, keys: error, description, code: invalid_message\)$/);
    expect(ended.data.detail).not.toContain(marker);
    // The same, as the bot API shows it: every event but the agent's message itself.
    const events = await service.api('GET', `/v1/handovers/${handoverId}/events`, { token: apiKey });
    expect(events.status).toBe(200);
    const others = (events.body.events as Array<{ type: string }>).filter((e) => e.type !== 'message.created');
    expect(others.map((e) => e.type)).toContain('handover.ended');
    expect(JSON.stringify(others)).not.toContain(marker);

    // The database: the marker only in the places that hold conversations; the errors are described.
    const tables = await dumpTables(service.db);
    expect(JSON.stringify(tables.messages)).toContain(marker);
    for (const [table, rows] of Object.entries(tables)) {
      for (const row of rows) expect(JSON.stringify(withoutDesignedCopies(table, row)), `a row of ${table}`).not.toContain(marker);
    }
    const errors = tables.delivery_attempts!.map((a) => a.error).filter(Boolean);
    expect(errors).toContainEqual(expect.stringMatching(/answered 500 \(text\/plain, \d+ bytes\)$/));
    expect(errors).toContainEqual(expect.stringMatching(/answered 400 \(application\/json, \d+ bytes, keys: error, description, code: invalid_message\)$/));

    // Status and metrics.
    const status = await service.admin('GET', '/status.json');
    expect(status.status).toBe(200);
    expect(JSON.stringify(status.body)).not.toContain(marker);
    const metrics = await fetch(`${service.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
    expect(await metrics.text()).not.toContain(marker);

    // Stopping flushes the last spans and log lines.
    await service.service.stop();
    t = undefined;
    expect(logs.text()).not.toContain(marker);
    expect(logs.lines().some((l) => /gave up delivering message\.created to the agent side .*answered 400 \(application\/json/.test(String(l.msg)))).toBe(true);
    expect(logs.lines().some((l) => /delivery to the bot side failed, will retry: .*answered 500 \(text\/plain/.test(String(l.msg)))).toBe(true);
    await eventually(async () => collector!.spans.some((s) => s.name === 'deliver message.created'), 'delivery spans at the collector');
    expect(collector.rawBodies.join('\n')).not.toContain(marker);
  });

  it('with the option off (the default), the refusing answers are quoted: the same checks see the text', async () => {
    const { marker, logs, t: service } = await run({});
    const ended = bot!.received.find((w) => w.body.type === 'handover.ended')!.body as { data: { detail: string } };
    expect(ended.data.detail).toContain(`${marker} from the user`);
    const tables = await dumpTables(service.db);
    expect(JSON.stringify(tables.delivery_attempts)).toContain(marker);
    await service.service.stop();
    t = undefined;
    const quoted = logs.lines().filter((l) => String(l.msg).includes(marker));
    expect(quoted.map((l) => l.msg)).toContainEqual(expect.stringMatching(/^gave up delivering message\.created to the agent side/));
    expect(quoted.map((l) => l.msg)).toContainEqual(expect.stringMatching(/^delivery to the bot side failed, will retry/));
  });
});
