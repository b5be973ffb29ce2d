import type { InboundEvent } from '../connector.js';
import { parseJson } from '../../outbound/index.js';

/** One server-sent event as read off the wire. */
export interface ServerSentEvent {
  id: string | undefined;
  event: string;
  data: string;
}

interface Entry {
  identifier?: string;
  entryType?: string;
  senderDisplayName?: string;
  sender?: { role?: string; subject?: string; appType?: string };
  entryPayload?: unknown;
}

/** Roles whose messages go to the user: a human agent, or a bot on the Salesforce side. */
const speakingRoles = new Set(['Agent', 'Chatbot']);

/**
 * Maps one event of the Messaging for In-App and Web stream to the service's events. The end user's own
 * messages (ours, echoed back), events of other conversations and unknown events map to nothing.
 */
export function toInboundEvents(sse: ServerSentEvent, handoverId: string, conversationId: string): InboundEvent[] {
  const data = parseObject(sse.data);
  if (!data) return [];
  if (typeof data.conversationId === 'string' && data.conversationId.toLowerCase() !== conversationId) return [];
  const entry = (data.conversationEntry ?? {}) as Entry;
  const payload =
    (typeof entry.entryPayload === 'string' ? parseObject(entry.entryPayload) : (entry.entryPayload as Record<string, unknown> | undefined)) ?? {};
  const role = entry.sender?.role;
  const agent = { id: entry.sender?.subject ?? 'salesforce-agent', ...(entry.senderDisplayName ? { name: entry.senderDisplayName } : {}) };
  switch (sse.event) {
    case 'CONVERSATION_MESSAGE': {
      if (!role || !speakingRoles.has(role)) return [];
      const message = messageOf(payload);
      if (!message) return [];
      const id = entry.identifier ?? (typeof payload.id === 'string' ? payload.id : undefined) ?? sse.id;
      if (!id) return [];
      return [{ type: 'message.created', handoverId, message: { id: `sf_${id}`, ...message }, agent }];
    }
    case 'CONVERSATION_PARTICIPANT_CHANGED': {
      type Change = { operation?: unknown; displayName?: unknown; participant?: { subject?: unknown; role?: unknown } };
      const entries = Array.isArray(payload.entries) ? (payload.entries as Change[]) : [];
      // A leave needs no event of its own: the end arrives as CONVERSATION_SESSION_STATUS_CHANGED, and
      // a transfer as the next agent's join.
      return entries
        .filter((e) => String(e.operation).toLowerCase() === 'add' && e.participant?.role === 'Agent')
        .map((e) => ({
          type: 'agent.joined' as const,
          handoverId,
          agent: {
            id: typeof e.participant?.subject === 'string' ? e.participant.subject : 'salesforce-agent',
            ...(typeof e.displayName === 'string' ? { name: e.displayName } : {}),
          },
        }));
    }
    case 'CONVERSATION_TYPING_STARTED_INDICATOR':
    case 'CONVERSATION_TYPING_STOPPED_INDICATOR':
      if (role !== 'Agent') return [];
      return [{ type: 'agent.typing', handoverId, typing: sse.event === 'CONVERSATION_TYPING_STARTED_INDICATOR' }];
    case 'CONVERSATION_SESSION_STATUS_CHANGED': {
      const status = payload.sessionStatus ?? data.sessionStatus;
      if (status !== 'Ended') return [];
      const endedBy = payload.sessionEndedByRole ?? data.sessionEndedByRole;
      return [{ type: 'handover.ended', handoverId, reason: endedBy === 'EndUser' ? 'user_ended' : 'agent_ended' }];
    }
    case 'CONVERSATION_CLOSE_CONVERSATION':
      // Fires only when the end user's side closed the conversation.
      return [{ type: 'handover.ended', handoverId, reason: 'user_ended' }];
    case 'CONVERSATION_ROUTING_RESULT': {
      const failure = payload.failureType;
      if (typeof failure === 'string' && failure !== '' && failure !== 'None') {
        const reason = typeof payload.failureReason === 'string' ? `: ${payload.failureReason}` : '';
        return [{ type: 'handover.ended', handoverId, reason: 'unavailable', detail: `Salesforce could not route the conversation (${failure}${reason}).` }];
      }
      // The documented wait is `estimatedWaitTime: {estimatedWaitTimeInSeconds, isEWTRequested}`: no position.
      const wait = payload.estimatedWaitTime as { estimatedWaitTimeInSeconds?: unknown } | undefined;
      const seconds =
        typeof wait?.estimatedWaitTimeInSeconds === 'number' && wait.estimatedWaitTimeInSeconds >= 0 ? Math.round(wait.estimatedWaitTimeInSeconds) : undefined;
      return seconds === undefined ? [] : [{ type: 'queue.updated', handoverId, estimatedWaitSeconds: seconds }];
    }
    default:
      // The queue position is an entry of its own (`entryType: QueuePosition`, `entryPayload.position`),
      // read by its entry type so that the event's name does not matter.
      return entry.entryType === 'QueuePosition' ? queuePosition(payload, handoverId) : [];
  }
}

/** The end user's place in the agent queue, as Salesforce reports it while routing waits. */
function queuePosition(payload: Record<string, unknown>, handoverId: string): InboundEvent[] {
  const position = payload.position;
  return typeof position === 'number' && Number.isFinite(position) && position >= 0
    ? [{ type: 'queue.updated', handoverId, position: Math.floor(position) }]
    : [];
}

function messageOf(payload: Record<string, unknown>): { text: string; attachments: Array<{ url: string; name?: string; contentType?: string }> } | null {
  const content = (payload.abstractMessage as { staticContent?: Record<string, unknown> } | undefined)?.staticContent;
  if (!content) return null;
  const text = typeof content.text === 'string' ? content.text : '';
  const attachments = Array.isArray(content.attachments)
    ? (content.attachments as Array<Record<string, unknown>>)
        .filter((a) => typeof a.url === 'string')
        .map((a) => ({
          url: a.url as string,
          ...(typeof a.name === 'string' ? { name: a.name } : {}),
          ...(typeof a.mimeType === 'string' ? { contentType: a.mimeType } : {}),
        }))
    : [];
  if (text === '' && attachments.length === 0) return null;
  return { text, attachments };
}

type Json = Record<string, unknown>;

function parseObject(text: string): Json | null {
  const value = parseJson(text);
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : null;
}

/** Parses an event stream (text/event-stream) into events, as the HTML spec tells a client to. */
export async function* readServerSentEvents(body: AsyncIterable<Buffer>): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let id: string | undefined;
  let event = '';
  let data: string[] = [];
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      // A CR at the end of a chunk may be the first half of a CRLF: wait for the next chunk.
      if (newline === buffer.length - 1 && buffer.endsWith('\r')) break;
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
      if (line === '') {
        if (data.length > 0 || event) yield { id, event: event || 'message', data: data.join('\n') };
        event = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') event = value;
      else if (field === 'id' && !value.includes('\0')) id = value;
    }
  }
}
