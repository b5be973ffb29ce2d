import { timingSafeEqual } from 'node:crypto';
import { Type, type TSchema } from '@sinclair/typebox';
import type { TypeCheck } from '@sinclair/typebox/compiler';
import type { Attachment, TranscriptEntry } from '../model/handover.js';
import { DeliveryError } from '../outbound/delivery-error.js';
import { storableText } from '../store/storable-text.js';
import type { AttachmentFile, DeliveryContext, InboundEvent, InboundEventByRef } from './connector.js';

// What several connectors and the parts that call them share, kept apart from the port (connector.ts),
// which holds only the contract.

/**
 * A failure as the service stores, logs and reports it: the error's message, plus the quoted remote
 * answer when quoting is allowed (HANDOVER_REDACT_CONTENT unset or false).
 */
export function failureText(err: Error, options: { quoteAnswers: boolean }): string {
  // The quote may sit on a cause (a connector that wraps a refusal in its own error).
  let quote: string | undefined;
  for (let e: unknown = err, depth = 0; options.quoteAnswers && e instanceof Error && depth < 5 && quote === undefined; e = e.cause, depth++) {
    if (e instanceof DeliveryError) quote = e.answerQuote;
  }
  return storableText(quote ? `${err.message}: ${quote}` : err.message);
}

/** The longest message text we take from an external system (as the bot API takes at most). */
export const MAX_INBOUND_TEXT = 20_000;

/** A text cut to `MAX_INBOUND_TEXT` UTF-16 units (see cutText). */
export function cutInboundText(text: string): string {
  return cutText(text, MAX_INBOUND_TEXT);
}

/**
 * A text cut to `max` UTF-16 units, never between the two halves of a character outside the basic
 * plane (an emoji): half a pair is no text, and PostgreSQL (and vendors' APIs) refuse it.
 */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

/**
 * An inbound event with every string storable (see storableText) and its message text cut to size.
 * Vendors' webhooks and streams are taken as they come rather than refused whole: one bad character in
 * one event of a batch must not lose the others.
 */
export function storableInboundEvent<E extends InboundEvent | InboundEventByRef>(event: E): E {
  const clean = (value: unknown): unknown => {
    if (typeof value === 'string') return storableText(value);
    if (Array.isArray(value)) return value.map(clean);
    if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clean(v)]));
    return value;
  };
  const cleaned = clean(event) as E;
  if (cleaned.type === 'message.created') {
    cleaned.message.text = cutInboundText(cleaned.message.text);
    cleaned.message.attachments = (cleaned.message.attachments ?? []).flatMap(linkedFile);
  }
  return cleaned;
}

/**
 * A file an external system links to, as the bot is given it: only its link, name and type, and only a
 * web link. A `javascript:` or `data:` link would reach the user's chat client as the agent's, and an
 * `id` (or `size`) would pass for a file this service keeps, whose links it signs.
 */
function linkedFile(a: Attachment): Attachment[] {
  if (typeof a.url !== 'string' || !/^https?:\/\//i.test(a.url)) return [];
  return [
    {
      url: a.url,
      ...(typeof a.name === 'string' ? { name: a.name } : {}),
      ...(typeof a.contentType === 'string' ? { contentType: a.contentType } : {}),
    },
  ];
}

/** One header of an inbound request (the first, when it came more than once). */
export { headerValue } from '../outbound/index.js';

/** Whether a secret or signature given in a request is the expected one, compared in constant time. */
export function equalSecrets(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A field a vendor may send as null as well as leave out. */
export const nullable = <T extends TSchema>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]));

/** Where and why a body does not match a compiled schema (its first error), as an inbound refusal says it. */
export function firstSchemaError(checker: TypeCheck<TSchema>, value: unknown): string | undefined {
  const first = checker.Errors(value).First();
  return first ? `${first.path || '/'}: ${first.message}` : undefined;
}

/**
 * The system's id of the handover's conversation, as `open` returned it. Later work is delivered only
 * after the start, so a missing one will not come on a retry: the failure is final.
 */
export function requireRef(context: DeliveryContext, system: string): string {
  if (!context.externalRef) throw new DeliveryError(`the ${system} conversation was never opened for this handover`, { retryable: false });
  return context.externalRef;
}

/** The bot's transcript as `role: text` lines, each entry on one line. */
export function transcriptLines(transcript: readonly TranscriptEntry[]): string[] {
  return transcript.map((e) => `${e.role}: ${e.text.replace(/\s+/g, ' ').trim()}`);
}

/** The transcript and the bot's metadata as the lines of the note agents read before answering. */
export function handoverNoteLines(transcript: readonly TranscriptEntry[], metadata: Record<string, unknown>): string[] {
  const lines = ['Conversation with the bot:', ...transcriptLines(transcript)];
  const meta = Object.entries(metadata);
  if (meta.length > 0) lines.push('', 'Details:', ...meta.map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`));
  return lines;
}

/** An attachment as a line of a message's text, for a system that takes it only as a link. */
export function attachmentLine(attachment: Attachment): string {
  return attachment.name ? `${attachment.name}: ${attachment.url}` : attachment.url;
}

/**
 * A message's attachments, for a system whose API takes files: the files this service keeps, with their
 * bytes, and the rest to send as links (links given as such, files no longer kept, and every attachment
 * when attachments are off).
 */
export async function readKeptFiles(attachments: readonly Attachment[], context: DeliveryContext): Promise<{ files: AttachmentFile[]; links: Attachment[] }> {
  const files: AttachmentFile[] = [];
  const links: Attachment[] = [];
  for (const a of attachments) {
    const file = a.id && context.readAttachment ? await context.readAttachment(a.id) : null;
    if (file) files.push(file);
    else links.push(a);
  }
  return { files, links };
}
