import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { verify } from '../../outbound/index.js';
import { isOwnEventId } from '../../store/ids.js';
import { endReasons, type EndReason } from '../../model/handover.js';
import type { InboundEvent, InboundRequest, InboundResult } from '../connector.js';
import { cutInboundText, firstSchemaError, headerValue } from '../connector-helpers.js';

// Fields of their own are passed over: only these three reach the bot.
const attachment = Type.Object({
  url: Type.String({ maxLength: 2048, pattern: '^[hH][tT][tT][pP][sS]?://' }),
  name: Type.Optional(Type.String({ maxLength: 256 })),
  contentType: Type.Optional(Type.String({ maxLength: 128 })),
});
const agent = Type.Object({ id: Type.String({ minLength: 1, maxLength: 256 }), name: Type.Optional(Type.String({ maxLength: 256 })) });

/** What a helpdesk may send to `POST /v1/connectors/{connectorId}/events` (docs/generic-webhook.md). */
export const inboundBodySchema = Type.Union([
  Type.Object({ type: Type.Literal('agent.joined'), handoverId: Type.String(), data: Type.Object({ agent }) }),
  Type.Object({
    type: Type.Literal('message.created'),
    handoverId: Type.String(),
    data: Type.Object({
      message: Type.Object({
        id: Type.String({ minLength: 1, maxLength: 256 }),
        // Longer texts are cut (cutInboundText), as every connector cuts an agent's text; the body limit bounds it.
        text: Type.String(),
        attachments: Type.Optional(Type.Array(attachment, { maxItems: 20 })),
      }),
      agent: Type.Optional(agent),
    }),
  }),
  Type.Object({ type: Type.Literal('agent.typing'), handoverId: Type.String(), data: Type.Object({ typing: Type.Boolean() }) }),
  Type.Object({
    type: Type.Literal('queue.updated'),
    handoverId: Type.String(),
    data: Type.Optional(
      Type.Object({ position: Type.Optional(Type.Integer({ minimum: 0 })), estimatedWaitSeconds: Type.Optional(Type.Integer({ minimum: 0 })) }),
    ),
  }),
  Type.Object({ type: Type.Literal('handover.transferred'), handoverId: Type.String(), data: Type.Optional(Type.Record(Type.String(), Type.Unknown())) }),
  Type.Object({
    type: Type.Literal('handover.ended'),
    handoverId: Type.String(),
    // A reason of the helpdesk's own ("resolved", say) ends the handover as the agent's end, the reason kept as its detail.
    data: Type.Optional(Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) })),
  }),
]);
type InboundBody = Static<typeof inboundBodySchema>;
const checker = TypeCompiler.Compile(inboundBodySchema);

/** Verify → parse: the helpdesk signs with the connector's secret, exactly as we sign towards it. */
export function handleWebhookInbound(secret: string, request: InboundRequest): InboundResult {
  // A timestamp in milliseconds is the one mistake worth naming: it would read as far in the future.
  if (/^\d{13,}$/.test(headerValue(request.headers, 'webhook-timestamp') ?? '')) {
    return { ok: false, reason: 'stale_timestamp', message: 'webhook-timestamp is in seconds since the epoch, not milliseconds' };
  }
  const result = verify(
    secret,
    {
      id: headerValue(request.headers, 'webhook-id'),
      timestamp: headerValue(request.headers, 'webhook-timestamp'),
      signature: headerValue(request.headers, 'webhook-signature'),
    },
    request.rawBody,
  );
  if (!result.ok) {
    return result.reason === 'stale_timestamp'
      ? { ok: false, reason: 'stale_timestamp', message: 'webhook-timestamp is more than 5 minutes away from our clock' }
      : {
          ok: false,
          reason: 'bad_signature',
          message:
            result.reason === 'missing_headers' ? 'webhook-id, webhook-timestamp and webhook-signature are required' : 'webhook-signature does not match',
        };
  }
  // Both directions share the secret, so one of our own signed requests would verify here too: a
  // request carrying one of our event ids is an echo or a replay of what we sent, never the helpdesk.
  if (isOwnEventId(result.id)) {
    return {
      ok: false,
      reason: 'bad_signature',
      message: "webhook-id is one of this service's own event ids: what we send is never taken back as the helpdesk's",
    };
  }
  if (!checker.Check(request.body)) {
    return { ok: false, reason: 'invalid_body', message: firstSchemaError(checker, request.body) ?? 'body does not match the event schema' };
  }
  return { ok: true, receiptId: result.id, events: [toEvent(request.body)] };
}

function toEvent(body: InboundBody): InboundEvent {
  switch (body.type) {
    case 'agent.joined':
      return { type: 'agent.joined', handoverId: body.handoverId, agent: body.data.agent };
    case 'message.created':
      return {
        type: 'message.created',
        handoverId: body.handoverId,
        message: {
          id: body.data.message.id,
          text: cutInboundText(body.data.message.text),
          attachments: (body.data.message.attachments ?? []).map((a) => ({
            url: a.url,
            ...(a.name !== undefined ? { name: a.name } : {}),
            ...(a.contentType !== undefined ? { contentType: a.contentType } : {}),
          })),
        },
        ...(body.data.agent ? { agent: body.data.agent } : {}),
      };
    case 'agent.typing':
      return { type: 'agent.typing', handoverId: body.handoverId, typing: body.data.typing };
    case 'queue.updated':
      return { type: 'queue.updated', handoverId: body.handoverId, ...(body.data ?? {}) };
    case 'handover.transferred':
      return { type: 'handover.transferred', handoverId: body.handoverId, data: body.data ?? {} };
    case 'handover.ended':
      return endedBy(body.handoverId, body.data?.reason);
  }
}

const knownReasons: ReadonlySet<string> = new Set(endReasons);

/** The helpdesk's end: one of handover's reasons as given, any other as the agent's end with it as the detail. */
function endedBy(handoverId: string, reason: string | undefined): InboundEvent {
  if (reason === undefined) return { type: 'handover.ended', handoverId, reason: 'agent_ended' };
  if (knownReasons.has(reason)) return { type: 'handover.ended', handoverId, reason: reason as EndReason };
  return { type: 'handover.ended', handoverId, reason: 'agent_ended', detail: reason };
}
