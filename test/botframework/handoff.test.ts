import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { ActivityHandler, ActivityTypes, EventFactory, TestAdapter, TurnContext, type Activity, type ConversationReference, type Transcript } from 'botbuilder';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HandoffMiddleware } from '../../packages/botframework/src/index.js';
import { HandoverClient, verifyWebhook, type BotEvent } from '../../packages/client/src/index.js';
import { eventually, setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * The SDK's TestAdapter, with the one thing it leaves out: `continueConversationAsync` (it rejects
 * proactive turns). Done as the SDK's adapters do it: a ContinueConversation event addressed by the
 * reference, with an id of its own (a random one, as CloudAdapter's continuation activity has), run
 * through the adapter's middleware and then the logic. Everything else is the SDK's.
 */
class ProactiveTestAdapter extends TestAdapter {
  override async continueConversationAsync(
    _botAppIdOrClaimsIdentity: unknown,
    reference: Partial<ConversationReference>,
    logicOrAudience: ((context: TurnContext) => Promise<void>) | string,
    maybeLogic?: (context: TurnContext) => Promise<void>,
  ): Promise<void> {
    const logic = typeof logicOrAudience === 'function' ? logicOrAudience : maybeLogic!;
    const activity = TurnContext.applyConversationReference({ type: ActivityTypes.Event, name: 'ContinueConversation' }, reference, true);
    activity.id = randomUUID();
    await this.runMiddleware(new TurnContext(this, activity), logic);
  }
}

/** A small shop bot: echoes, and asks for a person with the standard handoff.initiate event. */
class ShopBot extends ActivityHandler {
  readonly statuses: Array<{ state: string; message?: string; agent?: { name?: string } }> = [];
  /** The id of each handoff.status activity, and of each user message. */
  readonly statusIds: string[] = [];
  readonly messageIds: string[] = [];
  readonly #transcript: Array<Partial<Activity>> = [];

  constructor() {
    super();
    this.onMessage(async (context, next) => {
      const text = context.activity.text ?? '';
      this.messageIds.push(context.activity.id ?? '');
      this.#transcript.push(context.activity);
      if (/human|person/i.test(text)) {
        await context.sendActivity(
          EventFactory.createHandoffInitiation(context, { queue: 'support', orderId: 'A-1042' }, { activities: this.#transcript } as unknown as Transcript),
        );
      } else {
        const reply = `You said: ${text}`;
        await context.sendActivity(reply);
        this.#transcript.push({ type: ActivityTypes.Message, text: reply, from: context.activity.recipient, timestamp: new Date() });
      }
      await next();
    });
    this.onEvent(async (context, next) => {
      if (context.activity.name === 'handoff.status') {
        const status = context.activity.value as ShopBot['statuses'][number];
        this.statuses.push(status);
        this.statusIds.push(context.activity.id ?? '');
        if (status.state === 'accepted') await context.sendActivity(`${status.agent?.name ?? 'Someone'} is with you now.`);
        if (status.state === 'failed') await context.sendActivity(`Nobody can take this right now (${status.message}). I am still here.`);
        if (status.state === 'completed') await context.sendActivity('The bot is back. Anything else?');
      }
      await next();
    });
  }
}

describe('Bot Framework handoff through the middleware, against a running service', () => {
  let t: TestService;
  let desk: DeskSetup;
  let client: HandoverClient;
  const stop = new AbortController();

  beforeAll(async () => {
    t = await startTestService('pglite');
    desk = await setUpDesk(t);
    client = new HandoverClient({ baseUrl: t.url, apiKey: desk.apiKey, retry: { baseDelayMs: 20 } });
  });

  afterAll(async () => {
    stop.abort();
    await t?.close();
  });

  /** A bot on the SDK's test adapter, with the middleware following the event stream. */
  async function startBot(conversationId: string, options: { client?: HandoverClient; stream?: boolean } = {}) {
    const bot = new ShopBot();
    const adapter = new ProactiveTestAdapter((context) => bot.run(context), {
      channelId: 'test',
      serviceUrl: 'https://test.example',
      conversation: { id: conversationId, isGroup: false, conversationType: 'personal', name: '' },
      from: { id: 'user-7', name: 'Uma User', role: 'user' },
      recipient: { id: 'shop-bot', name: 'Shop bot', role: 'bot' },
      locale: 'en-GB',
    });
    const errors: unknown[] = [];
    const handoff = new HandoffMiddleware({ client: options.client ?? client, adapter, bot, onError: (error) => errors.push(error) });
    adapter.use(handoff);
    if (options.stream !== false) {
      let opened!: () => void;
      const open = new Promise<void>((resolve) => (opened = resolve));
      void handoff.listen({ signal: stop.signal, onOpen: () => opened(), reconnect: { baseDelayMs: 50, maxDelayMs: 200 } });
      await open;
    }
    /** What the user sees: everything the bot sent into the conversation, in order. */
    const seen = () =>
      adapter.activeQueue.map((a) => (a.type === ActivityTypes.Typing ? '(typing)' : a.type === ActivityTypes.Message ? a.text : `(${a.type} ${a.name})`));
    const say = (text: string) => adapter.send(text).startTest();
    return { bot, adapter, handoff, seen, say, errors };
  }

  async function waitingHandover(conversationId: string, agentToken = desk.agentToken) {
    return eventually(async () => {
      const list = await t.api('GET', '/v1/desk/handovers', { token: agentToken });
      return (list.body.waiting as Array<Record<string, any>>).find((h) => h.conversationId === conversationId);
    }, 'the handover in the desk');
  }

  it('hands over with handoff.initiate; the agent answers, the user sees it, the agent ends and the bot gets handoff.status completed', async () => {
    const { bot, adapter, seen, say, errors } = await startBot('conv-story');
    await say('hello');
    expect(seen()).toEqual(['You said: hello']);

    await say('I want to talk to a human');
    // The initiate event went to the service, not to the channel.
    expect(seen()).toEqual(['You said: hello']);
    const waiting = await waitingHandover('test:conv-story');
    expect(waiting.transcript.map((e: { role: string; text: string }) => `${e.role}: ${e.text}`)).toEqual([
      'user: hello',
      'bot: You said: hello',
      'user: I want to talk to a human',
    ]);
    expect(waiting.user).toMatchObject({ id: 'user-7', name: 'Uma User', locale: 'en-GB' });
    expect(waiting.metadata).toMatchObject({ orderId: 'A-1042', channelId: 'test' });
    const handoverId: string = waiting.id;

    expect((await t.api('POST', `/v1/desk/handovers/${handoverId}/accept`, { token: desk.agentToken })).status).toBe(200);
    await eventually(async () => bot.statuses.some((s) => s.state === 'accepted'), 'handoff.status accepted');
    expect(seen().at(-1)).toBe('Ada Agent is with you now.');
    // Said in the status turn: a new activity of the conversation, not a reply to the status event.
    expect(adapter.activeQueue.find((a) => a.text === 'Ada Agent is with you now.')!.replyToId).toBeUndefined();

    // The user writes: the agent gets it, the bot stays out of it.
    await say('my order A-1042 is late');
    const messages = await eventually(async () => {
      const res = await t.api('GET', `/v1/desk/handovers/${handoverId}/messages`, { token: desk.agentToken });
      const toAgent = (res.body.messages as Array<{ direction: string; text: string }>).filter((m) => m.direction === 'to_agent');
      return toAgent.length > 0 && toAgent;
    }, 'the user message at the desk');
    expect(messages.map((m) => m.text)).toEqual(['my order A-1042 is late']);
    expect(seen().filter((line) => line?.startsWith('You said'))).toEqual(['You said: hello']);

    // The agent types and answers: the user sees both.
    expect((await t.api('POST', `/v1/desk/handovers/${handoverId}/typing`, { token: desk.agentToken, body: { typing: true } })).status).toBe(202);
    expect(
      (
        await t.api('POST', `/v1/desk/handovers/${handoverId}/messages`, {
          token: desk.agentToken,
          body: { id: 'a-1', text: 'It ships tomorrow, sorry for the wait.' },
        })
      ).status,
    ).toBe(202);
    await eventually(async () => seen().includes('It ships tomorrow, sorry for the wait.'), "the agent's answer in the conversation");
    expect(seen()).toContain('(typing)');
    // Sent into the conversation, not as replies to the proactive turn's continuation event (which the
    // conversation never had): no replyToId.
    const fromAgent = adapter.activeQueue.filter((a) => a.type === ActivityTypes.Typing || a.text === 'It ships tomorrow, sorry for the wait.');
    expect(fromAgent.length).toBeGreaterThanOrEqual(2);
    for (const sent of fromAgent) expect(sent.replyToId).toBeUndefined();

    // A Teams file: the agent gets its download link, not its SharePoint page.
    await adapter
      .send({
        type: ActivityTypes.Message,
        text: 'the receipt',
        attachments: [
          {
            contentType: 'application/vnd.microsoft.teams.file.download.info',
            contentUrl: 'https://contoso.sharepoint.example/personal/uma/receipt.pdf',
            name: 'receipt.pdf',
            content: { downloadUrl: 'https://download.example/receipt.pdf?token=abc', uniqueId: 'u-1', fileType: 'pdf' },
          },
        ],
      })
      .startTest();
    const withFile = await eventually(async () => {
      const res = await t.api('GET', `/v1/desk/handovers/${handoverId}/messages`, { token: desk.agentToken });
      return (res.body.messages as Array<{ text: string; attachments: Array<{ url: string; name?: string }> }>).find((m) => m.text === 'the receipt');
    }, 'the file at the desk');
    expect(withFile.attachments).toEqual([expect.objectContaining({ url: 'https://download.example/receipt.pdf?token=abc', name: 'receipt.pdf' })]);

    // The agent ends: handoff.status completed, and the bot answers again.
    expect((await t.api('POST', `/v1/desk/handovers/${handoverId}/end`, { token: desk.agentToken, body: {} })).status).toBe(200);
    await eventually(async () => bot.statuses.some((s) => s.state === 'completed'), 'handoff.status completed');
    expect(bot.statuses).toEqual([
      { state: 'accepted', agent: { id: desk.agentId, name: 'Ada Agent' } },
      { state: 'completed', message: 'agent_ended' },
    ]);
    expect(seen().at(-1)).toBe('The bot is back. Anything else?');
    // Each status has an id of its own, not the id of the user's message that asked for the handoff.
    expect(new Set(bot.statusIds).size).toBe(2);
    for (const id of bot.statusIds) expect(bot.messageIds).not.toContain(id);
    await say('thanks');
    expect(seen().at(-1)).toBe('You said: thanks');
    expect(seen().filter((line) => line?.startsWith('('))).toEqual(['(typing)']);
    expect(errors).toEqual([]);
  });

  it('sends handoff.status failed with the reason when nobody is available, and the bot keeps the conversation', async () => {
    const { bot, seen, say } = await startBot('conv-nobody');
    expect((await t.api('PUT', '/v1/desk/presence', { token: desk.agentToken, body: { presence: 'away' } })).status).toBe(200);
    try {
      await say('a person please');
      expect(bot.statuses).toEqual([{ state: 'failed', message: 'no_agents_available' }]);
      expect(seen()).toEqual(['Nobody can take this right now (no_agents_available). I am still here.']);
      await say('ok then');
      expect(seen().at(-1)).toBe('You said: ok then');
    } finally {
      await t.api('PUT', '/v1/desk/presence', { token: desk.agentToken, body: { presence: 'available' } });
    }
  });

  it('takes the agent side from verified webhooks instead of the stream', async () => {
    let handle: (event: BotEvent) => Promise<boolean> = async () => false;
    let secret = '';
    const seen = new Set<string>();
    const receiver = createServer(async (req, res) => {
      let body = '';
      for await (const chunk of req) body += chunk;
      try {
        const event = await verifyWebhook(secret, req.headers, body);
        // The service sends an event again until it gets a 2xx: a repeat is dropped by its id.
        if (!seen.has(event.id)) await handle(event);
        seen.add(event.id);
        res.writeHead(200).end();
      } catch {
        res.writeHead(500).end();
      }
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const hooked = await setUpDesk(t, { webhookUrl: `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook` });
      secret = hooked.webhookSecret;
      const {
        bot,
        handoff,
        seen: said,
        say,
      } = await startBot('conv-webhook', { client: new HandoverClient({ baseUrl: t.url, apiKey: hooked.apiKey }), stream: false });
      handle = (event) => handoff.handleEvent(event);
      await say('a human please');
      const waiting = await waitingHandover('test:conv-webhook', hooked.agentToken);
      await t.api('POST', `/v1/desk/handovers/${waiting.id}/accept`, { token: hooked.agentToken });
      await t.api('POST', `/v1/desk/handovers/${waiting.id}/messages`, { token: hooked.agentToken, body: { id: 'a-1', text: 'Hello from the desk.' } });
      await eventually(async () => said().includes('Hello from the desk.'), "the agent's answer, by webhook");
      await t.api('POST', `/v1/desk/handovers/${waiting.id}/end`, { token: hooked.agentToken, body: {} });
      await eventually(async () => bot.statuses.some((s) => s.state === 'completed'), 'handoff.status completed, by webhook');
      expect(bot.statuses.map((s) => s.state)).toEqual(['accepted', 'completed']);
      expect(said().filter((line) => line === 'Hello from the desk.')).toHaveLength(1);
    } finally {
      await new Promise((resolve) => receiver.close(resolve));
    }
  });
});
