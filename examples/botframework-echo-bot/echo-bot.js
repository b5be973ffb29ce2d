#!/usr/bin/env node
// A Bot Framework echo bot (botbuilder 4.x, CloudAdapter) that hands the conversation over to a person
// with the standard handoff protocol: it sends handoff.initiate with the transcript, and hears back
// through handoff.status events. The middleware of packages/botframework does the handover: it relays
// the conversation both ways while a person has it, and gives it back to the bot when the agent ends.
// The agent's side comes from the tenant's event stream.
//
//   HANDOVER_API_KEY=handover_sk_… node examples/botframework-echo-bot/echo-bot.js
//
// Then talk to it at http://127.0.0.1:3978/api/messages with the Bot Framework Emulator (no app id), or
// deploy it as an Azure bot (MicrosoftAppId, MicrosoftAppPassword, MicrosoftAppType, MicrosoftAppTenantId).
import { createServer } from 'node:http';
import { ActivityHandler, CloudAdapter, ConfigurationBotFrameworkAuthentication, EventFactory } from 'botbuilder';
// The client and the middleware: their builds, or their sources with --conditions=development under tsx.
import { HandoverClient } from '#handover-client';
import { HandoffMiddleware } from '#handover-botframework';

const env = process.env;
const settings = {
  handoverUrl: env.HANDOVER_URL || 'http://127.0.0.1:8080',
  apiKey: env.HANDOVER_API_KEY || '',
  queue: env.HANDOVER_QUEUE || 'support',
  host: env.HOST || '127.0.0.1',
  port: Number(env.PORT || 3978),
};
if (!settings.apiKey) {
  console.error('HANDOVER_API_KEY is required: create a tenant (npx handover tenant create --name Shop) and use its API key.');
  process.exit(2);
}

class EchoBot extends ActivityHandler {
  /** Each conversation's messages so far (both sides), for the handoff's transcript. */
  #transcripts = new Map();

  constructor() {
    super();
    this.onMessage(async (context, next) => {
      const transcript = this.#transcript(context);
      const text = context.activity.text ?? '';
      transcript.push(context.activity);
      if (/\b(human|person|agent)\b/i.test(text)) {
        await context.sendActivity('Let me find a person for you…');
        // The queue is chosen by the handoff context; anything else in it travels to the agent.
        await context.sendActivity(
          EventFactory.createHandoffInitiation(context, { queue: settings.queue, source: 'echo bot' }, { activities: transcript.slice(-50) }),
        );
      } else {
        await this.#say(context, `Echo: ${text}. (Say "human" to talk to a person.)`);
      }
      await next();
    });
    this.onEvent(async (context, next) => {
      if (context.activity.name === 'handoff.status') {
        const { state, message, agent } = context.activity.value ?? {};
        if (state === 'accepted') await context.sendActivity(`${agent?.name ?? 'A person'} joined the chat.`);
        if (state === 'failed') await this.#say(context, `Nobody can take this right now (${message}). I am still here.`);
        if (state === 'completed') await this.#say(context, 'You are back with the echo bot. Anything else?');
      }
      await next();
    });
  }

  async #say(context, text) {
    await context.sendActivity(text);
    this.#transcript(context).push({ type: 'message', text, from: context.activity.recipient, timestamp: new Date() });
  }

  #transcript(context) {
    const id = context.activity.conversation.id;
    if (!this.#transcripts.has(id)) this.#transcripts.set(id, []);
    return this.#transcripts.get(id);
  }
}

const adapter = new CloudAdapter(new ConfigurationBotFrameworkAuthentication(env));
adapter.onTurnError = async (context, error) => {
  console.error('turn failed:', error);
  await context.sendActivity('Sorry, something went wrong on my side.');
};
const bot = new EchoBot();
const handoff = new HandoffMiddleware({
  client: new HandoverClient({ baseUrl: settings.handoverUrl, apiKey: settings.apiKey }),
  adapter,
  bot,
  botAppId: env.MicrosoftAppId || '',
  defaultQueue: settings.queue,
});
adapter.use(handoff);

// The agent's side: follow the event stream (open before the first handoff).
const stop = new AbortController();
await new Promise((resolve, reject) => {
  handoff.listen({ signal: stop.signal, onOpen: resolve }).catch((err) => (stop.signal.aborted ? undefined : reject(err)));
});

// The Bot Framework messaging endpoint, on node:http (CloudAdapter wants a parsed body and a small response API).
const server = createServer(async (req, res) => {
  if (req.method !== 'POST' || req.url !== '/api/messages') return res.writeHead(404).end();
  let body = '';
  for await (const chunk of req) body += chunk;
  let activity;
  try {
    activity = JSON.parse(body);
  } catch {
    return res.writeHead(400).end();
  }
  const response = {
    socket: res.socket,
    status: (code) => void (res.statusCode = code),
    header: (name, value) => void res.setHeader(name, value),
    send: (data) => void (data !== undefined && res.write(typeof data === 'string' ? data : JSON.stringify(data))),
    end: () => void res.end(),
  };
  await adapter.process({ method: req.method, headers: req.headers, body: activity }, response, (context) => bot.run(context));
});
await new Promise((resolve) => server.listen(settings.port, settings.host, resolve));
console.log(`echo bot listening on http://${settings.host}:${server.address().port}/api/messages`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    stop.abort();
    server.close(() => process.exit(0));
  });
}
