import { afterEach, describe, expect, it } from 'vitest';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { startSignedWebhookServer, type SignedWebhookServer } from '../fakes/signed-webhook-server.js';
import { startTestService, type TestService } from '../support/test-service.js';

const SECRET = 'whsec_' + Buffer.from('inbound-rate-secret-of-32-bytes!!!').toString('base64');

describe("a connector's inbound URL has a rate of its own (pglite)", () => {
  let t: TestService | undefined;
  const closers: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    await t?.close();
    for (const c of closers.splice(0)) await c.close();
  });

  it('refuses events past the burst with 429 and Retry-After, and leaves other connectors alone', async () => {
    t = await startTestService('pglite', { 'connectors.inboundPerSecond': 1, 'connectors.inboundBurst': 2 });
    const bot: SignedWebhookServer = await startSignedWebhookServer(() => '');
    const busy: GenericHelpdesk = await startGenericHelpdesk(SECRET);
    const calm: GenericHelpdesk = await startGenericHelpdesk(SECRET);
    closers.push(bot, busy, calm);
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Rates', webhookUrl: bot.url });
    for (const [name, hd] of [
      ['busy', busy],
      ['calm', calm],
    ] as const) {
      const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
        type: 'webhook',
        name,
        config: { url: hd.url, secret: SECRET },
      });
      expect(connector.status).toBe(201);
      hd.inboundUrl = connector.body.inboundUrl;
    }
    // Events for a handover that does not exist: verified and answered, so each one counts.
    const send = (hd: GenericHelpdesk) => hd.send({ type: 'agent.typing', handoverId: 'ho_none', data: { typing: true } });
    const answers = [await send(busy), await send(busy), await send(busy)];
    expect(answers.slice(0, 2).every((a) => a.status !== 429)).toBe(true);
    expect(answers[2]!.status).toBe(429);
    expect(answers[2]!.body.error.code).toBe('inbound_rate_limited');
    expect((await send(calm)).status).not.toBe(429);
  });
});
