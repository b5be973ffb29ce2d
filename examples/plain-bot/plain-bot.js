#!/usr/bin/env node
// The smallest bot that hands over to a person: a chat in the terminal, one user, with the client
// library and nothing else. It echoes; when the user asks for a human it asks for a handover with the
// conversation so far, relays the user's lines to the agent, prints the agent's answers, and answers
// again when the agent ends.
//
// The agent's side comes in one of two ways (HANDOVER_MODE):
//   stream  (default) the tenant's event stream, GET /v1/events: nothing to expose, resumes by itself;
//   webhook signed POSTs to http://HOST:PORT/webhook (set it as the tenant's webhookUrl), verified
//           with HANDOVER_WEBHOOK_SECRET.
//
//   HANDOVER_API_KEY=handover_sk_… node examples/plain-bot/plain-bot.js
//   HANDOVER_MODE=webhook PORT=3000 HANDOVER_API_KEY=… HANDOVER_WEBHOOK_SECRET=whsec_… node examples/plain-bot/plain-bot.js
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
// The client library: its build (packages/client/dist), or its source with --conditions=development under tsx.
import { HandoverClient, HandoverError, verifyWebhook, WebhookVerificationError } from '#handover-client';

const env = process.env;
const settings = {
  handoverUrl: env.HANDOVER_URL || 'http://127.0.0.1:8080',
  apiKey: env.HANDOVER_API_KEY || '',
  queue: env.HANDOVER_QUEUE || 'support',
  mode: env.HANDOVER_MODE || 'stream',
  webhookSecret: env.HANDOVER_WEBHOOK_SECRET || '',
  host: env.HOST || '127.0.0.1',
  port: Number(env.PORT || 3000),
};
if (!settings.apiKey) fail('HANDOVER_API_KEY is required: create a tenant (npx handover tenant create --name Shop) and use its API key.');
if (settings.mode !== 'stream' && settings.mode !== 'webhook') fail('HANDOVER_MODE is stream or webhook.');
if (settings.mode === 'webhook' && !settings.webhookSecret) fail('HANDOVER_WEBHOOK_SECRET is required in webhook mode (the tenant’s webhook secret).');

const handover = new HandoverClient({ baseUrl: settings.handoverUrl, apiKey: settings.apiKey });
const conversationId = env.CONVERSATION_ID || `terminal-${randomUUID()}`;
const user = { id: env.USER_ID || 'terminal-user', name: env.USER_NAME || 'Terminal user' };
const transcript = [];
/** The live handover's id, while a person has the conversation. */
let handoverId = null;

const print = (who, text) => console.log(`${who}: ${text}`);
function botSays(text) {
  transcript.push({ role: 'bot', text, at: new Date().toISOString() });
  print('bot', text);
}

async function onUserLine(text) {
  if (!text.trim()) return;
  if (handoverId) {
    await handover.sendMessage(handoverId, { text }); // stored once, even when the client retries
    return;
  }
  transcript.push({ role: 'user', text, at: new Date().toISOString() });
  if (/\b(human|person|agent)\b/i.test(text)) return askForPerson();
  botSays(`You said: ${text}. (Type "human" to talk to a person.)`);
}

async function askForPerson() {
  try {
    const { handover: h } = await handover.createHandover({ conversationId, queue: settings.queue, user, transcript: transcript.slice(-50) });
    handoverId = h.id;
    botSays(h.position ? `Connecting you with a person: you are number ${h.position} in line.` : 'Connecting you with a person…');
  } catch (err) {
    // 409: closed, nobody online, a full line: the code says which.
    if (err instanceof HandoverError && err.status === 409) return botSays(`Nobody can take this right now (${err.code}). I am still here.`);
    throw err;
  }
}

/** One event from the agent's side, from the stream or a webhook. */
function onEvent(event) {
  if (event.conversationId !== conversationId) return; // another conversation of the tenant
  switch (event.type) {
    case 'queue.updated':
      if (event.data.position) print('bot', `You are number ${event.data.position} in line.`);
      break;
    case 'handover.accepted':
      print('bot', `${event.data.agent.name ?? 'A person'} joined the chat.`);
      break;
    case 'message.created':
      print(event.data.agent.name ?? 'agent', event.data.message.text);
      break;
    case 'agent.typing':
      if (event.data.typing) print('bot', '(typing…)');
      break;
    case 'handover.ended':
      handoverId = null;
      botSays(
        event.data.reason === 'agent_ended'
          ? 'The person has left the chat; I am back. Anything else?'
          : `The handover ended (${event.data.reason}); I am back.`,
      );
      break;
  }
}

const stop = new AbortController();
let closeServer = async () => {};
if (settings.mode === 'stream') {
  await new Promise((resolve, reject) => {
    (async () => {
      for await (const event of handover.events({ signal: stop.signal, onOpen: resolve })) onEvent(event);
    })().catch((err) => (stop.signal.aborted ? undefined : reject(err)));
  });
} else {
  const seen = new Set();
  const server = createServer(async (req, res) => {
    if (req.method !== 'POST' || req.url !== '/webhook') return res.writeHead(404).end();
    let body = '';
    for await (const chunk of req) body += chunk;
    try {
      const event = await verifyWebhook(settings.webhookSecret, req.headers, body);
      if (!seen.has(event.id)) {
        seen.add(event.id); // the service sends an event again until it gets a 2xx (for about 55 minutes)
        onEvent(event);
      }
      res.writeHead(200).end();
    } catch (err) {
      res.writeHead(err instanceof WebhookVerificationError ? 401 : 500).end();
    }
  });
  await new Promise((resolve) => server.listen(settings.port, settings.host, resolve));
  closeServer = () => new Promise((resolve) => server.close(resolve));
}

botSays(`Hi! I echo what you say; type "human" to talk to a person. (${settings.mode} mode)`);
// One line at a time, in order: a slow relay never reorders the user's messages.
let chain = Promise.resolve();
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  chain = chain.then(() => onUserLine(line)).catch((err) => print('bot', `Sorry, something went wrong (${err.message}). Please say that again.`));
});
lines.on('close', async () => {
  await chain;
  stop.abort();
  await closeServer();
});

function fail(message) {
  console.error(message);
  process.exit(2);
}
