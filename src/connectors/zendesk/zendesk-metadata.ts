import type { TranscriptEntry, UserInfo } from '../../model/handover.js';
import { transcriptLines } from '../connector-helpers.js';

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
