import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, setUpDesk, startTestService, type TestService } from '../support/test-service.js';
import { freePort, runExample, type RunningExample } from './run-example.js';

describe('the plain-Node example bot, run against a service', () => {
  let t: TestService;
  const running: RunningExample[] = [];

  beforeAll(async () => {
    t = await startTestService('pglite');
  });

  afterAll(async () => {
    await Promise.all(running.map((r) => r.stop()));
    await t?.close();
  });

  it.each(['stream', 'webhook'] as const)('hands over and relays one round trip (%s mode)', async (mode) => {
    const port = await freePort();
    const desk = await setUpDesk(t, mode === 'webhook' ? { webhookUrl: `http://127.0.0.1:${port}/webhook` } : {});
    const bot = runExample('examples/plain-bot/plain-bot.js', {
      HANDOVER_URL: t.url,
      HANDOVER_API_KEY: desk.apiKey,
      HANDOVER_MODE: mode,
      HANDOVER_WEBHOOK_SECRET: desk.webhookSecret,
      PORT: String(port),
      CONVERSATION_ID: `plain-${mode}`,
    });
    running.push(bot);
    await bot.waitForLine(/^bot: Hi!/);
    bot.child.stdin.write('hello\n');
    await bot.waitForLine(/^bot: You said: hello/);
    bot.child.stdin.write('I want a human\n');
    await bot.waitForLine(/^bot: Connecting you with a person/);

    const list = await t.api('GET', '/v1/desk/handovers', { token: desk.agentToken });
    const waiting = (list.body.waiting as Array<Record<string, any>>).find((h) => h.conversationId === `plain-${mode}`)!;
    expect(waiting.transcript.map((e: { text: string }) => e.text)).toEqual([
      expect.stringMatching(/^Hi!/),
      'hello',
      'You said: hello. (Type "human" to talk to a person.)',
      'I want a human',
    ]);
    expect((await t.api('POST', `/v1/desk/handovers/${waiting.id}/accept`, { token: desk.agentToken })).status).toBe(200);
    await bot.waitForLine(/^bot: Ada Agent joined the chat\./);

    bot.child.stdin.write('where is my order?\n');
    await eventually(async () => {
      const res = await t.api('GET', `/v1/desk/handovers/${waiting.id}/messages`, { token: desk.agentToken });
      return (res.body.messages as Array<{ direction: string; text: string }>).some((m) => m.direction === 'to_agent' && m.text === 'where is my order?');
    }, "the user's line at the desk");
    await t.api('POST', `/v1/desk/handovers/${waiting.id}/messages`, { token: desk.agentToken, body: { id: 'a-1', text: 'On its way.' } });
    await bot.waitForLine(/^Ada Agent: On its way\.$/);
    await t.api('POST', `/v1/desk/handovers/${waiting.id}/end`, { token: desk.agentToken, body: {} });
    await bot.waitForLine(/^bot: The person has left the chat; I am back/);
    expect(bot.lines.filter((line) => line.startsWith('bot: You said'))).toHaveLength(1);
  });
});
