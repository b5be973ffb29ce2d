import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { InboundEventByRef, InboundReceipt, InboundRequest, InboundResult } from '../connector.js';
import { cutInboundText, equalSecrets, firstSchemaError, headerValue } from '../connector-helpers.js';
import { readContent } from './zendesk-content.js';

/** The parts of a Sunshine Conversations v2 webhook we read; anything else in it is passed over. */
const envelopeSchema = Type.Object({
  app: Type.Object({ id: Type.String() }),
  events: Type.Array(
    Type.Object({
      id: Type.String({ minLength: 1, maxLength: 256 }),
      type: Type.String(),
      payload: Type.Optional(Type.Unknown()),
    }),
    { maxItems: 1000 },
  ),
});
const envelope = TypeCompiler.Compile(envelopeSchema);
type ZendeskEvent = Static<typeof envelopeSchema>['events'][number];

const conversationRef = Type.Optional(Type.Object({ id: Type.Optional(Type.String()) }));
const optionalText = Type.Optional(Type.Union([Type.String(), Type.Null()]));

/**
 * The payload fields of the events we act on, with their types. An event whose payload has other
 * types is acknowledged and dropped, like any event of no interest: refusing it would make Zendesk
 * send the whole batch again, and the batch's other events with it.
 */
const messagePayloadSchema = Type.Object({
  conversation: conversationRef,
  message: Type.Optional(
    Type.Object({
      id: Type.Optional(Type.String()),
      author: Type.Optional(Type.Object({ type: Type.Optional(Type.String()), displayName: optionalText, userId: optionalText })),
      content: Type.Optional(
        Type.Object({
          type: Type.Optional(Type.String()),
          text: optionalText,
          mediaUrl: optionalText,
          altText: optionalText,
          // Rich contents: read defensively (zendesk-content.ts), so an odd item does not drop the message.
          actions: Type.Optional(Type.Array(Type.Unknown())),
          items: Type.Optional(Type.Array(Type.Unknown())),
          coordinates: Type.Optional(Type.Unknown()),
          location: Type.Optional(Type.Unknown()),
        }),
      ),
    }),
  ),
});
const messagePayload = TypeCompiler.Compile(messagePayloadSchema);

/**
 * Control coming back from the agents: passed to the next integration (ours, or another bot), or, when
 * the agent workspace has none after it, released to nobody. Both carry the same reasons.
 */
const controlEvents = new Set(['switchboard:passControl', 'switchboard:releaseControl']);
const passControlPayloadSchema = Type.Object({ conversation: conversationRef, reason: Type.Optional(Type.Unknown()) });
const passControlPayload = TypeCompiler.Compile(passControlPayloadSchema);

/**
 * Verify → parse a Sunshine Conversations webhook. The webhook carries its static secret in
 * `X-API-Key` (compared in constant time). Events come in batches; each becomes a receipt of its
 * own (`events[].id`), so a retried batch applies only what is new. Kept: agent messages
 * (`conversation:message` by `business`) and control coming back from the agents
 * (`switchboard:passControl` or `switchboard:releaseControl` with a reason: `ticketClosed`, or
 * `transferToEmail` when the agent moved the ticket to email — either way the chat is the bot's again). Dropped, but acknowledged: our own
 * user messages coming back, control passing to the agents (our own action, which has no reason), and
 * every other trigger.
 */
export function handleZendeskInbound(config: { appId: string; webhookSecret: string }, request: InboundRequest): InboundResult {
  const key = headerValue(request.headers, 'x-api-key');
  if (!key || !equalSecrets(key, config.webhookSecret))
    return { ok: false, reason: 'bad_signature', message: 'X-API-Key is missing or does not match the webhook secret' };
  if (!envelope.Check(request.body)) {
    return { ok: false, reason: 'invalid_body', message: firstSchemaError(envelope, request.body) ?? 'not a Sunshine Conversations webhook body' };
  }
  const body = request.body;
  // Another app's events (a webhook pointed at the wrong connector) change nothing here.
  const ours = body.app.id === config.appId;
  const receipts: InboundReceipt[] = body.events.map((event) => {
    if (!ours) return { receiptId: event.id, events: [] };
    const unreadable = unreadablePayload(event);
    return unreadable ? { receiptId: event.id, events: [], unreadable } : { receiptId: event.id, events: toEvents(event) };
  });
  return { ok: true, receipts };
}

/** Why an event of a type we act on has a payload we cannot read (the first schema error), if it does. */
function unreadablePayload(event: ZendeskEvent): string | undefined {
  const schema = event.type === 'conversation:message' ? messagePayload : controlEvents.has(event.type) ? passControlPayload : undefined;
  const payload = event.payload ?? {};
  if (!schema || schema.Check(payload)) return undefined;
  return `${event.type} payload ${firstSchemaError(schema, payload) ?? 'not readable'}`;
}

function toEvents(event: ZendeskEvent): InboundEventByRef[] {
  if (event.type === 'conversation:message') {
    const payload = event.payload ?? {};
    if (!messagePayload.Check(payload)) return [];
    const conversationId = payload.conversation?.id;
    const message = payload.message;
    // Only the business side's messages are the agent's; user messages are our own, echoed.
    if (!conversationId || !message?.id || message.author?.type !== 'business') return [];
    const { text, attachments } = readContent(message.content ?? {});
    if (!text && attachments.length === 0) return [];
    const name = message.author.displayName;
    const agent = { id: name ? `zendesk:${name}` : 'zendesk-agent', ...(name ? { name } : {}) };
    return [{ type: 'message.created', externalRef: conversationId, message: { id: message.id, text: cutInboundText(text), attachments }, agent }];
  }
  if (controlEvents.has(event.type)) {
    const payload = event.payload ?? {};
    if (!passControlPayload.Check(payload)) return [];
    const reason = payload.reason;
    if (payload.conversation?.id && (reason === 'ticketClosed' || reason === 'transferToEmail')) {
      return [
        {
          type: 'handover.ended',
          externalRef: payload.conversation.id,
          reason: 'agent_ended',
          ...(reason === 'transferToEmail' ? { detail: 'The agent moved the conversation to email.' } : {}),
        },
      ];
    }
  }
  return [];
}
