import type { Attachment, TranscriptEntry } from '../../model/handover.js';
import { attachmentLine, handoverNoteLines } from '../connector-helpers.js';

/** One part of a Freshchat message (`message_parts`); only the kinds read or written here. */
export interface FreshchatPart {
  text?: { content?: string | null } | null;
  image?: { url?: string | null } | null;
  file?: { url?: string | null; name?: string | null; content_type?: string | null; file_size_in_bytes?: number | null } | null;
  url_button?: { url?: string | null; label?: string | null } | null;
}

/** What an agent's message says: its text parts as lines, its images and files as attachments, its link buttons as `label: url` lines. */
export function readParts(parts: FreshchatPart[] | null | undefined): { text: string; attachments: Attachment[] } {
  const lines: string[] = [];
  const attachments: Attachment[] = [];
  for (const part of parts ?? []) {
    if (part.text?.content) lines.push(part.text.content);
    if (part.image?.url) attachments.push({ url: part.image.url });
    if (part.file?.url)
      attachments.push({
        url: part.file.url,
        ...(part.file.name ? { name: part.file.name } : {}),
        ...(part.file.content_type ? { contentType: part.file.content_type } : {}),
      });
    if (part.url_button?.url) lines.push(part.url_button.label ? `${part.url_button.label}: ${part.url_button.url}` : part.url_button.url);
  }
  return { text: lines.join('\n'), attachments };
}

/** A user's message as message parts: the text, then each image as an image part; other files as `name: url` lines of the text. */
export function userParts(text: string, attachments: Attachment[]): FreshchatPart[] {
  const images = attachments.filter((a) => a.contentType?.startsWith('image/'));
  const links = attachments.filter((a) => !images.includes(a)).map(attachmentLine);
  const body = [text, ...links].filter(Boolean).join('\n');
  return [...(body ? [{ text: { content: body } }] : []), ...images.map((a) => ({ image: { url: a.url } }))];
}

/**
 * The transcript and the bot's metadata, as the private note agents read before answering; it ends with
 * the handover's id, which support can look the handover up by.
 */
export function transcriptNote(handoverId: string, transcript: TranscriptEntry[], metadata: Record<string, unknown>): string {
  return [...handoverNoteLines(transcript, metadata), '', `Handover: ${handoverId}`].join('\n').slice(0, 100_000);
}
