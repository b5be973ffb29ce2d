// The demo chat widget. It talks only to the demo bot (its own server, on another port): messages and
// typing go up with POST, everything comes down on one Server-Sent Events stream, which the browser
// resumes by itself after a drop (Last-Event-ID). Text is always shown as text, never as HTML.

const CONVERSATION_KEY = 'handover.demo.conversation';
const TYPING_REFRESH_MS = 4_000;
const TYPING_IDLE_MS = 5_000;
const AGENT_TYPING_EXPIRY_MS = 10_000;

const ui = {
  status: document.getElementById('status'),
  messages: document.getElementById('messages'),
  typing: document.getElementById('typing'),
  chips: document.getElementById('chips'),
  error: document.getElementById('error'),
  composer: document.getElementById('composer'),
  text: document.getElementById('text'),
};

const conversationId = sessionStorage.getItem(CONVERSATION_KEY) ?? crypto.randomUUID();
sessionStorage.setItem(CONVERSATION_KEY, conversationId);

const shown = new Set(); // message ids already on screen
let mode = { mode: 'bot' };
let online = false;
let botUrl = null;
let typingSentAt = 0;
let typingIdle = null;
let agentTypingTimer = null;
/** Whether the list shows its end: then it keeps showing it when it grows or shrinks. */
let pinned = true;
let errorKind = null;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function isWebUrl(url) {
  try {
    return ['http:', 'https:'].includes(new URL(url, document.baseURI).protocol);
  } catch {
    return false;
  }
}

/** A file the agent sent: a link that downloads it (http(s) links only; its name shown as text). */
function fileLink(file) {
  const p = el('p', 'file');
  const name = file.name || 'file';
  if (!isWebUrl(file.url)) {
    p.append(el('span', '', `📎 ${name}`));
    return p;
  }
  const a = el('a', '', `📎 ${name}`);
  a.href = file.url;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  a.setAttribute('download', name);
  p.append(a);
  return p;
}

function showMessage(m) {
  if (shown.has(m.id)) return;
  shown.add(m.id);
  const who = { user: 'You', bot: 'Bot', agent: m.name ?? 'Agent', system: '' }[m.from] ?? '';
  const li = el('li', `msg from-${m.from}`);
  if (who) li.append(el('span', 'who', m.from === 'agent' ? `${who} (person)` : who));
  if (m.text || !m.files?.length) li.append(el('p', 'text', m.text));
  for (const file of m.files ?? []) li.append(fileLink(file));
  ui.messages.append(li);
  if (m.from === 'agent') showTyping({ typing: false });
  if (m.from !== 'user') showChips(m.suggestions ?? []);
  // After the chips: they take room from the list, and the newest message must stay in view.
  if (pinned || m.from === 'user') scrollToLatest();
}

function scrollToLatest() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
  pinned = true;
}

function showChips(list) {
  ui.chips.replaceChildren(
    ...list.map((label) => {
      const button = el('button', '', label);
      button.type = 'button';
      button.addEventListener('click', () => send(label));
      return button;
    }),
  );
}

function showTyping({ typing, name }) {
  clearTimeout(agentTypingTimer);
  ui.typing.textContent = typing ? `${name ?? 'The agent'} is typing…` : '';
  if (typing) agentTypingTimer = setTimeout(() => (ui.typing.textContent = ''), AGENT_TYPING_EXPIRY_MS);
}

function showStatus() {
  if (!online) {
    ui.status.textContent = 'Offline — reconnecting…';
    return;
  }
  if (mode.mode === 'waiting') {
    const parts = ['Waiting for a person'];
    if (mode.position) parts.push(`you are number ${mode.position} in line`);
    if (mode.estimatedWaitSeconds !== null && mode.estimatedWaitSeconds !== undefined) {
      parts.push(mode.estimatedWaitSeconds < 60 ? 'estimated wait under a minute' : `estimated wait about ${Math.round(mode.estimatedWaitSeconds / 60)} min`);
    }
    ui.status.textContent = parts.join(' · ');
  } else if (mode.mode === 'agent') {
    ui.status.textContent = `You are chatting with ${mode.agentName ?? 'a person'}`;
  } else if (mode.mode === 'leaving') {
    ui.status.textContent = 'Nobody is online — leave a message';
  } else if (mode.mode === 'left') {
    ui.status.textContent = 'Your message is waiting for our team';
  } else {
    ui.status.textContent = 'You are chatting with the demo bot';
  }
}

/** kind 'connection': a failure the stream's return makes stale (what was not sent is still in the box). */
function showError(text, kind = null) {
  ui.error.textContent = text;
  ui.error.hidden = !text;
  errorKind = text ? kind : null;
}

async function post(path, body) {
  const res = await fetch(`${botUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`the bot answered ${res.status}`);
}

async function send(text) {
  if (!text.trim() || !botUrl) return;
  const id = crypto.randomUUID();
  clearTimeout(typingIdle);
  typingSentAt = 0;
  try {
    await post('/chat/messages', {
      conversationId,
      id,
      text,
      context: { page: location.pathname, language: navigator.language, screen: `${innerWidth}x${innerHeight}` },
    });
    showError('');
    return true;
  } catch (err) {
    showError(`Not sent (${err.message}). Check your connection and send again.`, 'connection');
    return false;
  }
}

ui.composer.addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = ui.text.value;
  if (await send(text)) {
    if (ui.text.value === text) ui.text.value = '';
  }
  ui.text.focus();
});

ui.text.addEventListener('input', () => {
  if ((mode.mode !== 'waiting' && mode.mode !== 'agent') || !botUrl) return; // typing matters only to a person
  const now = Date.now();
  if (ui.text.value.trim() !== '' && now - typingSentAt > TYPING_REFRESH_MS) {
    typingSentAt = now;
    post('/chat/typing', { conversationId, typing: true }).catch(() => {});
  }
  clearTimeout(typingIdle);
  typingIdle = setTimeout(() => {
    typingSentAt = 0;
    post('/chat/typing', { conversationId, typing: false }).catch(() => {});
  }, TYPING_IDLE_MS);
});

ui.messages.addEventListener('scroll', () => {
  pinned = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 8;
});
// The list shrinks when suggestions, an error or the phone's keyboard take room: keep its end in view.
new window.ResizeObserver(() => {
  if (pinned) ui.messages.scrollTop = ui.messages.scrollHeight;
}).observe(ui.messages);

/**
 * The demo's settings. A busy service answers 503 with Retry-After (and one starting may not answer at
 * all): try again when it says, a few times, before telling the user the demo is not available.
 */
async function loadConfig() {
  for (let attempt = 1; attempt <= 8; attempt++) {
    let waitSeconds = 1;
    try {
      const res = await fetch('/demo/config.json', { cache: 'no-store' });
      if (res.ok) return await res.json();
      if (res.status !== 503 && res.status !== 429) return null;
      const after = Number(res.headers.get('retry-after'));
      if (Number.isFinite(after) && after > 0) waitSeconds = Math.min(after, 5);
    } catch {
      // not reachable (yet): try again
    }
    await new Promise((resolve) => setTimeout(resolve, waitSeconds * 1000));
  }
  return null;
}

async function start() {
  const config = await loadConfig();
  if (!config || typeof config.botPort !== 'number') {
    ui.status.textContent = 'The demo is not available.';
    return;
  }
  botUrl = `http://${location.hostname}:${config.botPort}`;
  const source = new EventSource(`${botUrl}/chat/stream?conversation=${encodeURIComponent(conversationId)}`);
  source.addEventListener('open', () => {
    online = true;
    showStatus();
    if (errorKind === 'connection') showError('');
  });
  source.addEventListener('error', () => {
    online = false;
    showStatus();
  });
  source.addEventListener('message', (e) => showMessage(JSON.parse(e.data)));
  source.addEventListener('typing', (e) => showTyping(JSON.parse(e.data)));
  source.addEventListener('status', (e) => {
    mode = JSON.parse(e.data);
    if (mode.mode !== 'agent') showTyping({ typing: false });
    showStatus();
  });
  ui.text.focus();
}

start();
