// @ts-check
// The supervisor's view, inside the Team panel: per queue the users waiting, the longest wait, the chats
// held and the agents online, and how many chats each agent holds; every live chat, each opened
// read-only in the chat area (following it live), and taken over with "Take chat".
import { formatDuration, formatTime, h } from './dom.js';
import { renderAttachments } from './attachments.js';

const enc = encodeURIComponent;
const userName = (hv) => hv.user?.name || hv.user?.id || 'User';

/**
 * @param panel the Team section (the view adds itself below the team list)
 * @param chatArea where a chat opened read-only is shown
 * @param {{ api: import('./api.js').Api, onOpen: () => void, onClose: () => void, onTaken: (id: string) => void, showError: (text: string) => void }} ctx
 *   `onOpen()` runs before a chat is shown: the others step aside.
 */
export function createSupervisorView(panel, chatArea, { api, onOpen, onClose, onTaken, showError }) {
  const figures = h('table', { className: 'queue-figures', attrs: { 'aria-label': 'Queue figures' } });
  const summary = h('p', { className: 'small muted overview-summary' });
  const live = h('ul', { className: 'live-chats', attrs: { 'aria-label': 'Live chats' } });
  panel.append(h('div', { className: 'supervisor-view' }, h('h3', {}, 'Queues'), figures, summary, h('h3', {}, 'Live chats'), live));
  let reads = 0;
  let view = null; // the chat open read-only: { id, el, log, badge, take, lastSeq, notes: Set, syncing }

  // Waits count up between reads, from the figure the server gave and when it was read.
  setInterval(() => {
    for (const el of panel.querySelectorAll('[data-wait]'))
      el.textContent = formatDuration(Number(el.dataset.wait) + (Date.now() - Number(el.dataset.readAt)) / 1000);
  }, 1000);

  async function refresh() {
    const read = ++reads;
    try {
      const overview = await api('GET', '/v1/desk/supervisor/overview');
      if (read === reads) render(overview);
    } catch (err) {
      if (err.status !== 401 && err.code !== 'forbidden_role') showError(err.message);
    }
  }

  function waitCell(seconds, readAt) {
    if (seconds === null) return h('td', { className: 'muted' }, '–');
    return h('td', { attrs: { 'data-wait': seconds, 'data-read-at': readAt } }, formatDuration(seconds));
  }

  function render(overview) {
    const readAt = Date.now();
    figures.replaceChildren(
      h(
        'thead',
        {},
        h('tr', {}, ...['Queue', 'Waiting', 'Longest wait', 'Agents online', 'Chats held'].map((title) => h('th', { attrs: { scope: 'col' } }, title))),
      ),
      h(
        'tbody',
        {},
        ...overview.queues.map((q) =>
          h(
            'tr',
            { attrs: { 'data-queue': q.name } },
            h('th', { attrs: { scope: 'row' } }, q.name),
            h('td', { className: 'waiting' }, String(q.waiting)),
            waitCell(q.longestWaitSeconds, readAt),
            h('td', { className: 'online' }, String(q.agentsOnline)),
            h('td', { className: 'held' }, String(q.activeChats)),
          ),
        ),
      ),
    );
    const load = overview.agents.filter((a) => a.online || a.activeChats > 0).map((a) => `${a.name} ${a.activeChats}/${a.maxChats}`);
    summary.textContent = `${overview.agentsOnline} agent${overview.agentsOnline === 1 ? '' : 's'} online${load.length ? ` · chats per agent: ${load.join(', ')}` : ''}`;
    live.replaceChildren(
      ...(overview.chats.length
        ? overview.chats.map((chat) => {
            const name = userName(chat);
            const state = chat.state === 'queued' ? 'waiting' : `with ${chat.agent?.name ?? 'an agent'}`;
            return h(
              'li',
              { attrs: { 'data-handover-id': chat.id, 'data-state': chat.state } },
              h('span', { className: 'small' }, `${name} (${chat.queue}) · ${state}`),
              h(
                'button',
                { type: 'button', className: 'small', attrs: { 'aria-label': `Read the chat with ${name}` }, on: { click: () => void open(chat.id) } },
                'Read',
              ),
            );
          })
        : [h('li', { className: 'muted small' }, 'No live chat')]),
    );
  }

  /** Shows a live chat read-only, and follows it until it is closed or taken. */
  async function open(id) {
    try {
      const handover = await api('GET', `/v1/desk/handovers/${enc(id)}`);
      close();
      onOpen();
      const name = userName(handover);
      const log = h('ol', { className: 'log', attrs: { role: 'log', 'aria-label': `Conversation with ${name} (read-only)`, 'aria-live': 'polite' } });
      log.append(h('li', { className: 'divider' }, 'Conversation with the bot before the handover'));
      for (const entry of handover.transcript) {
        log.append(
          h(
            'li',
            { className: `msg transcript from-${entry.role === 'user' ? 'user' : 'bot'}` },
            h('span', { className: 'meta' }, entry.role === 'user' ? name : 'Bot'),
            h('p', { className: 'text' }, entry.text),
          ),
        );
      }
      log.append(h('li', { className: 'divider' }, 'Handed over to a person'));
      const badge = h('span', { className: 'badge live' });
      const take = h('button', { type: 'button', className: 'primary', on: { click: () => void takeOver() } }, 'Take chat');
      const el = h(
        'section',
        { className: 'chat watch-view', attrs: { 'aria-label': `Chat with ${name}, read-only`, 'data-handover-id': id } },
        h(
          'header',
          { className: 'chat-header' },
          h('h2', {}, name, ' ', badge),
          h(
            'div',
            { className: 'chat-actions' },
            take,
            h('button', { type: 'button', className: 'close-watch', on: { click: () => (close(), onClose()) } }, 'Close'),
          ),
        ),
        h(
          'div',
          { className: 'chat-body' },
          h('div', { className: 'conversation' }, log, h('p', { className: 'chat-notice muted' }, 'Read-only: take the chat to write in it.')),
        ),
      );
      view = { id, name, el, log, badge, take, lastSeq: 0, notes: new Set(), syncing: null };
      showState(handover);
      chatArea.append(el);
      await Promise.all([sync(), syncNotes()]);
    } catch (err) {
      showError(err.message);
    }
  }

  function showState(handover) {
    if (!view) return;
    const ended = handover.state === 'ended';
    view.badge.textContent = ended ? 'ended' : `read-only · ${handover.state === 'queued' ? 'waiting' : `with ${handover.agent?.name ?? 'an agent'}`}`;
    view.badge.className = `badge ${ended ? 'ended' : 'live'}`;
    view.take.disabled = ended;
  }

  /** Adds the messages after the last one shown (calls made while one runs fold into one more run). */
  async function sync() {
    const current = view;
    if (!current) return;
    if (current.syncing) return void (current.again = true);
    current.syncing = true;
    try {
      do {
        current.again = false;
        for (let more = true; more && view === current;) {
          const { messages } = await api('GET', `/v1/desk/handovers/${enc(current.id)}/messages?after=${current.lastSeq}`);
          for (const m of messages) {
            if (m.seq <= current.lastSeq) continue;
            current.lastSeq = m.seq;
            const fromUser = m.direction === 'to_agent';
            place(
              current.log,
              h(
                'li',
                { className: `msg live from-${fromUser ? 'user' : 'agent'}`, attrs: { 'data-seq': m.seq, 'data-at': Date.parse(m.createdAt) } },
                h('span', { className: 'meta' }, fromUser ? current.name : (m.sender?.name ?? 'Agent'), ` · ${formatTime(m.createdAt)}`),
                h('p', { className: 'text' }, m.text),
                renderAttachments(m.attachments),
              ),
            );
          }
          more = messages.length >= 1000;
        }
      } while (current.again && view === current);
      current.log.scrollTop = current.log.scrollHeight;
    } finally {
      current.syncing = null;
    }
  }

  async function syncNotes() {
    const current = view;
    if (!current) return;
    const { notes } = await api('GET', `/v1/desk/handovers/${enc(current.id)}/notes`);
    for (const n of notes) {
      if (current.notes.has(n.id)) continue;
      current.notes.add(n.id);
      place(
        current.log,
        h(
          'li',
          { className: `msg note${n.kind === 'transfer' ? ' transfer-note' : ''}`, attrs: { 'data-at': Date.parse(n.createdAt) } },
          h(
            'span',
            { className: 'meta' },
            `${n.kind === 'transfer' ? `Note with the transfer to ${n.queue}` : 'Internal note'} · ${n.agent.name} · ${formatTime(n.createdAt)}`,
          ),
          h('p', { className: 'text' }, n.text),
        ),
      );
    }
  }

  async function takeOver() {
    if (!view) return;
    const id = view.id;
    view.take.disabled = true;
    try {
      await api('POST', `/v1/desk/handovers/${enc(id)}/take`);
      close();
      await onTaken(id);
    } catch (err) {
      if (view) view.take.disabled = false;
      showError(err.message);
    }
  }

  /** Messages and notes in time order (each read arrives in its own order). */
  function place(log, li) {
    const at = Number(li.dataset.at);
    const next = [...log.querySelectorAll('li[data-at]')].find((el) => Number(el.dataset.at) > at);
    log.insertBefore(li, next ?? null);
  }

  function close() {
    view?.el.remove();
    view = null;
  }

  return {
    get viewing() {
      return view !== null;
    },
    refresh,
    close,
    /** Desk signals: the chat open read-only follows its messages, notes and state. */
    onSignal(type, data) {
      if (!view || data?.handoverId !== view.id) return;
      if (type === 'message.created') sync().catch(() => {});
      else if (type === 'note.created') syncNotes().catch(() => {});
      else if (type.startsWith('handover.')) api('GET', `/v1/desk/handovers/${enc(view.id)}`).then(showState, () => {});
    },
    clear() {
      close();
      figures.replaceChildren();
      live.replaceChildren();
      summary.textContent = '';
    },
  };
}
