// @ts-check
// The agent console: sign-in, presence, the waiting list, the chats held, live signals.
import { createApi } from './api.js';
import { connectLive } from './live.js';
import { Chat, displayName } from './chat.js';
import { renderWaiting, tickWaiting } from './waiting.js';
import { renderTeam } from './team.js';
import { attachCannedPicker, createCannedPanel } from './canned.js';
import { createHistory } from './history.js';
import { attachFilePicker } from './attachments.js';
import { showRating } from './rating.js';
import { createReplyNotifier } from './notify.js';
import { createSupervisorView } from './supervisor.js';
import { byId, h } from './dom.js';

const SESSION_KEY = 'handover.desk.session'; // per browser tab: the agent and the CSRF token (the session itself is an HttpOnly cookie)
const SOUND_KEY = 'handover.desk.sound';
const TITLE = 'handover desk';
const TITLE_FLASH_MS = 10_000;

const ui = {
  signin: byId('signin'),
  signinForm: byId('signin-form'),
  email: /** @type {HTMLInputElement} */ (byId('email')),
  password: /** @type {HTMLInputElement} */ (byId('password')),
  signinError: byId('signin-error'),
  desk: byId('desk'),
  agentName: byId('agent-name'),
  connection: byId('connection'),
  presence: byId('presence'),
  sound: /** @type {HTMLInputElement} */ (byId('sound')),
  signout: byId('signout'),
  acceptNext: byId('accept-next'),
  waitingList: byId('waiting-list'),
  waitingCount: byId('waiting-count'),
  myChats: byId('my-chats'),
  team: byId('team'),
  teamList: byId('team-list'),
  chatArea: byId('chat-area'),
  emptyChat: byId('empty-chat'),
  announcer: byId('announcer'),
  deskError: byId('desk-error'),
  canned: byId('canned'),
  history: byId('history'),
};

let session = null; // { csrf, agent }
let api = null;
let live = null;
let queues = [];
let waiting = [];
let waitingFetchedAt = 0;
let waitingIds = new Set();
let firstLoad = true;
const fresh = new Set();
const chats = new Map();
let selectedId = null;
let refreshing = null;
let refreshAgain = false;
let flashTimer = null;
let errorTimer = null;
let audio = null;
const closedChats = createHistory(ui.history, ui.chatArea, {
  api: (...args) => api(...args),
  // A closed chat takes the chat area; the live chats step aside until one is picked again.
  onOpen: () => (selectChat(null), supervisorView.close()),
  onClose: () => renderMine(),
  showError: (text) => showError(text),
});
// Supervisors: queue figures and every live chat in the Team panel, a chat read (and taken) from there.
const supervisorView = createSupervisorView(ui.team, ui.chatArea, {
  api: (...args) => api(...args),
  onOpen: () => (selectChat(null), closedChats.close()),
  onClose: () => renderMine(),
  onTaken: async (id) => {
    await refresh();
    if (chats.has(id)) selectChat(id);
  },
  showError: (text) => showError(text),
});
const replies = createReplyNotifier(ui.sound.closest('label'), { onOpen: (id) => chats.has(id) && selectChat(id) });
const cannedPanel = createCannedPanel(ui.canned, {
  api: (...args) => api(...args),
  agent: () => session?.agent,
  notify: (text) => announce(text),
  showError: (text) => showError(text),
});

// ---- session -------------------------------------------------------------------------------------

async function boot() {
  ui.sound.checked = localStorage.getItem(SOUND_KEY) === 'on';
  const saved = readSession();
  try {
    // The cookie may hold a live session (a reload, or another tab of this browser).
    const current = await createApi({})('GET', '/v1/desk/session');
    startSession({ csrf: current.csrfToken, agent: current.agent });
    enterDesk();
  } catch (err) {
    if (err.status === 401 || !saved) return showSignin();
    // Server unreachable: show the desk anyway; the live connection keeps retrying.
    startSession(saved);
    enterDesk();
  }
}

function startSession(value) {
  session = value;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  api = createApi({ csrf: session.csrf, onUnauthorized: () => signedOut('Your session has ended; sign in again.') });
}

function readSession() {
  try {
    const value = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
    return value && typeof value.csrf === 'string' ? value : null;
  } catch {
    return null;
  }
}

function showSignin(message = '') {
  ui.desk.hidden = true;
  ui.signin.hidden = false;
  ui.signinError.textContent = message;
  document.title = TITLE;
  ui.email.focus();
}

ui.signinForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  ui.signinError.textContent = '';
  const button = ui.signinForm.querySelector('button');
  button.disabled = true;
  try {
    const result = await createApi({})('POST', '/v1/desk/login', { email: ui.email.value, password: ui.password.value });
    startSession({ csrf: result.csrfToken, agent: result.agent });
    ui.password.value = '';
    enterDesk();
  } catch (err) {
    ui.signinError.textContent = err.code === 'invalid_credentials' ? 'Email or password is wrong.' : err.message;
  } finally {
    button.disabled = false;
  }
});

ui.signout.addEventListener('click', async () => {
  const current = api;
  leaveDesk();
  await current?.('POST', '/v1/desk/logout').catch(() => {});
  showSignin('You are signed out.');
});

function signedOut(message) {
  if (!session) return;
  leaveDesk();
  showSignin(message);
}

function enterDesk() {
  ui.signin.hidden = true;
  ui.desk.hidden = false;
  ui.agentName.textContent = session.agent?.name ?? '';
  showPresence(session.agent?.presence ?? 'away');
  ui.team.hidden = session.agent?.role !== 'supervisor';
  cannedPanel.load();
  live = connectLive({ url: '/v1/desk/events', onSignal, onState: showConnection, onUnauthorized: () => signedOut('Your session has ended; sign in again.') });
  ui.acceptNext.focus();
}

function leaveDesk() {
  live?.stop();
  live = null;
  session = null;
  api = null;
  sessionStorage.removeItem(SESSION_KEY);
  for (const chat of chats.values()) chat.dispose();
  chats.clear();
  selectedId = null;
  queues = [];
  waiting = [];
  waitingIds = new Set();
  fresh.clear();
  firstLoad = true;
  ui.team.hidden = true;
  ui.teamList.replaceChildren();
  cannedPanel.clear();
  closedChats.clear();
  supervisorView.clear();
  renderAll();
}

// ---- presence and connection ---------------------------------------------------------------------

function showPresence(presence) {
  for (const input of ui.presence.querySelectorAll('input[name="presence"]'))
    /** @type {HTMLInputElement} */ (input).checked = /** @type {HTMLInputElement} */ (input).value === presence;
  ui.presence.dataset.presence = presence;
}

ui.presence.addEventListener('change', async (event) => {
  const presence = /** @type {HTMLInputElement} */ (event.target).value;
  try {
    session.agent = await api('PUT', '/v1/desk/presence', { presence });
    showPresence(session.agent.presence);
  } catch (err) {
    showPresence(session.agent?.presence ?? 'away');
    showError(`Presence not changed: ${err.message}`);
  }
});

function showConnection(state) {
  ui.connection.dataset.state = state;
  ui.connection.textContent = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Offline — reconnecting…' }[state] ?? state;
}

// ---- live signals --------------------------------------------------------------------------------

/**
 * A signal of the desk stream (src/bus/desk-signals.ts), or the stream's own `ready` and `resync`.
 * @param {import('../../src/bus/desk-signals.js').DeskSignalType | 'ready' | 'resync'} type
 * @param {any} data
 */
function onSignal(type, data) {
  supervisorView.onSignal(type, data);
  switch (type) {
    case 'ready':
    case 'resync':
      // (Re)connected, or the service says signals may have been lost (between its instances):
      // read everything again, so nothing is missed.
      refresh();
      for (const chat of chats.values()) {
        chat.sync().catch(() => {});
        chat.notes.sync().catch(() => {});
      }
      break;
    case 'handover.accepted': {
      // A chat of mine taken by someone else (a supervisor): say who has it, rather than "ended".
      const chat = chats.get(data.handoverId);
      if (chat && !chat.ended && data.agentId !== session?.agent?.id) chat.markTakenOver(data.agentName);
      refresh();
      break;
    }
    case 'handover.queued':
    case 'handover.transferred':
      refresh();
      break;
    case 'handover.ended':
      chats.get(data.handoverId)?.markEnded(data.reason);
      // Every end in the tenant is signalled: only this agent's own chats belong in its History.
      if (chats.has(data.handoverId)) closedChats.stale();
      refresh();
      break;
    case 'message.created': {
      const chat = chats.get(data.handoverId);
      if (chat && !(data.seq <= chat.lastSeq)) chat.sync().catch(() => {});
      break;
    }
    case 'handover.rated':
      showRating(api, chats.get(data.handoverId)).catch(() => {});
      break;
    case 'note.created':
      chats
        .get(data.handoverId)
        ?.notes.sync()
        .catch(() => {});
      break;
    case 'user.typing':
      chats.get(data.handoverId)?.setUserTyping(Boolean(data.typing));
      break;
    case 'agent.presence':
      if (session?.agent && data.agentId === session.agent.id) {
        session.agent.presence = data.presence;
        showPresence(data.presence);
      }
      refreshTeam();
      break;
    case 'agent.signed_out':
    case 'agent.online':
      refreshTeam();
      break;
    case 'session.ended':
      // Signed out by a supervisor or an admin, or the session ran out.
      signedOut('Your session was ended; sign in again.');
      break;
    default:
      break;
  }
}

/** Re-reads queues, the waiting list and my chats. Calls made while one runs fold into one more run. */
function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    try {
      do {
        refreshAgain = false;
        const [q, list] = await Promise.all([api('GET', '/v1/desk/queues'), api('GET', '/v1/desk/handovers')]);
        if (!session) return;
        applyLists(q.queues, list);
        refreshTeam();
      } while (refreshAgain);
    } catch (err) {
      if (err.status !== 401) showError(err.message);
      // The server was busy: look again shortly (a network drop is handled by the reconnect instead).
      if (err.status >= 500) setTimeout(() => session && refresh(), 3000);
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** Supervisors: re-reads the team panel. */
let teamReads = 0;
async function refreshTeam() {
  if (session?.agent?.role !== 'supervisor') return;
  const read = ++teamReads;
  try {
    const team = await api('GET', '/v1/desk/team');
    // Only the latest read is shown: an older answer arriving late must not undo a newer one.
    if (read !== teamReads || session?.agent?.role !== 'supervisor') return;
    renderTeam(ui.teamList, {
      agents: team.agents,
      chats: team.chats,
      selfId: session.agent.id,
      onReturn: (chat) =>
        teamAction(
          `/v1/desk/handovers/${encodeURIComponent(chat.id)}/transfer`,
          'POST',
          { queue: chat.queue },
          `${chat.userName || 'The user'} is back in the ${chat.queue} queue.`,
        ),
      onAway: (agent) => teamAction(`/v1/desk/agents/${encodeURIComponent(agent.id)}/presence`, 'PUT', { presence: 'away' }, `${agent.name} is set away.`),
      onSignOut: (agent) => teamAction(`/v1/desk/agents/${encodeURIComponent(agent.id)}/sign-out`, 'POST', undefined, `${agent.name} is signed out.`),
    });
    await supervisorView.refresh();
  } catch (err) {
    // The role was taken away: the panel goes.
    if (err.code === 'forbidden_role') ui.team.hidden = true;
  }
}

async function teamAction(path, method, body, done) {
  try {
    await api(method, path, body);
    announce(done);
  } catch (err) {
    showError(err.message);
  }
  refreshTeam();
}

function applyLists(newQueues, list) {
  queues = newQueues;
  waiting = list.waiting;
  waitingFetchedAt = Date.now();
  const newcomers = waiting.filter((hv) => !waitingIds.has(hv.id));
  waitingIds = new Set(waiting.map((hv) => hv.id));
  for (const id of fresh) if (!waitingIds.has(id)) fresh.delete(id);
  if (!firstLoad) {
    for (const hv of newcomers) {
      fresh.add(hv.id);
      setTimeout(() => {
        fresh.delete(hv.id);
        renderWaitingList();
      }, 15_000);
    }
    if (newcomers.length > 0) signalNewcomers(newcomers);
  }
  firstLoad = false;

  const mine = new Set();
  for (const hv of list.mine) {
    mine.add(hv.id);
    if (!chats.has(hv.id)) {
      const chat = new Chat(hv, chatContext);
      chats.set(hv.id, chat);
      ui.chatArea.append(chat.el);
      // Replies are announced from the end of the first read: what was there before is not news.
      chat
        .sync()
        .catch((err) => chat.setNotice(err.message))
        .finally(() => replies.watch(chat));
      chat.notes.sync().catch(() => {});
    }
  }
  // A chat that is no longer mine without an end signal ended or moved while the desk was offline.
  for (const chat of chats.values()) if (!mine.has(chat.id) && !chat.ended) chat.markEnded(null);
  for (const chat of chats.values()) chat.updateQueues();
  renderAll();
}

// ---- rendering -----------------------------------------------------------------------------------

function renderAll() {
  renderWaitingList();
  renderMine();
  updateTitle();
}

function renderWaitingList() {
  renderWaiting(ui.waitingList, { queues, waiting, fetchedAt: waitingFetchedAt, fresh, onAccept: (hv) => accept(hv) });
  ui.waitingCount.textContent = `(${waiting.length})`;
}

function renderMine() {
  // Each chat keeps its tab element (updated in place), so a click is never lost to a re-render.
  const items = [...chats.values()].map((chat) => {
    chat.tab ??= h(
      'li',
      {},
      h('button', { type: 'button', className: 'chat-tab', attrs: { 'data-handover-id': chat.id }, on: { click: () => selectChat(chat.id) } }),
    );
    const button = chat.tab.firstChild;
    button.className = `chat-tab${chat.ended ? ' ended' : ''}`;
    if (chat.id === selectedId) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
    button.replaceChildren(
      ...[
        h('span', { className: 'name' }, chat.name),
        chat.userTyping ? h('span', { className: 'small muted' }, ' typing…') : null,
        chat.unread > 0 ? h('span', { className: 'badge unread', attrs: { 'aria-label': `${chat.unread} unread` } }, String(chat.unread)) : null,
        chat.ended ? h('span', { className: 'badge ended' }, chat.takenOverBy ? 'taken over' : 'ended') : null,
      ].filter(Boolean),
    );
    return chat.tab;
  });
  const wanted = items.length ? items : [noChats];
  if (wanted.length !== ui.myChats.children.length || wanted.some((el, i) => ui.myChats.children[i] !== el)) ui.myChats.replaceChildren(...wanted);
  ui.emptyChat.hidden = selectedId !== null || closedChats.viewing || supervisorView.viewing;
  updateTitle();
}

const noChats = h('li', { className: 'muted' }, 'No chats yet');

function updateTitle() {
  if (flashTimer) return; // the flash restores the title when it stops
  document.title = countedTitle();
}

/** The title with what it counts: unread replies in the chats not on screen, and users waiting. */
function countedTitle() {
  const count = replies.unread(chats.values()) + waiting.length;
  return count > 0 ? `(${count}) ${TITLE}` : TITLE;
}

const chatContext = {
  api: (...args) => api(...args),
  queues: () => queues,
  onChange: (chat) => {
    replies.changed(chat);
    renderMine();
  },
  onClose: (chat) => closeChat(chat),
  notify: (text) => announce(text),
  // The reply box's tools (`/` for canned responses), and the user's earlier chats beside it.
  attachComposer: (chat) => {
    attachCannedPicker(chat.input, { api: (...args) => api(...args), handoverId: chat.id, onInsert: () => chat.agentTyped() });
    attachFilePicker(chat, { csrf: () => session?.csrf });
    closedChats.attachEarlier(chat);
  },
};

function selectChat(id) {
  if (id !== null) {
    closedChats.close();
    supervisorView.close();
  }
  selectedId = id;
  for (const chat of chats.values()) chat.select(chat.id === id);
  if (chats.has(id)) replies.changed(chats.get(id));
  renderMine();
  chats.get(id)?.focusComposer();
}

function closeChat(chat) {
  chats.delete(chat.id);
  replies.forget(chat);
  chat.dispose();
  if (selectedId === chat.id) {
    selectedId = null;
    const next = chats.values().next().value;
    if (next) selectChat(next.id);
  }
  renderMine();
}

// ---- actions -------------------------------------------------------------------------------------

async function accept(hv) {
  try {
    await api('POST', `/v1/desk/handovers/${encodeURIComponent(hv.id)}/accept`);
    await refresh();
    if (chats.has(hv.id)) selectChat(hv.id);
  } catch (err) {
    showError(err.code === 'agent_away' ? 'Set yourself Available before accepting chats.' : err.message);
    refresh();
  }
}

async function acceptNext() {
  try {
    const { handover } = await api('POST', '/v1/desk/accept-next', {});
    if (!handover) return announce('Nobody is waiting.');
    await refresh();
    if (chats.has(handover.id)) selectChat(handover.id);
  } catch (err) {
    showError(err.code === 'agent_away' ? 'Set yourself Available before accepting chats.' : err.message);
  }
}

ui.acceptNext.addEventListener('click', () => acceptNext());

document.addEventListener('keydown', (event) => {
  if (!session || !event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.key === 'n' || event.key === 'N') {
    event.preventDefault();
    acceptNext();
  } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
    const ids = [...chats.keys()];
    if (ids.length === 0) return;
    event.preventDefault();
    const at = ids.indexOf(selectedId);
    const step = event.key === 'ArrowDown' ? 1 : -1;
    selectChat(ids[(at + step + ids.length) % ids.length]);
  }
});

// ---- signals to the agent ------------------------------------------------------------------------

function signalNewcomers(list) {
  const names = list.map((hv) => `${displayName(hv)} (${hv.queue})`).join(', ');
  announce(`New in the waiting list: ${names}`);
  if (ui.sound.checked) beep();
  const until = Date.now() + TITLE_FLASH_MS;
  clearInterval(flashTimer);
  let on = false;
  flashTimer = setInterval(() => {
    // Keeps flashing while the tab is in the background, so the agent sees it in the tab strip.
    if (Date.now() > until && !document.hidden) {
      clearInterval(flashTimer);
      flashTimer = null;
      updateTitle();
      return;
    }
    on = !on;
    document.title = on ? `● New chat waiting — ${TITLE}` : countedTitle();
  }, 1000);
  document.title = `● New chat waiting — ${TITLE}`;
}

function beep() {
  try {
    audio ??= new AudioContext();
    const oscillator = audio.createOscillator();
    const gain = audio.createGain();
    oscillator.frequency.value = 880;
    gain.gain.setValueAtTime(0.15, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.3);
    oscillator.connect(gain).connect(audio.destination);
    oscillator.start();
    oscillator.stop(audio.currentTime + 0.3);
  } catch {
    // no audio device: the visual signals remain
  }
}

ui.sound.addEventListener('change', () => {
  localStorage.setItem(SOUND_KEY, ui.sound.checked ? 'on' : 'off');
  if (ui.sound.checked) beep(); // also unlocks audio: browsers allow it after a user gesture
});

function announce(text) {
  ui.announcer.textContent = text;
}

function showError(text) {
  ui.deskError.textContent = text;
  ui.deskError.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => (ui.deskError.hidden = true), 8000);
}

setInterval(() => tickWaiting(ui.waitingList), 1000);
boot();
