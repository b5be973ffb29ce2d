// @ts-check
// History: closed chats, the agent's own or the team's, searched by user, text and date, and opened
// read-only in the chat area; beside a live chat, the same user's earlier chats.
import { formatTime, h } from './dom.js';
import { ratingElement, ratingLine } from './rating.js';
import { renderAttachments } from './attachments.js';

const PAGE = 20;

function formatDateTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

const reasonText = (reason) => (reason ? reason.replace(/_/g, ' ') : 'ended');
const userName = (item) => item.user?.name || item.user?.id || 'User';

/**
 * @param panel the sidebar section for the search
 * @param chatArea where a closed chat is shown
 * @param {{ api: import('./api.js').Api, onOpen: () => void, onClose: () => void, showError: (text: string) => void }} ctx
 *   `onOpen()` runs before a closed chat is shown: the live chats step aside.
 */
export function createHistory(panel, chatArea, { api, onOpen, onClose, showError }) {
  const scope = h('select', { id: 'history-scope' }, h('option', { value: 'mine' }, 'My chats'), h('option', { value: 'team' }, 'My team'));
  const user = h('input', { id: 'history-user', maxLength: 256, placeholder: 'name, email or id' });
  const text = h('input', { id: 'history-text', maxLength: 200, placeholder: 'words said' });
  const from = h('input', { id: 'history-from', type: 'date' });
  const to = h('input', { id: 'history-to', type: 'date' });
  const results = h('ul', { className: 'history-list', attrs: { 'aria-label': 'Closed chats found' } });
  const more = h('button', { type: 'button', className: 'small', hidden: true, on: { click: () => void search('more') } }, 'More');
  const form = h(
    'form',
    { className: 'history-form', on: { submit: (e) => (e.preventDefault(), void search('fresh')) } },
    h('label', { attrs: { for: 'history-scope' } }, 'Whose'),
    scope,
    h('label', { attrs: { for: 'history-user' } }, 'User'),
    user,
    h('label', { attrs: { for: 'history-text' } }, 'Text'),
    text,
    h('label', { attrs: { for: 'history-from' } }, 'Ended from'),
    from,
    h('label', { attrs: { for: 'history-to' } }, 'Ended to'),
    to,
    h('button', { type: 'submit' }, 'Search history'),
  );
  const details = h('details', { on: { toggle: () => details.open && !searched && void search('fresh') } }, h('summary', {}, 'History'), form, results, more);
  panel.replaceChildren(details);
  let next = null;
  let searched = false;
  let reads = 0;
  let view = null;

  /** The filters of the last search as sent (a refresh and More reuse them, not what is typed since). */
  let query = '';

  /**
   * `fresh`: a new search from the form. `more`: the next page of the last one. `refresh`: the first
   * page of the last one again, its chats not on screen yet put at the top (pages read with More stay).
   */
  async function search(mode) {
    searched = true;
    // A refresh gives way to any search started after it; it does not cut short a page being read.
    const read = mode === 'refresh' ? reads : ++reads;
    if (mode === 'fresh') {
      const params = [`scope=${scope.value}`, `limit=${PAGE}`];
      for (const [name, input] of [
        ['user', user],
        ['q', text],
        ['from', from],
        ['to', to],
      ])
        if (input.value.trim()) params.push(`${name}=${encodeURIComponent(input.value.trim())}`);
      query = params.join('&');
    }
    const path = mode === 'more' && next ? `${query}&before=${encodeURIComponent(next)}` : query;
    try {
      const page = await api('GET', `/v1/desk/history?${path}`);
      if (read !== reads) return;
      if (mode === 'refresh') {
        const shown = new Set([...results.querySelectorAll('li[data-handover-id]')].map((li) => li.getAttribute('data-handover-id')));
        const added = page.handovers.filter((item) => !shown.has(item.id)).map((item) => itemElement(item));
        if (added.length === 0) return;
        if (shown.size === 0) results.replaceChildren();
        results.prepend(...added);
        return;
      }
      const items = page.handovers.map((item) => itemElement(item));
      if (mode === 'more') results.append(...items);
      else results.replaceChildren(...(items.length ? items : [h('li', { className: 'muted small' }, 'No closed chat matches')]));
      next = page.next;
      more.hidden = !next;
    } catch (err) {
      if (err.status !== 401) showError(err.message);
    }
  }

  function itemElement(item) {
    return h(
      'li',
      { attrs: { 'data-handover-id': item.id } },
      h(
        'button',
        { type: 'button', className: 'history-item', on: { click: () => void open(item.id) } },
        h('span', { className: 'name' }, userName(item)),
        h('span', { className: 'small muted' }, ` · ${formatDateTime(item.endedAt)} · ${item.queue} · ${reasonText(item.endReason)}`),
        item.preview ? h('span', { className: 'preview small' }, item.preview) : null,
        ratingElement(item.rating, 'rating small'),
      ),
    );
  }

  /** Shows a closed chat read-only: the conversation with the bot, the messages and the notes. */
  async function open(id) {
    try {
      const path = `/v1/desk/handovers/${encodeURIComponent(id)}`;
      const [handover, { notes }] = await Promise.all([api('GET', path), api('GET', `${path}/notes`)]);
      const messages = [];
      for (let after = 0; ;) {
        const page = await api('GET', `${path}/messages?after=${after}`);
        messages.push(...page.messages);
        if (page.messages.length < 1000) break;
        after = page.messages[page.messages.length - 1].seq;
      }
      close();
      onOpen();
      view = render(handover, messages, notes);
      chatArea.append(view);
      view.querySelector('button.close-history')?.focus();
    } catch (err) {
      showError(err.message);
    }
  }

  function render(handover, messages, notes) {
    const name = userName(handover);
    const log = h('ol', { className: 'log', attrs: { role: 'log', 'aria-label': `Closed chat with ${name}` } });
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
    const entries = [
      ...messages.map((m) => ({
        at: Date.parse(m.createdAt),
        el: h(
          'li',
          { className: `msg live from-${m.direction === 'to_agent' ? 'user' : 'agent'}` },
          h('span', { className: 'meta' }, m.direction === 'to_agent' ? name : (m.sender?.name ?? 'Agent'), ` · ${formatTime(m.createdAt)}`),
          h('p', { className: 'text' }, m.text),
          renderAttachments(m.attachments),
        ),
      })),
      ...notes.map((n) => ({
        at: Date.parse(n.createdAt),
        el: h(
          'li',
          { className: `msg note${n.kind === 'transfer' ? ' transfer-note' : ''}` },
          h(
            'span',
            { className: 'meta' },
            `${n.kind === 'transfer' ? `Note with the transfer to ${n.queue}` : 'Internal note'} · ${n.agent.name} · ${formatTime(n.createdAt)}`,
          ),
          h('p', { className: 'text' }, n.text),
        ),
      })),
    ].sort((a, b) => a.at - b.at);
    log.append(...entries.map((e) => e.el));
    log.append(
      h('li', { className: 'divider' }, `Chat ended${handover.endedAt ? ` ${formatDateTime(handover.endedAt)}` : ''} (${reasonText(handover.endReason)})`),
    );
    if (handover.rating) log.append(ratingLine(handover.rating));
    return h(
      'section',
      { className: 'chat history-view', attrs: { 'aria-label': `Closed chat with ${name}`, 'data-handover-id': handover.id } },
      h(
        'header',
        { className: 'chat-header' },
        h('h2', {}, name, ' ', h('span', { className: 'badge ended' }, `closed · ${reasonText(handover.endReason)}`)),
        h(
          'div',
          { className: 'chat-actions' },
          h('span', { className: 'small muted' }, `${handover.queue} · ${handover.agent?.name ?? 'no agent'}`),
          h('button', { type: 'button', className: 'close-history', on: { click: () => (close(), onClose()) } }, 'Close'),
        ),
      ),
      h(
        'div',
        { className: 'chat-body' },
        h('div', { className: 'conversation' }, log),
        h('aside', { className: 'details' }, h('h3', {}, 'User'), h('p', {}, `${name} (${handover.user?.id ?? ''})`)),
      ),
    );
  }

  function close() {
    view?.remove();
    view = null;
  }

  /** Beside a live chat: the same user's earlier chats, each opened with a click. */
  async function attachEarlier(chat) {
    const list = h('ul', { className: 'earlier-list' });
    chat.details.append(h('h3', {}, 'Earlier chats'), list);
    try {
      const { handovers } = await api('GET', `/v1/desk/handovers/${encodeURIComponent(chat.id)}/earlier`);
      list.replaceChildren(
        ...(handovers.length
          ? handovers.map((item) =>
              h(
                'li',
                { attrs: { 'data-handover-id': item.id } },
                h(
                  'button',
                  { type: 'button', className: 'small history-item', on: { click: () => void open(item.id) } },
                  `${formatDateTime(item.endedAt)} · ${item.queue} · ${reasonText(item.endReason)}`,
                ),
                item.preview ? h('p', { className: 'small muted preview' }, item.preview) : null,
                ratingElement(item.rating, 'rating small'),
              ),
            )
          : [h('li', { className: 'muted small' }, 'None: a first contact')]),
      );
    } catch {
      list.replaceChildren(h('li', { className: 'muted small' }, 'Could not be read'));
    }
  }

  return {
    get viewing() {
      return view !== null;
    },
    close,
    attachEarlier,
    /**
     * One of this agent's chats ended: a list on screen gets the chats it did not show yet (it may have
     * been read before the end was stored); a list not on screen is read afresh when next opened.
     */
    stale() {
      if (details.open && searched) void search('refresh');
      else searched = false;
    },
    clear() {
      close();
      results.replaceChildren();
      details.open = false;
      searched = false;
      more.hidden = true;
    },
  };
}
