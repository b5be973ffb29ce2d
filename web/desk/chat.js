// @ts-check
// One chat the agent holds: the bot transcript that came with the handover, the user's details and
// metadata, then the live conversation; reply, typing, transfer and end.
//
// Messages are kept by their sequence number and fetched with `?after=<last seq>`: a signal seen twice,
// a fetch repeated after a reconnect, or two fetches racing can never show a message twice or out of
// order, and a signal missed while offline is covered by the fetch after the reconnect.
import { formatTime, h } from './dom.js';
import { ChatNotes } from './notes.js';
import { renderAttachments } from './attachments.js';

const TYPING_REFRESH_MS = 4_000; // while the agent keeps typing, tell the user again this often
const TYPING_IDLE_MS = 5_000; // the agent stopped typing after this long without a key
const USER_TYPING_EXPIRY_MS = 10_000; // a lost "stopped typing" must not leave the indicator on forever

const endReasons = [
  ['agent_ended', 'Resolved'],
  ['user_ended', 'User left'],
  ['abandoned', 'Abandoned'],
];

export class Chat {
  /**
   * @param handover the desk's view of the handover (GET /v1/desk/handovers)
   * @param {{ api: import('./api.js').Api, queues: () => Array<{ name: string }>, onChange: (chat: any) => void, onClose: (chat: any) => void, notify: (text: string) => void, attachComposer?: (chat: any) => void }} ctx
   */
  constructor(handover, ctx) {
    this.id = handover.id;
    this.handover = handover;
    this.ctx = ctx;
    this.messages = new Map(); // seq → message
    this.lastSeq = 0;
    this.unread = 0;
    this.ended = false;
    this.endReason = null;
    /** @type {string | null} who took the chat from this desk (a supervisor), once one did */
    this.takenOverBy = null;
    this.userTyping = false;
    this.selected = false;
    this.syncing = null;
    this.syncAgain = false;
    this.typingSentAt = 0;
    this.typingIdleTimer = null;
    this.userTypingTimer = null;
    this.pendingClientId = null; // reused when a failed send is retried, so it is stored once
    this.pendingText = null;
    this.build();
  }

  get name() {
    return displayName(this.handover);
  }

  build() {
    const hid = this.id;
    this.log = h('ol', { className: 'log', attrs: { role: 'log', 'aria-label': `Conversation with ${this.name}`, 'aria-live': 'polite' } });
    this.typingLine = h('p', { className: 'typing', attrs: { 'aria-live': 'polite' } });
    this.notice = h('p', { className: 'chat-notice', attrs: { role: 'status' } });
    this.input = h('textarea', { id: `reply-${hid}`, rows: 2, maxLength: 20000, placeholder: 'Write a reply — Enter sends, Shift+Enter for a new line' });
    this.sendButton = h('button', { type: 'submit', className: 'primary' }, 'Send');
    this.notes = new ChatNotes(this);
    this.composer = h(
      'form',
      { className: 'composer', on: { submit: (e) => (e.preventDefault(), this.send()) } },
      h('label', { className: 'visually-hidden', attrs: { for: `reply-${hid}` } }, `Reply to ${this.name}`),
      this.input,
      this.notes.modeToggle,
      this.sendButton,
    );
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send();
      }
    });
    this.input.addEventListener('input', () => this.agentTyped());

    this.transferSelect = h('select', { id: `transfer-${hid}` });
    this.transferButton = h('button', { type: 'button', on: { click: () => this.transfer() } }, 'Transfer');
    this.reasonSelect = h(
      'select',
      { id: `reason-${hid}` },
      endReasons.map(([value, label]) => h('option', { value }, label)),
    );
    this.endButton = h('button', { type: 'button', className: 'danger', on: { click: () => this.end() } }, 'End chat');
    this.closeButton = h('button', { type: 'button', hidden: true, on: { click: () => this.ctx.onClose(this) } }, 'Close');
    this.stateBadge = h('span', { className: 'badge' });

    this.details = h('aside', { className: 'details', attrs: { 'aria-label': 'User details' } });
    this.renderDetails();

    this.el = h(
      'section',
      { className: 'chat', hidden: true, attrs: { 'aria-label': `Chat with ${this.name}`, 'data-handover-id': hid } },
      h(
        'header',
        { className: 'chat-header' },
        h('h2', {}, this.name, ' ', this.stateBadge),
        h(
          'div',
          { className: 'chat-actions' },
          h('label', { attrs: { for: `transfer-${hid}` } }, 'Transfer to'),
          this.transferSelect,
          this.notes.transferLabel,
          this.notes.transferInput,
          this.transferButton,
          h('label', { attrs: { for: `reason-${hid}` } }, 'End reason'),
          this.reasonSelect,
          this.endButton,
          this.closeButton,
        ),
      ),
      h('div', { className: 'chat-body' }, h('div', { className: 'conversation' }, this.log, this.typingLine, this.notice, this.composer), this.details),
    );

    this.log.append(
      h(
        'li',
        { className: 'divider' },
        this.handover.transcript.length ? 'Conversation with the bot before the handover' : 'No bot conversation came with this handover',
      ),
    );
    for (const entry of this.handover.transcript) {
      this.log.append(
        h(
          'li',
          { className: `msg transcript from-${entry.role === 'user' ? 'user' : 'bot'}` },
          h('span', { className: 'meta' }, entry.role === 'user' ? this.name : 'Bot', entry.at ? ` · ${formatTime(entry.at)}` : ''),
          h('p', { className: 'text' }, entry.text),
        ),
      );
    }
    this.log.append(h('li', { className: 'divider' }, 'Handed over to a person'));
    this.updateQueues();
    this.updateState();
    this.ctx.attachComposer?.(this);
  }

  renderDetails() {
    const hv = this.handover;
    const rows = [
      ['Name', hv.user.name],
      ['User id', hv.user.id],
      ['Email', hv.user.email],
      ['Language', hv.user.locale],
      ['Queue', hv.queue],
      ['Conversation', hv.conversationId],
      ['Waited', hv.acceptedAt && hv.createdAt ? `${Math.max(0, Math.round((Date.parse(hv.acceptedAt) - Date.parse(hv.createdAt)) / 1000))} s` : null],
    ];
    const metadata = Object.entries(hv.metadata ?? {});
    this.details.replaceChildren(
      h('h3', {}, 'User'),
      definitionList(rows.filter(([, v]) => v !== undefined && v !== null && v !== '')),
      h('h3', {}, 'Metadata'),
      metadata.length ? definitionList(metadata.map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])) : h('p', { className: 'muted' }, 'None'),
    );
  }

  updateQueues() {
    const current = this.transferSelect.value;
    const others = this.ctx.queues().filter((q) => q.name !== this.handover.queue);
    this.transferSelect.replaceChildren(
      ...(others.length ? others.map((q) => h('option', { value: q.name }, q.name)) : [h('option', { value: '' }, 'no other queue')]),
    );
    if (others.some((q) => q.name === current)) this.transferSelect.value = current;
    this.transferSelect.disabled = this.transferButton.disabled = this.ended || others.length === 0;
    this.hasOtherQueues = others.length > 0;
  }

  updateState() {
    this.stateBadge.textContent = this.takenOverBy
      ? `taken over · ${this.takenOverBy}`
      : this.ended
        ? `ended${this.endReason ? ` · ${this.endReason.replace(/_/g, ' ')}` : ''}`
        : 'live';
    this.stateBadge.className = `badge ${this.ended ? 'ended' : 'live'}`;
    for (const el of [this.input, this.sendButton, this.reasonSelect, this.endButton, this.notes.modeInput]) el.disabled = this.ended;
    this.transferSelect.disabled = this.transferButton.disabled = this.notes.transferInput.disabled = this.ended || !this.hasOtherQueues;
    this.closeButton.hidden = !this.ended;
  }

  select(selected) {
    this.selected = selected;
    this.el.hidden = !selected;
    if (selected) {
      this.unread = 0;
      this.scrollToEnd();
    }
  }

  focusComposer() {
    if (!this.ended) this.input.focus();
    else this.closeButton.focus();
  }

  /** Fetches the messages after the last one shown. Calls made while one runs are folded into one more run. */
  sync() {
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      try {
        do {
          this.syncAgain = false;
          let more = true;
          while (more) {
            const { messages } = await this.ctx.api('GET', `/v1/desk/handovers/${encodeURIComponent(this.id)}/messages?after=${this.lastSeq}`);
            for (const message of messages) this.addMessage(message);
            more = messages.length >= 1000;
          }
        } while (this.syncAgain);
      } catch (err) {
        // The server was busy: look again shortly (a network drop is handled by the reconnect instead).
        if (err.status >= 500 && !this.disposed) setTimeout(() => this.sync().catch(() => {}), 3000);
        throw err;
      } finally {
        this.syncing = null;
      }
    })();
    return this.syncing;
  }

  addMessage(m) {
    if (this.messages.has(m.seq)) return;
    this.messages.set(m.seq, m);
    this.lastSeq = Math.max(this.lastSeq, m.seq);
    const fromUser = m.direction === 'to_agent';
    const li = h(
      'li',
      { className: `msg live from-${fromUser ? 'user' : 'agent'}`, attrs: { 'data-seq': m.seq, 'data-message-id': m.id } },
      h('span', { className: 'meta' }, fromUser ? this.name : (m.sender?.name ?? 'Agent'), ` · ${formatTime(m.createdAt)}`),
      h('p', { className: 'text' }, m.text),
      renderAttachments(m.attachments),
    );
    // Sequence order, even if a later message was already shown (cannot happen with ?after=, but cheap).
    const next =
      [...this.log.querySelectorAll('li.live')].find((el) => Number(el.dataset.seq) > m.seq) ??
      [...this.log.querySelectorAll('li.note')].find((el) => Number(el.dataset.at) > Date.parse(m.createdAt));
    this.log.insertBefore(li, next ?? null);
    if (fromUser) {
      this.setUserTyping(false);
      if (!this.selected) this.unread++;
    }
    this.scrollToEnd();
    this.ctx.onChange(this);
  }

  scrollToEnd() {
    this.log.scrollTop = this.log.scrollHeight;
  }

  setUserTyping(typing) {
    clearTimeout(this.userTypingTimer);
    this.userTyping = typing && !this.ended;
    this.typingLine.textContent = this.userTyping ? `${this.name} is typing…` : '';
    if (this.userTyping) this.userTypingTimer = setTimeout(() => this.setUserTyping(false), USER_TYPING_EXPIRY_MS);
    this.ctx.onChange(this);
  }

  agentTyped() {
    if (this.ended || this.notes.noteMode) return;
    const now = Date.now();
    if (this.input.value.trim() !== '' && now - this.typingSentAt > TYPING_REFRESH_MS) {
      this.typingSentAt = now;
      this.postTyping(true);
    }
    clearTimeout(this.typingIdleTimer);
    this.typingIdleTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.typingIdleTimer);
    if (this.typingSentAt === 0) return;
    this.typingSentAt = 0;
    this.postTyping(false);
  }

  postTyping(typing) {
    // Typing is ephemeral: a lost signal is not worth an error message.
    this.ctx.api('POST', `/v1/desk/handovers/${encodeURIComponent(this.id)}/typing`, { typing }).catch(() => {});
  }

  async send() {
    if (this.notes.noteMode) return this.notes.send();
    const text = this.input.value;
    if (this.ended || text.trim() === '' || this.sendButton.disabled) return;
    // The same text sent again (after a failure) keeps its id, so the server stores it once.
    if (this.pendingText !== text) {
      this.pendingText = text;
      this.pendingClientId = crypto.randomUUID();
    }
    this.sendButton.disabled = true;
    try {
      await this.ctx.api('POST', `/v1/desk/handovers/${encodeURIComponent(this.id)}/messages`, { id: this.pendingClientId, text });
      this.pendingClientId = null;
      this.pendingText = null;
      if (this.input.value === text) this.input.value = '';
      this.setNotice('');
      clearTimeout(this.typingIdleTimer);
      this.typingSentAt = 0; // the user's side clears the indicator when the message arrives
    } catch (err) {
      this.setNotice(`Not sent: ${err.message} Your text is kept; press Send to try again.`);
    } finally {
      this.sendButton.disabled = this.ended;
      this.input.focus();
    }
    // Shown from the server's copy, in sequence order; the live signal would also bring it.
    this.sync().catch(() => {});
  }

  async transfer() {
    const queue = this.transferSelect.value;
    if (!queue) return;
    try {
      await this.ctx.api('POST', `/v1/desk/handovers/${encodeURIComponent(this.id)}/transfer`, { queue, note: this.notes.takeTransferNote() });
      this.ctx.notify(`${this.name} was transferred to ${queue}.`);
      this.ctx.onClose(this);
    } catch (err) {
      this.setNotice(`Transfer failed: ${err.message}`);
    }
  }

  async end() {
    const reason = this.reasonSelect.value;
    try {
      this.stopTyping();
      await this.ctx.api('POST', `/v1/desk/handovers/${encodeURIComponent(this.id)}/end`, { reason });
      this.markEnded(reason);
      this.closeButton.focus();
    } catch (err) {
      this.setNotice(`Could not end the chat: ${err.message}`);
    }
  }

  /**
   * Another agent (a supervisor) took the chat: it leaves this desk as an ended one does, saying who has it.
   * @param {string | null} by
   */
  markTakenOver(by) {
    if (this.ended) return;
    this.takenOverBy = by || 'another agent';
    this.ended = true;
    this.endReason = null;
    this.setUserTyping(false);
    this.log.append(h('li', { className: 'divider' }, `Taken over by ${this.takenOverBy}`));
    this.scrollToEnd();
    this.updateState();
    this.ctx.onChange(this);
  }

  markEnded(reason) {
    if (this.ended) return;
    this.ended = true;
    this.endReason = reason ?? null;
    this.setUserTyping(false);
    this.log.append(h('li', { className: 'divider' }, `Chat ended${reason ? ` (${reason.replace(/_/g, ' ')})` : ''}`));
    this.scrollToEnd();
    this.updateState();
    this.ctx.onChange(this);
  }

  setNotice(text) {
    this.notice.textContent = text;
  }

  dispose() {
    this.disposed = true;
    clearTimeout(this.typingIdleTimer);
    clearTimeout(this.userTypingTimer);
    this.el.remove();
  }
}

export function displayName(handover) {
  return handover.user?.name || handover.user?.id || 'User';
}

function definitionList(rows) {
  return h(
    'dl',
    {},
    rows.map(([key, value]) => [h('dt', {}, key), h('dd', {}, String(value))]),
  );
}
