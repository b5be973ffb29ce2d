import type { Attachment, TranscriptEntry, UserInfo } from '../../model/handover.js';
import { transcriptLines } from '../connector-helpers.js';

/** A message `content` as Sunshine Conversations documents it; only the fields read here. */
export interface SunshineContent {
  type?: string;
  text?: string | null;
  mediaUrl?: string | null;
  altText?: string | null;
  actions?: unknown[];
  items?: unknown[];
  coordinates?: unknown;
  location?: unknown;
}

/**
 * What an agent's message says, in the service's terms (text and attachments). Rich contents keep
 * what a user can act on: a carousel or list item becomes its title and description, its image an
 * attachment named by the title, its link actions `text: uri` lines, its other actions their labels; a
 * location becomes its name and coordinates; text, image and file messages their text (or alt text) and
 * media. A content of a type not known here gives its text or alt text, if any.
 */
export function readContent(content: SunshineContent): { text: string; attachments: Attachment[] } {
  const lines: string[] = [];
  const attachments: Attachment[] = [];
  const text = content.type === 'text' ? content.text : (content.text ?? content.altText);
  if (text) lines.push(text);
  if (content.mediaUrl) attachments.push({ url: content.mediaUrl, ...(content.altText ? { name: content.altText } : {}) });
  lines.push(...actionLines(content.actions));
  for (const raw of content.items ?? []) {
    const item = asRecord(raw);
    const title = str(item.title);
    const description = str(item.description);
    if (title || description) lines.push([title, description].filter(Boolean).join(' — '));
    const mediaUrl = str(item.mediaUrl);
    if (mediaUrl) attachments.push({ url: mediaUrl, ...(title ? { name: title } : {}) });
    lines.push(...actionLines(Array.isArray(item.actions) ? item.actions : undefined));
  }
  if (content.type === 'location') {
    const coordinates = asRecord(content.coordinates);
    const place = asRecord(content.location);
    const name = [str(place.name), str(place.address)].filter(Boolean).join(', ');
    const at = typeof coordinates.lat === 'number' && typeof coordinates.long === 'number' ? `(${coordinates.lat}, ${coordinates.long})` : '';
    if (name || at) lines.push([name, at].filter(Boolean).join(' '));
  }
  return { text: lines.join('\n'), attachments };
}

/** Link-like actions (`link`, `webview`) as `text: uri`; the others (replies, postbacks, buy, …) as their label. */
function actionLines(actions: unknown[] | undefined): string[] {
  return (actions ?? []).flatMap((raw) => {
    const action = asRecord(raw);
    const label = str(action.text);
    const uri = str(action.uri);
    if (uri && (action.type === 'link' || action.type === 'webview')) return [label ? `${label}: ${uri}` : uri];
    return label ? [label] : [];
  });
}

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Sunshine Conversations takes flat metadata (strings, numbers, booleans) of at most 4 KB. */
export const METADATA_LIMIT_BYTES = 4096;

type Flat = Record<string, string | number | boolean>;

/**
 * The metadata passed with control to the agents: who the user is, the bot's metadata flattened
 * (`meta_<key>`, nested values as JSON), and the transcript as one `transcript` string of
 * `role: text` lines. Everything must fit 4 KB, so the transcript keeps its newest lines (an agent
 * needs the end of the conversation most), then bot metadata values are cut, longest first.
 */
export function handoverMetadata(input: {
  handoverId: string;
  queue: string;
  user: UserInfo;
  transcript: TranscriptEntry[];
  metadata: Record<string, unknown>;
}): Flat {
  const base: Flat = { handoverId: input.handoverId, queue: input.queue, userId: input.user.id };
  if (input.user.name) base.userName = input.user.name;
  if (input.user.email) base.userEmail = input.user.email;
  const extra: Flat = {};
  for (const [key, value] of Object.entries(input.metadata)) {
    const flatKey = `meta_${key}`.slice(0, 128);
    if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) extra[flatKey] = value;
    else if (value !== undefined && value !== null) extra[flatKey] = JSON.stringify(value);
  }
  const out: Flat = { ...base, ...extra };
  // Bot metadata that alone blows the budget is cut, longest value first, leaving room for a transcript.
  while (size(out) > METADATA_LIMIT_BYTES - 512) {
    const longest = Object.keys(extra)
      .filter((k) => typeof out[k] === 'string' && (out[k] as string).length > 16)
      .sort((a, b) => String(out[b]).length - String(out[a]).length)[0];
    if (!longest) break;
    const value = out[longest] as string;
    out[longest] = `${value.slice(0, Math.floor(value.length / 2))}…`;
  }
  const lines = transcriptLines(input.transcript);
  const kept: string[] = [];
  for (let i = lines.length - 1; i >= 0; i--) {
    const candidate = [lines[i]!, ...kept];
    const transcript = (i > 0 ? '…\n' : '') + candidate.join('\n');
    if (size({ ...out, transcript }) > METADATA_LIMIT_BYTES) {
      // Not even the newest line fits whole: keep its start.
      if (kept.length === 0) kept.push(truncateToFit(lines[i]!, out));
      break;
    }
    kept.unshift(lines[i]!);
  }
  if (kept.length > 0) out.transcript = (kept.length < lines.length ? '…\n' : '') + kept.join('\n');
  return out;
}

function truncateToFit(line: string, out: Flat): string {
  let text = line;
  while (text.length > 0 && size({ ...out, transcript: `…\n${text}…` }) > METADATA_LIMIT_BYTES) text = text.slice(0, Math.floor(text.length * 0.8));
  return `${text}…`;
}

export function size(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}

/** Reads a `transcript` metadata string back into entries (for readers of the metadata, and tests). */
export function parseTranscript(text: string): Array<{ role: string; text: string }> {
  return text
    .split('\n')
    .filter((line) => line !== '…')
    .map((line) => {
      const colon = line.indexOf(': ');
      return colon < 0 ? { role: '', text: line } : { role: line.slice(0, colon), text: line.slice(colon + 2) };
    });
}
