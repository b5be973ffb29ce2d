import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, setUpDesk, startTestService, type TestService } from '../support/test-service.js';
import { freePort, runExample, type RunningExample } from './run-example.js';

interface ChannelActivity {
  type: string;
  text?: string;
  name?: string;
}

/**
 * The channel's side of the Bot Framework protocol, as the Emulator plays it: the bot's replies and
 * proactive messages arrive as POST {serviceUrl}/v3/conversations/{id}/activities[/{replyToId}].
 */
async function startChannel(): Promise<{ url: string; received: ChannelActivity[]; close(): Promise<void> }> {
  const received: ChannelActivity[] = [];
  let next = 1;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      if (req.method === 'POST' && /^\/v3\/conversations\/[^/]+\/activities(\/[^/]+)?$/.test(req.url ?? '')) {
        received.push(JSON.parse(body) as ChannelActivity);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: `channel-${next++}` }));
      } else res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('the Bot Framework echo bot example, run against a service', () => {
  let t: TestService;
  let channel: Awaited<ReturnType<typeof startChannel>>;
  let bot: RunningExample | undefined;

  beforeAll(async () => {
    t = await startTestService('pglite');
    channel = await startChannel();
  });

  afterAll(async () => {
    await bot?.stop();
    await channel?.close();
    await t?.close();
  });

  it('echoes, hands over on "human", shows the agent’s answer, and echoes again once the agent ends', async () => {
    const desk = await setUpDesk(t);
    const port = await freePort();
    bot = runExample('examples/botframework-echo-bot/echo-bot.js', { HANDOVER_URL: t.url, HANDOVER_API_KEY: desk.apiKey, PORT: String(port) });
    await bot.waitForLine(/^echo bot listening/);
    let id = 0;
    const userSays = async (text: string) => {
      const activity = {
        type: 'message',
        id: `user-${++id}`,
        channelId: 'emulator',
        serviceUrl: channel.url,
        conversation: { id: 'conv-echo' },
        from: { id: 'user-1', name: 'Uma User', role: 'user' },
        recipient: { id: 'echo-bot', name: 'Echo bot', role: 'bot' },
        text,
        locale: 'en-US',
        timestamp: new Date().toISOString(),
      };
      const res = await fetch(`http://127.0.0.1:${port}/api/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(activity),
      });
      expect(res.status).toBeLessThan(300);
    };
    const texts = () => channel.received.filter((a) => a.type === 'message').map((a) => a.text);

    await userSays('hello');
    expect(texts()).toEqual(['Echo: hello. (Say "human" to talk to a person.)']);
    await userSays('can I talk to a human?');
    expect(texts().at(-1)).toBe('Let me find a person for you…');
    // The handoff event went to the service, not to the channel.
    expect(channel.received.some((a) => a.type === 'event')).toBe(false);

    const waiting = await eventually(async () => {
      const list = await t.api('GET', '/v1/desk/handovers', { token: desk.agentToken });
      return (list.body.waiting as Array<Record<string, any>>).find((h) => h.conversationId === 'emulator:conv-echo');
    }, 'the handover at the desk');
    expect(waiting.transcript.map((e: { role: string; text: string }) => `${e.role}: ${e.text}`)).toEqual([
      'user: hello',
      'bot: Echo: hello. (Say "human" to talk to a person.)',
      'user: can I talk to a human?',
    ]);
    expect((await t.api('POST', `/v1/desk/handovers/${waiting.id}/accept`, { token: desk.agentToken })).status).toBe(200);
    await eventually(async () => texts().includes('Ada Agent joined the chat.'), 'the agent joining, in the channel');

    await userSays('my bike has a flat tyre');
    await eventually(async () => {
      const res = await t.api('GET', `/v1/desk/handovers/${waiting.id}/messages`, { token: desk.agentToken });
      return (res.body.messages as Array<{ direction: string; text: string }>).some((m) => m.direction === 'to_agent' && m.text === 'my bike has a flat tyre');
    }, "the user's message at the desk");
    await t.api('POST', `/v1/desk/handovers/${waiting.id}/messages`, { token: desk.agentToken, body: { id: 'a-1', text: 'We will send a new tube today.' } });
    await eventually(async () => texts().includes('We will send a new tube today.'), "the agent's answer, in the channel");

    await t.api('POST', `/v1/desk/handovers/${waiting.id}/end`, { token: desk.agentToken, body: {} });
    await eventually(async () => texts().includes('You are back with the echo bot. Anything else?'), 'the bot back, in the channel');
    await userSays('thanks');
    await eventually(async () => texts().at(-1) === 'Echo: thanks. (Say "human" to talk to a person.)', 'the bot echoing again');
    // While the agent had it, the bot echoed nothing.
    expect(texts().filter((text) => text?.startsWith('Echo:'))).toHaveLength(2);
  });
});
