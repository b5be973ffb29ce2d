import type { Activity, ConversationReference } from 'botbuilder';
import type { CreateHandoverInput, TranscriptEntry } from 'handover-client';

/** The Bot Framework handoff protocol's event names (botbuilder's `HandoffEventNames`). */
export const HANDOFF_INITIATE = 'handoff.initiate';
export const HANDOFF_STATUS = 'handoff.status';

/** The `state` values of a `handoff.status` event. */
export type HandoffState = 'accepted' | 'failed' | 'completed';

/** The service's limits on a handover request (see its OpenAPI document). */
const MAX_TRANSCRIPT_ENTRIES = 500;
const MAX_TEXT = 20_000;
const MAX_METADATA_KEYS = 100;

/** The key a conversation is known by to the service: one live handover per conversation. */
export function conversationKey(reference: Partial<ConversationReference>): string {
  return `${reference.channelId ?? 'unknown'}:${reference.conversation?.id ?? 'unknown'}`;
}

/**
 * Turns a `handoff.initiate` event, sent in the conversation of `reference`, (as `EventFactory.createHandoffInitiation` makes it) into a handover
 * request. The handoff context (`value`) chooses the queue (`queue`, else `skill`, else the default);
 * its other fields travel as the handover's metadata for the agent. The transcript is the attachment
 * named `Transcript` (`{ activities }`): its messages, oldest first, each the user's when it came from
 * the user who asked for the handoff and the bot's otherwise.
 */
export function handoverRequest(initiate: Partial<Activity>, reference: Partial<ConversationReference>, defaultQueue: string): CreateHandoverInput {
  const context = isRecord(initiate.value) ? initiate.value : {};
  const queueField =
    typeof context.queue === 'string' && context.queue ? context.queue : typeof context.skill === 'string' && context.skill ? context.skill : undefined;
  const queue = queueField ?? defaultQueue;
  const { queue: _queue, skill: _skill, ...rest } = context;
  const metadata: Record<string, unknown> = { channelId: initiate.channelId };
  for (const [key, value] of Object.entries(rest).slice(0, MAX_METADATA_KEYS - 1)) metadata[key.slice(0, 128)] = value;

  // The user of the turn that asked (the initiate itself, once sent, is addressed from the bot).
  const from = reference.user ?? initiate.from;
  const user: CreateHandoverInput['user'] = { id: (from?.id || 'unknown-user').slice(0, 256) };
  if (from?.name) user.name = from.name.slice(0, 256);
  const locale = reference.locale ?? initiate.locale;
  if (typeof locale === 'string' && locale.length <= 35) user.locale = locale;

  return { conversationId: conversationKey(reference), queue, user, transcript: transcriptOf(initiate, user.id), metadata };
}

function transcriptOf(initiate: Partial<Activity>, userId: string): TranscriptEntry[] {
  const attachment = (initiate.attachments ?? []).find((a) => a.name === 'Transcript' || (isRecord(a.content) && Array.isArray(a.content.activities)));
  const activities =
    attachment && isRecord(attachment.content) && Array.isArray(attachment.content.activities)
      ? (attachment.content.activities as Array<Partial<Activity>>)
      : [];
  const entries: TranscriptEntry[] = [];
  for (const activity of activities) {
    if ((activity.type ?? 'message') !== 'message' || typeof activity.text !== 'string' || activity.text === '') continue;
    const fromUser = activity.from?.role ? activity.from.role === 'user' : activity.from?.id === userId;
    const entry: TranscriptEntry = { role: fromUser ? 'user' : 'bot', text: activity.text.slice(0, MAX_TEXT) };
    const at = activity.timestamp instanceof Date ? activity.timestamp.toISOString() : typeof activity.timestamp === 'string' ? activity.timestamp : undefined;
    if (at && at.length <= 40) entry.at = at;
    entries.push(entry);
  }
  return entries.slice(-MAX_TRANSCRIPT_ENTRIES);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
