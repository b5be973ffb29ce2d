import { DeliveryError, StreamLostError, type ConnectorDeps, type InboundEvent, type StreamContext } from '../connector.js';
import { parseJson } from '../../outbound/index.js';
import type { SalesforceApi } from './salesforce-api.js';
import { LOST_TOKEN, noteRenewal, renewalDueAt } from './salesforce-auth.js';
import type { SalesforceConfig } from './salesforce-config.js';

/** The longest delay setTimeout takes (longer ones fire at once). */
const MAX_TIMER_MS = 2_147_483_647;

const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/**
 * One connection of the conversation's event stream: resume after the stored position, apply each
 * event (with its id as the new position) through the service, return when the connection ends.
 */
export async function readStream(api: SalesforceApi, config: SalesforceConfig, deps: ConnectorDeps, context: StreamContext): Promise<void> {
  const idleTimeoutMs = config.streamIdleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const open = (token: string) => api.openStream(token, context.session.position, { timeoutMs: deps.timeoutMs, idleTimeoutMs, signal: context.signal });
  let token = context.session.credential;
  if (!token) throw new StreamLostError('No Salesforce access token is stored for this conversation.');
  const renewToken = async (current: string): Promise<string> => {
    let renewed: string;
    try {
      renewed = (await api.continuationToken(current, context.signal)).accessToken;
      noteRenewal(current, renewed);
    } catch (err) {
      if (err instanceof DeliveryError && (err.statusCode === 401 || err.statusCode === 403)) throw new StreamLostError(LOST_TOKEN, { cause: err });
      throw err;
    }
    await context.saveCredential(renewed);
    return renewed;
  };
  const due = renewalDueAt(token);
  if (due !== null && Date.now() >= due) token = await renewToken(token);
  let response = await open(token);
  if (response.status === 401) {
    response.body.destroy();
    token = await renewToken(token);
    response = await open(token);
    if (response.status === 401) {
      response.body.destroy();
      throw new StreamLostError(LOST_TOKEN);
    }
  }
  if (response.status !== 200) {
    response.body.destroy();
    // The conversation is gone or no longer ours to read: retrying cannot bring it back.
    if (response.status === 403 || response.status === 404 || response.status === 410) {
      throw new StreamLostError(`Salesforce answered ${response.status} to the event stream request: the conversation can no longer be followed.`);
    }
    // Reconnected later, no sooner than the answer's Retry-After asks.
    throw new DeliveryError(`Salesforce answered ${response.status} to the event stream request`, {
      retryable: true,
      statusCode: response.status,
      retryAfterMs: response.retryAfterMs,
    });
  }
  let last = context.session.position;
  // While the stream is held, its holder renews the token ahead of expiry: a quiet conversation makes
  // no other call that would, and a token past its expiry cannot be continued.
  let renewal: NodeJS.Timeout | undefined;
  const scheduleRenewal = (current: string) => {
    const at = renewalDueAt(current);
    // setTimeout takes at most 2^31 - 1 ms (longer fires at once): a token valid longer is renewed when
    // the stream reconnects or a delivery finds it due.
    if (at === null || at - Date.now() > MAX_TIMER_MS) return;
    renewal = setTimeout(
      () => {
        renewToken(current).then(
          (renewed) => {
            token = renewed;
            if (!context.signal.aborted) scheduleRenewal(renewed);
          },
          (err: unknown) => {
            deps.log.warn(
              { err, handoverId: context.handoverId },
              'renewing the Salesforce token ahead of its expiry failed; the stream will renew it when it reconnects',
            );
            // Reconnecting renews (or finds the token lost and ends the handover with a reason); the stream
            // ends with this cause, not an anonymous "request aborted".
            response.body.destroy(new Error('renewing the Salesforce token ahead of its expiry failed', { cause: err }));
          },
        );
      },
      Math.max(0, at - Date.now()),
    );
    renewal.unref();
  };
  scheduleRenewal(token);
  try {
    for await (const sse of readServerSentEvents(response.body)) {
      if (!sse.id || sse.id === last) continue;
      await context.apply(sse.id, toInboundEvents(sse, context.handoverId, context.session.externalId));
      last = sse.id;
      context.session.position = sse.id;
    }
  } catch (err) {
    // Silent longer than the idle bound: reconnect, as after a drop.
    if ((err as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT') {
      deps.log.debug({ handoverId: context.handoverId }, 'the Salesforce stream was idle too long; reconnecting');
      return;
    }
    throw err;
  } finally {
    clearTimeout(renewal);
    response.body.destroy();
  }
}

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
