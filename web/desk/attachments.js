// @ts-check
// Files in a chat. The agent attaches one from the reply box: it is uploaded to the chat, then sent to
// the user as a message of its own. Every message's files show as an image preview (PNG, JPEG, GIF,
// WebP kept by the service) or as a download link with the file's name and size — never as a page of
// this origin: the server serves them from short-lived signed links, as downloads unless plain images,
// with `nosniff` and a sandboxing policy. A link given by a bot as a URL is shown as a link (http(s) only).
import { h } from './dom.js';

const PREVIEWED = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
const UPLOAD_TIMEOUT_MS = 60_000;

/** The nodes that show a message's attachments (placed under its text). */
export function renderAttachments(attachments) {
  return (attachments ?? []).map((a) => {
    const name = a.name || 'file';
    if (!safeUrl(a.url)) return h('p', { className: 'attachment file' }, `📎 ${name}`);
    const link = (...children) => h('a', { href: a.url, attrs: { download: name, target: '_blank', rel: 'noopener noreferrer' } }, ...children);
    if (a.id && PREVIEWED.has(a.contentType)) {
      return h('figure', { className: 'attachment image' }, link(h('img', { src: a.url, alt: name, attrs: { loading: 'lazy' } })), h('figcaption', {}, name));
    }
    return h('p', { className: 'attachment file' }, link(`📎 ${name}`), a.size ? ` · ${formatSize(a.size)}` : '', a.contentType ? ` · ${a.contentType}` : '');
  });
}

/**
 * Adds **Attach file** beside the reply box of a chat: the chosen file is uploaded and sent at once.
 * `csrf()` gives the session's CSRF token (changes need it with the session cookie).
 */
export function attachFilePicker(chat, { csrf }) {
  const input = h('input', { type: 'file', id: `file-${chat.id}`, className: 'visually-hidden' });
  const label = h('label', { className: 'attach-button', attrs: { for: input.id, title: 'Attach a file (image, PDF or text)' } }, 'Attach file');
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    input.value = '';
    if (file && !chat.ended) sendFile(chat, file, csrf()).catch(() => {});
  });
  chat.composer.insertBefore(h('span', { className: 'attach' }, input, label), chat.sendButton);
}

async function sendFile(chat, file, csrf) {
  chat.setNotice(`Sending ${file.name}…`);
  try {
    const res = await fetch(`/v1/desk/handovers/${encodeURIComponent(chat.id)}/attachments?name=${encodeURIComponent(file.name)}`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': file.type || 'application/octet-stream', ...(csrf ? { 'x-csrf-token': csrf } : {}) },
      body: file,
      credentials: 'same-origin',
      cache: 'no-store',
      signal: AbortSignal.timeout(UPLOAD_TIMEOUT_MS),
    });
    const answer = await res.json().catch(() => null);
    if (!res.ok) throw new Error(answer?.error?.message ?? `HTTP ${res.status}`);
    await chat.ctx.api('POST', `/v1/desk/handovers/${encodeURIComponent(chat.id)}/messages`, {
      id: crypto.randomUUID(),
      text: '',
      attachments: [{ id: answer.id }],
    });
    chat.setNotice('');
  } catch (err) {
    chat.setNotice(`${file.name} was not sent: ${err.name === 'TimeoutError' ? 'the upload took too long.' : err.message}`);
    throw err;
  }
}

function safeUrl(url) {
  try {
    return ['http:', 'https:'].includes(new URL(url, document.baseURI).protocol);
  } catch {
    return false;
  }
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
