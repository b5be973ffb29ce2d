#!/usr/bin/env node
// The demo bot: answers a few canned questions, hands the user over to a person when asked (after
// checking availability, with the queue position and estimated wait), relays messages and typing both
// ways during the handover, and takes over again when the agent ends.
//
// It talks to handover only through the public bot API with an API key, with the client library
// (packages/client), and follows the tenant's event stream (GET /v1/events, Server-Sent Events).
// Node 20+. Run it on its own (after `npm run build:client`):
//
//   HANDOVER_URL=http://127.0.0.1:8080 HANDOVER_API_KEY=handover_sk_… node examples/demo-bot/demo-bot.js
//
// Settings (environment): HANDOVER_URL, HANDOVER_API_KEY (required), HANDOVER_QUEUE (support),
// HOST (127.0.0.1), PORT (8081), ALLOWED_ORIGINS (origins of the widget page, comma-separated).
import { randomUUID } from 'node:crypto';
import { answer, suggestions } from './answers.js';
// The client library: its build (packages/client/dist), or its source when run with --conditions=development under tsx.
import { HandoverClient } from '#handover-client';
import { startWidgetServer } from './widget-server.js';

const env = process.env;
/** How often the bot looks for someone online to pass left messages to. */
const LEFT_MESSAGE_CHECK_MS = 3_000;
const settings = {
  handoverUrl: env.HANDOVER_URL || 'http://127.0.0.1:8080',
  apiKey: env.HANDOVER_API_KEY || '',
  queue: env.HANDOVER_QUEUE || 'support',
  host: env.HOST || '127.0.0.1',
  port: Number(env.PORT || 8081),
  allowedOrigins: (env.ALLOWED_ORIGINS || 'http://localhost:8080,http://127.0.0.1:8080')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean),
};
if (!settings.apiKey) {
  console.error('HANDOVER_API_KEY is required: create a tenant (npx handover tenant create --name Shop) and use its API key.');
  process.exit(2);
}

const log = (line) => console.log(`[demo-bot] ${line}`);
const handover = new HandoverClient({ baseUrl: settings.handoverUrl, apiKey: settings.apiKey });

/**
 * One chat with one widget user. mode: 'bot' (the bot answers), 'requesting' (asking for a human),
 * 'waiting' (in line), 'agent' (a person answers; the bot relays), 'leaving' (nobody is online: the
 * next message is one for the team), 'left' (that message waits for someone to be online).
 */
const conversations = new Map();

/** The rating chips: one to five stars (the score is how many). */
const RATING_CHIPS = ['★', '★★', '★★★', '★★★★', '★★★★★'];

function conversation(id) {
  let conv = conversations.get(id);
  if (!conv) {
    const number = 1000 + (parseInt(id.replace(/[^0-9a-f]/gi, '').slice(0, 6) || '0', 16) % 9000);
    conv = {
      id,
      user: { id: `demo-user-${id.slice(0, 8)}`, name: `Guest ${number}` },
      metadata: {},
      mode: 'bot',
      handoverId: null,
      handoverCount: 0,
      agentName: null,
      transcript: [],
      seen: new Set(),
      chain: Promise.resolve(),
    };
    conversations.set(id, conv);
    if (conversations.size > 1000) conversations.delete(conversations.keys().next().value);
  }
  return conv;
}

// Follow the event stream first: handover events are matched to conversations by conversationId.
const events = followEvents();

const widget = await startWidgetServer({
  host: settings.host,
  port: settings.port,
  allowedOrigins: settings.allowedOrigins,
  log,
  onOpen(conversationId, { resumed }) {
    const conv = conversation(conversationId);
    // A widget that resumes its stream after a restart of this bot shows the greeting already.
    if (!resumed) say(conv, 'Hi! I am the demo bot of Northwind Bikes. Ask me about opening hours, shipping or returns — or ask for a human.', suggestions);
  },
  onMessage({ conversationId, id, text, context }) {
    const conv = conversation(conversationId);
    if (conv.seen.has(id)) return; // the widget retried a message we already have
    conv.seen.add(id);
    if (Object.keys(conv.metadata).length === 0) conv.metadata = describeContext(context);
    if (typeof context.language === 'string' && context.language.length <= 35) conv.user.locale = context.language;
    widget.push(conv.id, 'message', { id, from: 'user', text, at: new Date().toISOString() });
    // One message at a time per conversation, so they reach the agent in the order the user sent them.
    conv.chain = conv.chain
      .then(() => handleUserMessage(conv, { id, text }))
      .catch((err) => {
        log(`conversation ${conv.id}: ${err.message}`);
        system(conv, 'Sorry, something went wrong on our side. Please send that again.');
      });
  },
  onTyping({ conversationId, typing }) {
    const conv = conversations.get(conversationId);
    if (!conv || !conv.handoverId || (conv.mode !== 'waiting' && conv.mode !== 'agent')) return;
    handover.sendTyping(conv.handoverId, typing).catch(() => {}); // ephemeral: a lost signal does no harm
  },
}).catch((err) => {
  console.error(`[demo-bot] cannot listen on ${settings.host}:${settings.port}: ${err.message}`);
  process.exit(1);
});

async function handleUserMessage(conv, message) {
  // Stars tapped after an agent handed the user back: the rating of that chat.
  if (conv.mode === 'bot' && conv.ratingFor && RATING_CHIPS.includes(message.text.trim())) return rate(conv, message.text.trim().length);
  if ((conv.mode === 'waiting' || conv.mode === 'agent') && conv.handoverId) {
    try {
      // Our message id goes along: a retry is stored once.
      await handover.sendMessage(conv.handoverId, { id: message.id, text: message.text });
      return;
    } catch (err) {
      if (err.code !== 'handover_ended') {
        system(conv, `Your message could not be passed on (${err.message}). Please send it again.`);
        return;
      }
      backToBot(conv); // the end event is on its way; answer as the bot meanwhile
    }
  }
  conv.transcript.push({ role: 'user', text: message.text, at: new Date().toISOString() });
  if (conv.mode === 'leaving' || conv.mode === 'left') return keepMessage(conv);
  const reply = answer(message.text);
  if (reply.human) await askForHuman(conv);
  else say(conv, reply.text, suggestions);
}

async function askForHuman(conv, { passingOn = false } = {}) {
  // The stream must be open before the handover exists, or its first events could pass unseen.
  const following = await Promise.race([events.connected.then(() => true), sleep(10_000).then(() => false)]);
  if (!following) return passingOn ? keepWaiting(conv) : say(conv, 'I cannot reach our team just now. Please try again in a moment.', suggestions);
  const availability = await handover.getAvailability(settings.queue);
  // A left message waits on, quietly, until a handover is made for it.
  if (!availability.available && passingOn) return keepWaiting(conv);
  if (!availability.available && availability.reason === 'no_agents') return offerMessage(conv);
  if (!availability.available)
    return say(
      conv,
      unavailableText(availability.reason, availability.nextOpenAt),
      suggestions.filter((s) => s !== 'Talk to a human'),
    );
  const ahead = availability.queueLength;
  say(
    conv,
    `${availability.agentsOnline ?? 'Some'} of our team ${availability.agentsOnline === 1 ? 'is' : 'are'} online${ahead ? ` and ${ahead} ${ahead === 1 ? 'person is' : 'people are'} waiting` : ''}. Connecting you…`,
  );
  conv.mode = 'requesting';
  let created;
  try {
    // The key makes a retried request (the client retries when an answer is lost) return the same handover.
    ({ handover: created } = await handover.createHandover(
      { conversationId: conv.id, queue: settings.queue, user: conv.user, transcript: conv.transcript.slice(-100), metadata: conv.metadata },
      { idempotencyKey: `${conv.id}:${conv.handoverCount}` },
    ));
  } catch (err) {
    conv.mode = 'bot';
    if (passingOn) return keepWaiting(conv);
    if (err.details?.reason === 'no_agents') return offerMessage(conv);
    return say(
      conv,
      err.details?.reason
        ? unavailableText(err.details.reason, err.details.nextOpenAt)
        : `I could not reach the team just now (${err.message}). Please try again in a moment.`,
      suggestions,
    );
  }
  conv.handoverCount++;
  // Events may have overtaken this answer (an agent can accept within milliseconds): they win.
  if (conv.mode !== 'requesting') return;
  conv.handoverId = created.id;
  conv.mode = created.state === 'active' ? 'agent' : 'waiting';
  if (conv.mode === 'waiting') {
    showPosition(conv, created.position, created.estimatedWaitSeconds);
    say(
      conv,
      `You are number ${created.position} in line. Estimated wait: ${waitText(created.estimatedWaitSeconds)}. A person will join this chat; you can keep typing and they will see it.`,
    );
  }
}

/** What handover tells the bot about its handovers, in order, once each. */
async function onHandoverEvent(event) {
  const conv = conversations.get(event.conversationId);
  if (!conv) return; // a conversation from before this bot started
  if (!conv.handoverId && conv.mode === 'requesting') conv.handoverId = event.handoverId;
  if (event.handoverId !== conv.handoverId) return; // an earlier handover of this conversation
  const data = event.data ?? {};
  switch (event.type) {
    case 'queue.updated':
      if (conv.mode === 'waiting') showPosition(conv, data.position, data.estimatedWaitSeconds);
      break;
    case 'handover.accepted':
      conv.mode = 'agent';
      conv.agentName = data.agent?.name ?? 'An agent';
      widget.push(conv.id, 'status', { mode: 'agent', agentName: conv.agentName });
      system(conv, `${conv.agentName} joined the chat.`);
      break;
    case 'message.created':
      widget.push(conv.id, 'typing', { typing: false });
      // The agent's files: each with the short-lived signed link the event carries.
      widget.push(conv.id, 'message', {
        id: data.message.id,
        from: 'agent',
        name: data.agent?.name ?? conv.agentName,
        text: data.message.text,
        files: (data.message.attachments ?? []).map(({ url, name, contentType }) => ({ url, name, contentType })),
        at: data.message.createdAt,
      });
      break;
    case 'agent.typing':
      widget.push(conv.id, 'typing', { typing: Boolean(data.typing), name: conv.agentName });
      break;
    case 'handover.transferred':
      conv.mode = 'waiting';
      conv.agentName = null;
      widget.push(conv.id, 'status', { mode: 'waiting', position: null, estimatedWaitSeconds: null });
      system(conv, `You are being transferred to our ${data.queue ?? 'other'} team. Please stay here.`);
      break;
    case 'handover.ended': {
      const agentName = conv.agentName;
      const handoverId = conv.handoverId;
      backToBot(conv);
      // The wait ended because nobody is online any more: the user can leave a message instead.
      if (data.reason === 'no_agent_answered' && (await nobodyOnline())) offerMessage(conv, 'Sorry, nobody from our team is online any more.');
      else if (agentName && data.reason !== 'failed') {
        // A person answered: ask how it went (the stars are chips; the rating goes to handover).
        conv.ratingFor = handoverId;
        say(conv, `${endedText(data.reason, agentName)} How did ${agentName} do? Tap the stars to rate the chat.`, RATING_CHIPS);
      } else say(conv, endedText(data.reason, agentName), suggestions);
      break;
    }
    default:
      break;
  }
}

/**
 * Follows the tenant's events until stop(), handing each to onHandoverEvent once, in order. The client
 * reconnects by itself and resumes after the last event handled; only a position the service no longer
 * knows (its store was reset) or a refused key ends its iterator: then it follows again from now.
 * `connected` resolves once the stream is open (it starts with the next event).
 */
function followEvents() {
  const stopping = new AbortController();
  let position;
  let markConnected;
  const connected = new Promise((resolve) => (markConnected = resolve));
  const store = { load: () => position, save: (id) => void (position = id) };
  (async () => {
    while (!stopping.signal.aborted) {
      try {
        for await (const event of handover.events({ positionStore: store, signal: stopping.signal, onOpen: markConnected })) {
          await onHandoverEvent(event).catch((err) => log(`handling event ${event.id} failed: ${err.message}`));
        }
      } catch (err) {
        if (stopping.signal.aborted) return;
        log(`event stream refused (${err.code ?? err.message}); following again from the latest event`);
        position = undefined;
        await sleep(2000);
      }
    }
  })();
  return { connected, stop: () => stopping.abort() };
}

/**
 * Nobody is online: the user leaves a message here, and it goes to the team with the transcript as a
 * handover as soon as someone is (passOnLeftMessages), so a person answers in this same chat.
 */
function offerMessage(conv, lead = 'Nobody from our team is online right now.') {
  conv.mode = 'leaving';
  widget.push(conv.id, 'status', { mode: 'leaving' });
  say(conv, `${lead} Leave a message here: write it below, and a person will answer in this chat as soon as someone is in.`);
}

async function nobodyOnline() {
  return handover.getAvailability(settings.queue).then(
    (availability) => availability.reason === 'no_agents',
    () => false,
  );
}

/** Someone seemed online but is gone again: the message waits on, without a word to the user. */
function keepWaiting(conv) {
  conv.mode = 'left';
  widget.push(conv.id, 'status', { mode: 'left' });
}

function keepMessage(conv) {
  if (conv.mode === 'left') return say(conv, 'Added to your message for our team.');
  conv.mode = 'left';
  widget.push(conv.id, 'status', { mode: 'left' });
  say(conv, 'Thanks, your message is kept for our team. Someone will answer here as soon as they are online; you can add to it meanwhile.');
}

let passing = false;
/** Every few seconds while messages wait: once someone is online, each goes to the team as a handover. */
async function passOnLeftMessages() {
  const waiting = [...conversations.values()].filter((conv) => conv.mode === 'left');
  if (waiting.length === 0 || passing) return;
  passing = true;
  try {
    if (!(await handover.getAvailability(settings.queue)).available) return;
    for (const conv of waiting) {
      conv.chain = conv.chain
        .then(async () => {
          if (conv.mode !== 'left') return;
          system(conv, 'Someone from our team is in now: passing your message on.');
          await askForHuman(conv, { passingOn: true });
        })
        .catch((err) => log(`conversation ${conv.id}: passing on a left message failed: ${err.message}`));
    }
  } catch (err) {
    log(`checking for agents to pass left messages to failed: ${err.message}`);
  } finally {
    passing = false;
  }
}
const messageCheck = setInterval(passOnLeftMessages, LEFT_MESSAGE_CHECK_MS);

async function rate(conv, score) {
  const handoverId = conv.ratingFor;
  conv.ratingFor = null;
  try {
    // Recorded once per chat; the same rating again (a retry) is answered as the first time.
    await handover.rateHandover(handoverId, { score });
    say(conv, `Thank you for rating the chat ${score} of 5! Anything else I can help with?`, suggestions);
  } catch (err) {
    say(
      conv,
      err.code === 'rating_conflict' ? 'You have rated this chat already — thank you!' : `I could not pass your rating on (${err.message}).`,
      suggestions,
    );
  }
}

function backToBot(conv) {
  conv.mode = 'bot';
  conv.handoverId = null;
  conv.agentName = null;
  widget.push(conv.id, 'typing', { typing: false });
  widget.push(conv.id, 'status', { mode: 'bot' });
}

function say(conv, text, chips) {
  conv.transcript.push({ role: 'bot', text, at: new Date().toISOString() });
  widget.push(conv.id, 'message', { id: randomUUID(), from: 'bot', text, at: new Date().toISOString(), ...(chips ? { suggestions: chips } : {}) });
}

function system(conv, text) {
  widget.push(conv.id, 'message', { id: randomUUID(), from: 'system', text, at: new Date().toISOString() });
}

function showPosition(conv, position, estimatedWaitSeconds) {
  widget.push(conv.id, 'status', { mode: 'waiting', position: position ?? null, estimatedWaitSeconds: estimatedWaitSeconds ?? null });
}

function waitText(seconds) {
  if (seconds === null || seconds === undefined) return 'not known yet';
  return seconds < 60 ? 'under a minute' : `about ${Math.round(seconds / 60)} minutes`;
}

function unavailableText(reason, nextOpenAt) {
  switch (reason) {
    case 'closed':
      return `Our team is not in right now${nextOpenAt ? `; we are back ${new Date(nextOpenAt).toUTCString()}` : ''}. I can keep helping meanwhile.`;
    case 'no_agents':
      return 'Nobody from our team is online right now. I can keep helping, or try again a little later.';
    case 'at_capacity':
      return 'Everyone on our team is busy and the line is full. Please try again in a few minutes.';
    default:
      return 'Our team cannot take chats right now. Please try again later.';
  }
}

function endedText(reason, agentName) {
  const who = agentName ?? 'The agent';
  switch (reason) {
    case 'no_agent_answered':
      return 'Sorry, nobody could answer in time. I am back — ask me anything, or ask for a human again later.';
    case 'failed':
      return 'The connection to our team was lost. I am back — ask me anything.';
    default:
      return `${who} has left the chat. I am back — anything else I can help with?`;
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describeContext(context) {
  const metadata = { channel: 'demo widget' };
  for (const key of ['page', 'language', 'screen']) if (typeof context[key] === 'string') metadata[key] = context[key].slice(0, 300);
  return metadata;
}

log(`listening on ${widget.url} (widget origins: ${settings.allowedOrigins.join(', ')})`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  clearInterval(messageCheck);
  events.stop();
  await widget.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Started by `handover start` (with an IPC channel): leave together with it, even if it was killed.
if (process.send) process.on('disconnect', stop);
