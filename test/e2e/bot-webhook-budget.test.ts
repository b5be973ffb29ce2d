import { afterEach, describe, expect, it } from 'vitest';
import { startSignedWebhookServer, type SignedWebhookServer } from '../fakes/signed-webhook-server.js';
import { eventually, setUpDesk, startTestService, type TestService } from '../support/test-service.js';
import { BOT_WEBHOOK_MAX_ATTEMPTS } from '../../src/handover/events.js';

describe("a bot webhook's retry budget (pglite)", () => {
  let t: TestService | undefined;
  let bot: SignedWebhookServer | undefined;
  afterEach(async () => {
    await t?.close();
    await bot?.close();
  });

  it('keeps trying an event for about 55 minutes (60 tries at most a minute apart), long enough for a bot to be redeployed', async () => {
    expect(BOT_WEBHOOK_MAX_ATTEMPTS).toBe(60);
    t = await startTestService('pglite');
    let secret = '';
    let tries = 0;
    bot = await startSignedWebhookServer(() => secret);
    bot.respond = () => {
      tries++;
      return { status: 503 };
    };
    const desk = await setUpDesk(t, { webhookUrl: bot.url });
    secret = desk.webhookSecret;
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    expect(created.status).toBe(201);
    await eventually(async () => (tries > 0 ? true : null), 'a first try');
    const { rows } = await t.db.query<{ max_attempts: number; kind: string }>(
      `select max_attempts, kind from outbox where handover_id = $1 and target = 'bot'`,
      [created.body.id],
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row).toMatchObject({ max_attempts: 60 });
  });
});
