import type { Attachment, TranscriptEntry, UserInfo } from '../../model/handover.js';

/** Open Messaging's media types (the `mediaType` of an attachment in a normalized message). */
type MediaType = 'Image' | 'Video' | 'Audio' | 'File';

/** Custom attributes of the channel's metadata: flat strings, as Architect reads participant data. */
const MAX_ATTRIBUTE_LENGTH = 1000;

export const OPENING_TEXT = 'Handed over by the bot.';

function mediaTypeOf(contentType: string | undefined): MediaType {
  if (contentType?.startsWith('image/')) return 'Image';
  if (contentType?.startsWith('video/')) return 'Video';
  if (contentType?.startsWith('audio/')) return 'Audio';
  return 'File';
}

/** Our attachments as `content` entries of an inbound normalized message (Genesys fetches the URL). */
export function attachmentContent(attachments: Attachment[]): Array<Record<string, unknown>> {
  return attachments.map((a) => ({
    contentType: 'Attachment',
    attachment: {
      mediaType: mediaTypeOf(a.contentType),
      url: a.url,
      // Required by the reference's OpenContentAttachment: a file of no stated type is sent as bytes.
      mime: a.contentType ?? 'application/octet-stream',
      ...(a.name ? { filename: a.name } : {}),
    },
  }));
}

/** Attachments of an outbound normalized message (`content[].attachment`), those with a URL. */
export function readAttachments(content: unknown): Attachment[] {
  if (!Array.isArray(content)) return [];
  return content.flatMap((entry): Attachment[] => {
    // Any entry may be anything (null, a string): only an object saying it is an attachment is read.
    if (typeof entry !== 'object' || entry === null) return [];
    const a = (entry as { contentType?: unknown; attachment?: { url?: unknown; filename?: unknown; mime?: unknown } | null }).attachment;
    if ((entry as { contentType?: unknown }).contentType !== 'Attachment' || !a || typeof a.url !== 'string' || !/^https?:\/\//.test(a.url)) return [];
    return [
      {
        url: a.url,
        ...(typeof a.filename === 'string' && a.filename ? { name: a.filename } : {}),
        ...(typeof a.mime === 'string' && a.mime ? { contentType: a.mime } : {}),
      },
    ];
  });
}

/** The first message of the conversation: the bot's transcript, as the agent reads it first. */
export function openingText(transcript: TranscriptEntry[]): string {
  if (transcript.length === 0) return OPENING_TEXT;
  return [OPENING_TEXT, '', 'Transcript:', ...transcript.map((e) => `${e.role}: ${e.text}`)].join('\n');
}

/**
 * The handover's details as the channel's custom attributes (participant data in Genesys: routing
 * flows and scripts read them): ours first, then the bot's metadata, every value a string.
 */
export function customAttributes(work: {
  handoverId: string;
  conversationId: string;
  queue: string;
  user: UserInfo;
  metadata: Record<string, unknown>;
}): Record<string, string> {
  const out: Record<string, string> = { handoverId: work.handoverId, conversationId: work.conversationId, queue: work.queue, userId: work.user.id };
  if (work.user.email) out.email = work.user.email;
  for (const [key, value] of Object.entries(work.metadata)) {
    if (key in out || value === undefined || value === null) continue;
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    out[key] = text.length > MAX_ATTRIBUTE_LENGTH ? text.slice(0, MAX_ATTRIBUTE_LENGTH) : text;
  }
  return out;
}
