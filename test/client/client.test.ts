import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HandoverClient,
  HandoverError,
  botOperations,
  verifyWebhook,
  type BotEvent,
  type PositionStore,
  type WebhookVerificationError,
} from '../../packages/client/src/index.js';
import { dbKinds, type DbKind } from '../support/test-db.js';
import { startLossyProxy, type LossyProxy } from '../support/lossy-proxy.js';
import { eventually, setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/** A bot's webhook endpoint: keeps each request's headers and raw body, as a bot framework would see them. */
async function startWebhookReceiver(): Promise<{ url: string; received: Array<{ headers: IncomingHttpHeaders; body: string }>; close(): Promise<void> }> {
  const received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe.each<DbKind>(dbKinds)('the client library against a running service (%s)', (kind) => {
  let t: TestService;
  let proxy: LossyProxy;
  let desk: DeskSetup;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

  beforeAll(async () => {
    t = await startTestService(kind);
    receiver = await startWebhookReceiver();
    desk = await setUpDesk(t, { webhookUrl: receiver.url });
    proxy = await startLossyProxy(t.url);
  });

  afterAll(async () => {
    await proxy?.close();
    await receiver?.close();
    await t?.close();
  });

  const client = (options: { retry?: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number }; viaProxy?: boolean } = {}) =>
    new HandoverClient({ baseUrl: options.viaProxy === false ? t.url : proxy.url, apiKey: desk.apiKey, retry: { baseDelayMs: 20, ...options.retry } });

  it('has a method for every bot operation of the OpenAPI document, at the documented path and method', async () => {
    const spec = (await t.api('GET', '/openapi.json')).body as {
      paths: Record<string, Record<string, { operationId: string; security?: Array<Record<string, unknown>> }>>;
    };
    const documented = Object.entries(spec.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([, op]) => op.security?.some((s) => 'apiKey' in s))
        .map(([method, op]) => ({ operationId: op.operationId, method: method.toUpperCase(), path })),
    );
    expect(documented.length).toBeGreaterThanOrEqual(10);
    for (const op of documented) {
      const known = (botOperations as Record<string, { method: string; path: string; clientMethod: string }>)[op.operationId];
      expect(known, `the client has no method for ${op.operationId} (${op.method} ${op.path})`).toBeDefined();
      expect({ method: known!.method, path: known!.path }, op.operationId).toEqual({ method: op.method, path: op.path });
      expect(typeof (HandoverClient.prototype as unknown as Record<string, unknown>)[known!.clientMethod], op.operationId).toBe('function');
    }
    // Nor does the client keep an operation the service no longer documents.
    expect(Object.keys(botOperations).sort()).toEqual(documented.map((op) => op.operationId).sort());
  });

  it('resumes a stream cut mid-conversation with nothing missed or doubled, and a restarted bot resumes from its stored position', async () => {
    const bot = client();
    let saved: string | undefined;
    const store: PositionStore = { load: () => saved, save: (id) => void (saved = id) };
    const stop = new AbortController();
    const got: BotEvent[] = [];
    // The stream is open before anything happens: it starts with the next event.
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    let opens = 0;
    const reading = (async () => {
      const onOpen = () => {
        opens++;
        opened();
      };
      for await (const event of bot.events({ positionStore: store, signal: stop.signal, reconnect: { baseDelayMs: 50, maxDelayMs: 200 }, onOpen })) {
        got.push(event);
        if (got.filter((e) => e.type === 'message.created').length === 10) stop.abort();
      }
    })();
    await open;
    const { handover } = await bot.createHandover({ conversationId: `stream-${kind}`, queue: desk.queue, user: { id: 'u-stream' } });
    expect((await t.api('POST', `/v1/desk/handovers/${handover.id}/accept`, { token: desk.agentToken })).status).toBe(200);
    const say = async (i: number) =>
      expect(
        (await t.api('POST', `/v1/desk/handovers/${handover.id}/messages`, { token: desk.agentToken, body: { id: `a-${i}`, text: `answer ${i}` } })).status,
      ).toBe(202);
    for (let i = 1; i <= 4; i++) await say(i);
    await eventually(async () => got.filter((e) => e.type === 'message.created').length >= 2, 'some answers on the stream');
    // The network drops every connection; the agent goes on answering meanwhile.
    proxy.cutAll();
    for (let i = 5; i <= 10; i++) await say(i);
    await reading;
    expect(opens).toBeGreaterThanOrEqual(2);
    const texts = got.filter((e) => e.type === 'message.created').map((e) => (e.type === 'message.created' ? e.data.message.text : ''));
    expect(texts).toEqual(Array.from({ length: 10 }, (_, i) => `answer ${i + 1}`));
    expect(new Set(got.map((e) => e.id)).size).toBe(got.length);
    expect(got[0]?.type).toBe('handover.queued');

    // The bot restarts: a new iterator with the same store starts after the last event it processed.
    // The loop finished with the 10th answer (it stopped after it): that is the stored position.
    expect(saved).toBe(got.at(-1)?.id);
    await t.api('POST', `/v1/desk/handovers/${handover.id}/end`, { token: desk.agentToken, body: {} });
    const again: BotEvent[] = [];
    for await (const event of bot.events({ positionStore: store })) {
      again.push(event);
      if (event.type === 'handover.ended') break;
    }
    expect(again.map((e) => e.type)).toEqual(['handover.ended']);
    // A loop that breaks inside an event has not finished with it: it is not stored, and comes again.
    expect(saved).toBe(got.at(-1)?.id);
  });

  it('retries a 503 once its Retry-After allows, and reports it with its code when the bound is reached', async () => {
    const admission = t.service.deps.config.admission;
    const normal = admission.heapUsedLimitRatio;
    const bot = client({ viaProxy: false, retry: { maxAttempts: 3 } });
    try {
      // Shedding for memory (a real reading, an unreachable threshold) for half a second.
      admission.heapUsedLimitRatio = 0.0001;
      const started = Date.now();
      setTimeout(() => (admission.heapUsedLimitRatio = normal), 500);
      const availability = await bot.getAvailability(desk.queue);
      expect(availability.available).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);

      admission.heapUsedLimitRatio = 0.0001;
      const refusedAt = Date.now();
      const error = await bot.getAvailability(desk.queue).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(HandoverError);
      expect(error).toMatchObject({ status: 503, code: 'overloaded_memory', retryAfterSeconds: 1, attempts: 3 });
      // Two waits of Retry-After between three attempts.
      expect(Date.now() - refusedAt).toBeGreaterThanOrEqual(2000);
    } finally {
      admission.heapUsedLimitRatio = normal;
    }
  });

  it('makes one handover and one message when their answers are lost and the client sends them again', async () => {
    const bot = client();
    const conversationId = `lost-${kind}`;
    proxy.loseNextAnswer();
    const { handover, created } = await bot.createHandover({ conversationId, queue: desk.queue, user: { id: 'u-lost' } });
    expect(created).toBe(true);
    expect(proxy.lost).toBeGreaterThanOrEqual(1);
    const { rows } = await t.db.query<{ id: string }>('select id from handovers where conversation_id = $1', [conversationId]);
    expect(rows.map((r) => r.id)).toEqual([handover.id]);

    const lostBefore = proxy.lost;
    proxy.loseNextAnswer();
    await bot.sendMessage(handover.id, { text: 'sent once' });
    expect(proxy.lost).toBe(lostBefore + 1);
    const messages = await t.db.query<{ text: string }>('select text from messages where handover_id = $1', [handover.id]);
    expect(messages.rows.map((r) => r.text)).toEqual(['sent once']);
    await bot.endHandover(handover.id);
  });

  it('is published from the same version as the service', async () => {
    const { readFile } = await import('node:fs/promises');
    const version = async (file: string) => (JSON.parse(await readFile(new URL(file, import.meta.url), 'utf8')) as { version: string }).version;
    expect(await version('../../packages/client/package.json')).toBe(await version('../../package.json'));
  });

  it('reports refusals with the service code, status and details, without retrying them', async () => {
    const bot = client();
    const missing = await bot.getHandover('ho_nothing').catch((err: unknown) => err);
    expect(missing).toMatchObject({ name: 'HandoverError', status: 404, code: 'handover_not_found', attempts: 1 });
    const invalid = await bot.sendMessage('ho_nothing', { text: 'x'.repeat(20_001) }).catch((err: unknown) => err);
    expect(invalid).toMatchObject({ status: 400, code: 'invalid_request' });
    expect((invalid as HandoverError).details?.problems).toBeDefined();
    const wrongKey = await new HandoverClient({ baseUrl: t.url, apiKey: 'handover_sk_wrong' }).getAvailability(desk.queue).catch((err: unknown) => err);
    expect(wrongKey).toMatchObject({ status: 401, code: 'unauthorized' });
  });

  it('verifies the webhooks the service signs, and refuses a forged, altered or replayed one', async () => {
    const bot = client();
    const { handover } = await bot.createHandover({ conversationId: `hook-${kind}`, queue: desk.queue, user: { id: 'u-hook' } });
    const webhook = await eventually(async () => receiver.received.find((r) => r.body.includes(handover.id)), 'a webhook for the handover');
    const event = await verifyWebhook(desk.webhookSecret, webhook.headers as Record<string, string>, webhook.body);
    expect(event).toMatchObject({ type: 'handover.queued', handoverId: handover.id });
    expect(event.id).toBe(webhook.headers['webhook-id']);

    const refusal = (p: Promise<unknown>) =>
      p.then(
        () => null,
        (err: unknown) => err as WebhookVerificationError,
      );
    const forged = await refusal(verifyWebhook('whsec_' + Buffer.alloc(32, 1).toString('base64'), webhook.headers as Record<string, string>, webhook.body));
    expect(forged).toMatchObject({ name: 'WebhookVerificationError', code: 'invalid_signature' });
    const altered = await refusal(
      verifyWebhook(desk.webhookSecret, webhook.headers as Record<string, string>, webhook.body.replace('handover.queued', 'handover.ended')),
    );
    expect(altered).toMatchObject({ code: 'invalid_signature' });
    const unsigned = await refusal(
      verifyWebhook(desk.webhookSecret, { ...webhook.headers, 'webhook-signature': undefined } as unknown as Record<string, string | undefined>, webhook.body),
    );
    expect(unsigned).toMatchObject({ code: 'invalid_signature' });
    const replayed = await refusal(
      verifyWebhook(desk.webhookSecret, webhook.headers as Record<string, string>, webhook.body, { now: new Date(Date.now() + 10 * 60_000) }),
    );
    expect(replayed).toMatchObject({ code: 'stale_timestamp' });
    await bot.endHandover(handover.id);
  });
});
