import type { Attachment, TranscriptEntry } from '../../model/handover.js';
import { attachmentLine, handoverNoteLines } from '../connector-helpers.js';

/** An attachment of a conversation part, as Intercom sends it (`part_attachment`). */
export interface IntercomPartAttachment {
  type?: string;
  name?: string | null;
  url?: string | null;
  content_type?: string | null;
}

/** Intercom takes at most this many `attachment_urls` on a reply. */
const MAX_ATTACHMENT_URLS = 10;

const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/**
 * An HTML body as Intercom writes one: it opens with a tag of its editor and closes with one
 * (`<p>Okay!</p>`). Anything else is plain text, `<` and `&` included.
 */
const htmlBody = /^\s*<(p|div|h[1-6]|ul|ol|blockquote|pre|img|br|b|i|a|strong|em|code|span)[\s/>][\s\S]*>\s*$/i;

/**
 * The text of a part body. Intercom sends agents' replies as HTML (`<p>Okay!</p>`); webhooks of apps on
 * API version 2.15 and later send plain text, which is taken as it is (a `<` typed by the agent stays).
 * From HTML, paragraphs and line breaks become new lines, links keep their address, other tags are
 * dropped, entities decoded.
 */
export function htmlToText(html: string): string {
  if (!htmlBody.test(html)) return html;
  const text = html
    .replace(/<a\s[^>]*href="([^"]*)"[^>]*>(.*?)<\/a>/gis, (_, href: string, label: string) =>
      label.trim() && label.trim() !== href ? `${label} (${href})` : href,
    )
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/(p|div|li|h[1-6]|blockquote|pre)>/gi, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name: string) => {
      if (name[0] === '#') {
        const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
        return Number.isInteger(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
      }
      return entities[name.toLowerCase()] ?? whole;
    });
  return text.replace(/\n{3,}/g, '\n\n').trim();
}

/** Text as the HTML of a note (notes take some HTML): escaped, one paragraph per line. */
export function textToHtml(text: string): string {
  const escaped = text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  return escaped
    .split('\n')
    .map((line) => `<p>${line}</p>`)
    .join('');
}

/** A part's attachments in the service's terms. */
export function readAttachments(list: IntercomPartAttachment[] | null | undefined): Attachment[] {
  return (list ?? []).flatMap((a) =>
    a.url ? [{ url: a.url, ...(a.name ? { name: a.name } : {}), ...(a.content_type ? { contentType: a.content_type } : {}) }] : [],
  );
}

/**
 * A user's message as a contact reply: Intercom attaches images given by URL (`attachment_urls`, up to
 * 10); any other file, and images past ten, go as links at the end of the text.
 */
export function userReply(text: string, attachments: Attachment[]): { body: string; attachment_urls?: string[] } {
  const images = attachments.filter((a) => a.contentType?.startsWith('image/')).slice(0, MAX_ATTACHMENT_URLS);
  const links = attachments.filter((a) => !images.includes(a)).map(attachmentLine);
  const body = [text, ...links].filter(Boolean).join('\n');
  // Intercom needs a body: an image sent alone is named by its file names.
  return { body: body || images.map((a) => a.name ?? 'image').join(', '), ...(images.length > 0 ? { attachment_urls: images.map((a) => a.url) } : {}) };
}

/**
 * The transcript and the bot's metadata, as the note agents read before answering; it ends with the
 * handover's id, which support can look the handover up by.
 */
export function transcriptNote(handoverId: string, transcript: TranscriptEntry[], metadata: Record<string, unknown>): string {
  return textToHtml([...handoverNoteLines(transcript, metadata), '', `Handover: ${handoverId}`].join('\n').slice(0, 100_000));
}
