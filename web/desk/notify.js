// @ts-check
// Replies in background chats: when a user writes in a chat that is not the one on screen, its unread
// count shows on the chat in My chats and in the tab title, a short sound plays (made with WebAudio, so
// there is no sound file), and, when the agent allowed it, the browser shows a notification. Opening the
// chat clears its count. Permission is asked only when the agent presses the button (a user gesture).
import { h } from './dom.js';

const SOUND_KEY = 'handover.desk.reply-sound';
const BODY_CHARS = 140;

/**
 * @param after the element the settings (sound checkbox, notification permission button) go after
 * @param onOpen (chatId) => void: a click on a notification opens that chat
 */
export function createReplyNotifier(after, { onOpen }) {
  // Per chat: the sequence number of the user's latest message seen. A chat is watched from the end of
  // its first read, so what it held before (after a reload, say) is not announced as new.
  const seen = new Map();
  const notifications = new Map(); // chat id → the notification shown for it
  let audio = null;

  const sound = h('input', { type: 'checkbox', id: 'reply-sound', on: { change: () => saveSound() } });
  sound.checked = localStorage.getItem(SOUND_KEY) !== 'off';
  const allow = h('button', { type: 'button', className: 'small', on: { click: () => void askPermission() } }, 'Allow notifications');
  after.after(h('span', { className: 'reply-notify' }, h('label', { className: 'sound' }, sound, ' Sound on replies'), allow));
  showPermission();

  function saveSound() {
    localStorage.setItem(SOUND_KEY, sound.checked ? 'on' : 'off');
    if (sound.checked) chime(); // also unlocks audio: browsers allow it after a user gesture
  }

  function showPermission() {
    allow.hidden = !('Notification' in window) || window.Notification.permission !== 'default';
  }

  async function askPermission() {
    try {
      await window.Notification.requestPermission();
    } catch {
      // an old browser without the promise form, or none at all: nothing to ask
    }
    showPermission();
  }

  function chime() {
    try {
      audio ??= new AudioContext();
      if (audio.state === 'suspended') void audio.resume().catch(() => {});
      const gain = audio.createGain();
      const start = audio.currentTime;
      gain.gain.setValueAtTime(0.12, start);
      gain.gain.exponentialRampToValueAtTime(0.001, start + 0.35);
      gain.connect(audio.destination);
      // Two short rising notes: unlike the single beep of a new chat waiting.
      for (const [frequency, at] of [
        [660, 0],
        [990, 0.12],
      ]) {
        const oscillator = audio.createOscillator();
        oscillator.frequency.value = frequency;
        oscillator.connect(gain);
        oscillator.start(start + at);
        oscillator.stop(start + at + 0.2);
      }
    } catch {
      // no audio device: the count and the notification remain
    }
  }

  function lastUserText(chat) {
    let last = null;
    for (const message of chat.messages.values()) if (message.direction === 'to_agent' && (!last || message.seq > last.seq)) last = message;
    const text = last?.text ?? '';
    return text.length > BODY_CHARS ? `${text.slice(0, BODY_CHARS - 1)}…` : text;
  }

  function notify(chat) {
    if (!('Notification' in window) || window.Notification.permission !== 'granted') return;
    try {
      // One per chat (the tag): a newer reply replaces the older notification instead of piling up.
      const notification = new window.Notification(`${chat.name} wrote`, { body: lastUserText(chat), tag: `handover-${chat.id}` });
      notifications.set(chat.id, notification);
      notification.onclick = () => {
        window.focus();
        onOpen(chat.id);
        notification.close();
      };
    } catch {
      // a browser that only notifies from a service worker: the count and the sound remain
    }
  }

  /** The sequence number of the user's latest message in the chat (0: none). */
  function latestUserSeq(chat) {
    let latest = 0;
    for (const message of chat.messages.values()) if (message.direction === 'to_agent' && message.seq > latest) latest = message.seq;
    return latest;
  }

  return {
    /** The chat's first read is done: from now on, new replies are announced. */
    watch(chat) {
      seen.set(chat.id, latestUserSeq(chat));
    },
    /** The chat changed (a message, typing, selection): announces a reply it did not have before. */
    changed(chat) {
      const before = seen.get(chat.id);
      if (before === undefined) return;
      if (chat.selected) notifications.get(chat.id)?.close();
      const latest = latestUserSeq(chat);
      if (latest <= before) return;
      seen.set(chat.id, latest);
      if (chat.selected && !document.hidden) return;
      if (sound.checked) chime();
      notify(chat);
    },
    forget(chat) {
      seen.delete(chat.id);
      notifications.get(chat.id)?.close();
      notifications.delete(chat.id);
    },
    /** Unread replies over all chats: what the tab title counts. */
    unread(chats) {
      let total = 0;
      for (const chat of chats) total += chat.unread;
      return total;
    },
  };
}
