// @ts-check
// Internal notes of one chat: shown in the conversation, set apart (they never reach the user), written
// with the reply box switched to "Internal note", and one can go with a transfer for the next agent.
import { formatTime, h } from './dom.js';

export class ChatNotes {
  /** @param chat the Chat (its id, log, input, sendButton, ctx.api, setNotice) */
  constructor(chat) {
    this.chat = chat;
    this.shown = new Set();
    this.syncing = null;
    this.syncAgain = false;
    const hid = chat.id;
    this.modeInput = h('input', { type: 'checkbox', id: `note-mode-${hid}`, on: { change: () => this.setMode(this.modeInput.checked) } });
    this.modeToggle = h('label', { className: 'note-toggle', attrs: { for: `note-mode-${hid}` } }, this.modeInput, ' Internal note');
    this.transferInput = h('input', { id: `transfer-note-${hid}`, maxLength: 5000, placeholder: 'Note for the next agent (optional)' });
    this.transferLabel = h('label', { className: 'visually-hidden', attrs: { for: `transfer-note-${hid}` } }, 'Note for the next agent');
  }

  get noteMode() {
    return this.modeInput.checked;
  }

  setMode(on) {
    this.modeInput.checked = on;
    const { input, sendButton } = this.chat;
    input.closest('form')?.classList.toggle('note-mode', on);
    input.placeholder = on ? 'Internal note — only agents see it; Enter adds it' : 'Write a reply — Enter sends, Shift+Enter for a new line';
    sendButton.textContent = on ? 'Add note' : 'Send';
    if (on) this.chat.stopTyping();
  }

  /** Adds the reply box's text as a note (the box stays in note mode). */
  async send() {
    const { input, sendButton } = this.chat;
    const text = input.value;
    if (text.trim() === '' || sendButton.disabled) return;
    sendButton.disabled = true;
    try {
      const note = await this.chat.ctx.api('POST', `/v1/desk/handovers/${encodeURIComponent(this.chat.id)}/notes`, { text });
      if (input.value === text) input.value = '';
      this.chat.setNotice('');
      this.add(note);
    } catch (err) {
      this.chat.setNotice(`Note not added: ${err.message} Your text is kept.`);
    } finally {
      sendButton.disabled = this.chat.ended;
      input.focus();
    }
  }

  /** The note typed for a transfer, if any. */
  takeTransferNote() {
    const note = this.transferInput.value.trim();
    return note || undefined;
  }

  /** Re-reads the chat's notes; calls made while one runs fold into one more run. */
  sync() {
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      try {
        do {
          this.syncAgain = false;
          const { notes } = await this.chat.ctx.api('GET', `/v1/desk/handovers/${encodeURIComponent(this.chat.id)}/notes`);
          for (const note of notes) this.add(note);
        } while (this.syncAgain);
      } finally {
        this.syncing = null;
      }
    })();
    return this.syncing;
  }

  add(note) {
    if (this.shown.has(note.id)) return;
    this.shown.add(note.id);
    const at = Date.parse(note.createdAt);
    const label = note.kind === 'transfer' ? `Note with the transfer to ${note.queue ?? 'another queue'}` : 'Internal note';
    const li = h(
      'li',
      {
        className: `msg note${note.kind === 'transfer' ? ' transfer-note' : ''}`,
        attrs: { 'data-note-id': note.id, 'data-at': at, 'aria-label': `${label} by ${note.agent.name}` },
      },
      h('span', { className: 'meta' }, `${label} · ${note.agent.name} · ${formatTime(note.createdAt)} · not sent to the user`),
      h('p', { className: 'text' }, note.text),
    );
    // In time order among the messages and notes shown (a message's time from the chat's copy of it).
    const timeOf = (el) => (el.dataset.at ? Number(el.dataset.at) : Date.parse(this.chat.messages.get(Number(el.dataset.seq))?.createdAt ?? ''));
    const next = [...this.chat.log.querySelectorAll('li.live, li.note')].find((el) => timeOf(el) > at);
    this.chat.log.insertBefore(li, next ?? null);
    this.chat.scrollToEnd();
  }
}
