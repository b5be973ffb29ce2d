import { createServer } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { BOT_WEBHOOK_MAX_ATTEMPTS } from '../../src/handover/events.js';
import { listenOnLoopback, type Listening } from '../support/ports.js';
import { eventually, setUpDesk, startTestService, type TestService } from '../support/test-service.js';

/**
 * A bot webhook (or a helpdesk) can answer anything. A refusing answer with NUL and control characters
 * is recorded like any other failure, retried with backoff and given up after the last attempt — never
 * an error while recording the failure, which used to leave the delivery pending and retried at once,
 * for ever.
 */
describe('hostile answers from a remote system (pg)', () => {
  let t: TestService | undefined;
  let server: Listening | undefined;
  afterEach(async () => {
    await t?.close();
    await server?.close();
  });

  it('records a refusal carrying NUL and control characters, and gives up after the last attempt', async () => {
    let hits = 0;
    server = await listenOnLoopback(
      createServer((req, res) => {
        hits++;
        req.resume();
        req.on('end', () => res.writeHead(500, { 'content-type': 'text/plain' }).end('bad\u0000news\u0007 \u001b[31mred'));
      }),
    );
    t = await startTestService('pg');
    const desk = await setUpDesk(t, { webhookUrl: `${server.url}/hook` });
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    expect((await t.api('POST', `/v1/desk/handovers/${created.body.id}/accept`, { token: desk.agentToken })).status).toBe(200);
    const outbox = await eventually(
      async () => {
        const { rows } = await t!.db.query<{ state: string; attempts: number; last_error: string }>(
          `select state, attempts, last_error from outbox where tenant_id = $1 and target = 'bot' and kind = 'handover.accepted'`,
          [desk.tenantId],
        );
        return rows[0]?.state === 'dead' ? rows[0] : undefined;
      },
      'the delivery to be given up',
      60_000,
    );
    // Bot webhooks get BOT_WEBHOOK_MAX_ATTEMPTS (60) attempts, with test-short backoff here.
    expect(outbox.attempts).toBe(BOT_WEBHOOK_MAX_ATTEMPTS);
    expect(outbox.last_error).toMatch(/answered 500 \(text\/plain, 18 bytes\): bad news {3}\[31mred$/);
    const { rows: attempts } = await t.db.query<{ outcome: string }>(
      `select a.outcome from delivery_attempts a join outbox o on o.id = a.outbox_id where o.tenant_id = $1 and o.kind = 'handover.accepted' order by a.attempt`,
      [desk.tenantId],
    );
    expect(attempts.map((a) => a.outcome)).toEqual([...Array<string>(BOT_WEBHOOK_MAX_ATTEMPTS - 1).fill('retry'), 'failed']);
    expect(hits).toBeGreaterThanOrEqual(BOT_WEBHOOK_MAX_ATTEMPTS);
  }, 90_000);
});
