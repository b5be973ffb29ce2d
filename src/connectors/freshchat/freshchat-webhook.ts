import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { InboundEventByRef, InboundRequest, InboundResult } from '../connector.js';
import { cutInboundText, firstSchemaError, headerValue, nullable } from '../connector-helpers.js';
import { readParts } from './freshchat-content.js';

const str = nullable(Type.String());
const part = Type.Object({
  text: nullable(Type.Object({ content: str })),
  image: nullable(Type.Object({ url: str })),
  file: nullable(Type.Object({ url: str, name: str, content_type: str })),
  url_button: nullable(Type.Object({ url: str, label: str })),
});
const conversationRef = Type.Object({ conversation_id: Type.String({ minLength: 1 }) });

/**
 * The fields of a Freshchat webhook that the actions we act on are read from; the rest of the body is
 * passed over. Such an event whose fields have other types is refused rather than guessed at; other
 * actions are acknowledged unread.
 */
const schemas = {
  message_create: Type.Object({
    action_time: Type.String(),
    data: Type.Object({
      message: Type.Object({
        id: Type.String({ minLength: 1 }),
        conversation_id: Type.String({ minLength: 1 }),
        actor_type: Type.String(),
        actor_id: str,
        message_type: str,
        message_parts: nullable(Type.Array(part)),
        botsPrivateNote: nullable(Type.Boolean()),
      }),
    }),
  }),
  conversation_assignment: Type.Object({
    action_time: Type.String(),
    data: Type.Object({
      assignment: Type.Object({
        assignor: str,
        assignor_id: str,
        to_agent_id: str,
        to_group_id: str,
        from_agent_id: str,
        from_group_id: str,
        conversation: conversationRef,
      }),
    }),
  }),
  conversation_resolution: Type.Object({
    action_time: Type.String(),
    data: Type.Object({ resolve: Type.Object({ resolver: str, resolver_id: str, conversation: conversationRef }) }),
  }),
};
const checkers = {
  message_create: TypeCompiler.Compile(schemas.message_create),
  conversation_assignment: TypeCompiler.Compile(schemas.conversation_assignment),
  conversation_resolution: TypeCompiler.Compile(schemas.conversation_resolution),
};
type Action = keyof typeof schemas;

export interface FreshchatInboundConfig {
  agentId: string;
  groups?: Record<string, string> | undefined;
}

/**
 * The webhook's public key as Freshchat shows it, in whichever form it was pasted: a PEM, or only its
 * base64 body, on one line or several. Freshchat labels the key `RSA PUBLIC KEY` although its body is a
 * SubjectPublicKeyInfo (`MIIBIj…`), which a PEM reader refuses under that label; so the label is not
 * trusted: the body is read as SubjectPublicKeyInfo, and else as a PKCS#1 RSA key.
 */
export function readPublicKey(text: string): KeyObject {
  const body = text.replace(/-----(BEGIN|END)[^-]*-----/g, '').replace(/\s+/g, '');
  const der = Buffer.from(body, 'base64');
  try {
    return createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    return createPublicKey({ key: der, format: 'der', type: 'pkcs1' });
  }
}

/**
 * Verify → parse one Freshchat webhook. Freshchat signs the raw body with its RSA key (SHA-256) and sends
 * the base64 signature in `X-Freshchat-Signature`; it is checked with the public key the webhook page
 * shows. Freshchat's events carry no event id and no signed timestamp: a message's receipt is its
 * message id, another event's its action, conversation and `action_time` (a redelivery, counted by
 * `X-Retry-Count`, repeats the same body).
 *
 * Kept: agents' messages (`message_create`, `actor_type: agent`, not `private`), an assignment to an
 * agent (the agent joined) or to another group (transfer), the conversation resolved (the agent ended).
 * Dropped, but acknowledged: the user's messages (ours, coming back), private notes (ours among them),
 * bots' and system messages, our own assignment, reopening, anything else.
 */
export function handleFreshchatInbound(config: FreshchatInboundConfig, publicKey: KeyObject | Error, request: InboundRequest): InboundResult {
  const signature = headerValue(request.headers, 'x-freshchat-signature');
  if (!signature) return { ok: false, reason: 'bad_signature', message: 'X-Freshchat-Signature is required' };
  if (publicKey instanceof Error) return { ok: false, reason: 'bad_signature', message: "the connector's webhookPublicKey is not a readable RSA public key" };
  if (!verifies(request.rawBody, publicKey, signature)) return { ok: false, reason: 'bad_signature', message: 'X-Freshchat-Signature does not match' };
  const body = request.body as { action?: unknown; action_time?: unknown } | null;
  if (!body || typeof body !== 'object' || typeof body.action !== 'string' || typeof body.action_time !== 'string') {
    return { ok: false, reason: 'invalid_body', message: 'not a Freshchat webhook body (action and action_time)' };
  }
  const action = body.action;
  if (!Object.hasOwn(checkers, action)) return { ok: true, receipts: [{ receiptId: `${action}:${body.action_time}:${conversationOf(body)}`, events: [] }] };
  const checker = checkers[action as Action];
  if (!checker.Check(body)) {
    return { ok: false, reason: 'invalid_body', message: firstSchemaError(checker, body) ?? 'not a Freshchat webhook body' };
  }
  return { ok: true, receipts: [toReceipt(config, action as Action, body)] };
}

function verifies(rawBody: string, publicKey: KeyObject, signature: string): boolean {
  try {
    return verify('sha256', Buffer.from(rawBody), publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** The conversation an event names, for the receipt of an event not read further. */
function conversationOf(body: unknown): string {
  const data = (body as { data?: Record<string, { conversation_id?: unknown; conversation?: { conversation_id?: unknown } }> }).data;
  const inner = data && typeof data === 'object' ? Object.values(data)[0] : undefined;
  const id = inner?.conversation_id ?? inner?.conversation?.conversation_id;
  return typeof id === 'string' ? id : '';
}

function toReceipt(config: FreshchatInboundConfig, action: Action, raw: unknown): { receiptId: string; events: InboundEventByRef[] } {
  switch (action) {
    case 'message_create': {
      const { message } = (raw as Static<typeof schemas.message_create>).data;
      const receiptId = `message:${message.id}`;
      // Only an agent's public message; the user's are ours coming back, private ones are notes, and
      // what the connector's own agent wrote (the transcript note) is ours, whether or not the payload
      // says `message_type` (the current sample payloads do not).
      if (message.actor_type !== 'agent' || message.message_type === 'private' || message.botsPrivateNote === true || message.actor_id === config.agentId)
        return { receiptId, events: [] };
      const { text, attachments } = readParts(message.message_parts);
      if (!text && attachments.length === 0) return { receiptId, events: [] };
      const agent = { id: `freshchat:${message.actor_id ?? 'agent'}` };
      return {
        receiptId,
        events: [
          { type: 'message.created', externalRef: message.conversation_id, message: { id: message.id, text: cutInboundText(text), attachments }, agent },
        ],
      };
    }
    case 'conversation_assignment': {
      const body = raw as Static<typeof schemas.conversation_assignment>;
      const a = body.data.assignment;
      const externalRef = a.conversation.conversation_id;
      const receiptId = `assignment:${externalRef}:${body.action_time}`;
      if (a.assignor_id === config.agentId) return { receiptId, events: [] };
      const events: InboundEventByRef[] = [];
      if (a.to_agent_id && a.to_agent_id !== a.from_agent_id) events.push({ type: 'agent.joined', externalRef, agent: { id: `freshchat:${a.to_agent_id}` } });
      // A move to another group is a transfer; the first assignment to a group (from none) is ours.
      if (a.to_group_id && a.from_group_id && a.to_group_id !== a.from_group_id) {
        const queue = Object.entries(config.groups ?? {}).find(([, group]) => group === a.to_group_id)?.[0];
        events.push({ type: 'handover.transferred', externalRef, data: { groupId: a.to_group_id, ...(queue ? { queue } : {}) } });
      }
      return { receiptId, events };
    }
    case 'conversation_resolution': {
      const body = raw as Static<typeof schemas.conversation_resolution>;
      const externalRef = body.data.resolve.conversation.conversation_id;
      return { receiptId: `resolution:${externalRef}:${body.action_time}`, events: [{ type: 'handover.ended', externalRef, reason: 'agent_ended' }] };
    }
  }
}
