import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { hostileString, jsonValue } from '../hostile-input.js';
import { field, mutants, names, withHeaders, type InboundWire } from './wire.js';

// Freshchat: `X-Freshchat-Signature`, the base64 RSA signature (SHA-256) of the body, checked with the
// account's public key; no timestamp and no event id; one event per call.

type FreshchatSignature = 'correct' | 'missing' | 'otherKey' | 'otherBody' | 'hex' | 'truncated' | 'sha1' | { hostile: string };

export interface FreshchatAuth {
  signature: FreshchatSignature;
}

export function freshchatWire(live: { privateKey: KeyObject; conversationId: string }): InboundWire<FreshchatAuth> {
  const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const rsa = (content: string, key = live.privateKey, algorithm = 'sha256') => sign(algorithm, Buffer.from(content), key);
  const conversationOf = (body: unknown) => {
    const data = field(body, 'data');
    return (
      field(field(data, 'message'), 'conversation_id') ??
      field(field(field(data, 'assignment'), 'conversation'), 'conversation_id') ??
      field(field(field(data, 'resolve'), 'conversation'), 'conversation_id')
    );
  };
  const notWatched = (body: unknown) => !names(conversationOf(body), live.conversationId);
  const other = 'c0ffee00-0000-4000-8000-000000000000';
  const message = {
    message_parts: [{ text: { content: 'hello' } }, { image: { url: 'https://example.com/a.png' } }],
    app_id: 'app',
    actor_id: 'agent-ada',
    id: 'm-1',
    channel_id: 'ch',
    conversation_id: other,
    message_type: 'normal',
    actor_type: 'agent',
    created_time: '2026-01-01T00:00:00.000Z',
    user_id: 'u',
  };
  // Valid events for a conversation we never opened, with fields broken or removed.
  const mutated = mutants(
    [
      { actor: { actor_type: 'agent', actor_id: 'agent-ada' }, action: 'message_create', action_time: '2026-01-01T00:00:00.000Z', data: { message } },
      {
        actor: { actor_type: 'agent', actor_id: 'agent-ada' },
        action: 'conversation_assignment',
        action_time: '2026-01-01T00:00:00.000Z',
        data: {
          assignment: {
            assignor: 'agent',
            assignor_id: 'agent-ada',
            to_agent_id: 'agent-ada',
            to_group_id: 'g2',
            from_agent_id: '',
            from_group_id: 'g1',
            conversation: { conversation_id: other, status: 'assigned' },
          },
        },
      },
      {
        actor: { actor_type: 'agent', actor_id: 'agent-ada' },
        action: 'conversation_resolution',
        action_time: '2026-01-01T00:00:00.000Z',
        data: { resolve: { resolver: 'agent', resolver_id: 'agent-ada', conversation: { conversation_id: other, status: 'resolved' } } },
      },
    ],
    notWatched,
  );
  // Event-shaped bodies of any types.
  const shaped = fc
    .record(
      {
        actor: fc.oneof(
          fc.record({ actor_type: fc.oneof(fc.constantFrom('agent', 'user', 'system'), jsonValue), actor_id: fc.oneof(hostileString, jsonValue) }),
          jsonValue,
        ),
        action: fc.oneof(
          fc.constantFrom('message_create', 'conversation_assignment', 'conversation_resolution', 'conversation_reopen', 'toString', '__proto__'),
          hostileString,
        ),
        action_time: fc.oneof(hostileString, jsonValue),
        data: fc.oneof(
          fc.record({
            message: fc.oneof(
              fc.record({
                id: fc.oneof(hostileString, jsonValue),
                conversation_id: fc.oneof(fc.constant(other), hostileString, jsonValue),
                actor_type: fc.oneof(fc.constant('agent'), jsonValue),
                message_parts: fc.oneof(fc.array(jsonValue, { maxLength: 3 }), jsonValue),
              }),
              jsonValue,
            ),
          }),
          jsonValue,
        ),
      },
      { requiredKeys: [] },
    )
    .filter(notWatched)
    .map((body) => JSON.stringify(body));
  return {
    name: 'freshchat',
    longText: 'cut',
    auth: fc.record({
      signature: fc.oneof(
        { weight: 12, arbitrary: fc.constant<FreshchatSignature>('correct') },
        { weight: 6, arbitrary: fc.constantFrom<FreshchatSignature>('missing', 'otherKey', 'otherBody', 'hex', 'truncated', 'sha1') },
        { weight: 1, arbitrary: hostileString.map((hostile) => ({ hostile })) },
      ),
    }),
    verifies: (auth) => auth.signature === 'correct',
    headers(auth, raw) {
      const s = auth.signature;
      const signature =
        typeof s === 'object'
          ? s.hostile
          : {
              correct: rsa(raw).toString('base64'),
              missing: undefined,
              otherKey: rsa(raw, otherKey).toString('base64'),
              otherBody: rsa(`${raw} `).toString('base64'),
              hex: rsa(raw).toString('hex'),
              truncated: rsa(raw).subarray(0, -3).toString('base64'),
              sha1: rsa(raw, live.privateKey, 'sha1').toString('base64'),
            }[s];
      return withHeaders([
        ['x-freshchat-signature', signature],
        ['x-retry-count', '0'],
        ['x-freshchat-payload-version', '1.0'],
      ]);
    },
    validEvent: (n, text, idTail) =>
      JSON.stringify({
        actor: { actor_type: 'agent', actor_id: 'agent-ada' },
        action: 'message_create',
        action_time: new Date().toISOString(),
        data: {
          message: {
            ...message,
            id: `m-${n}${idTail ? `-${idTail}` : ''}`,
            conversation_id: live.conversationId,
            message_parts: [{ text: { content: text } }],
          },
        },
      }),
    hostileEvent: fc.oneof({ weight: 2, arbitrary: mutated }, { weight: 1, arbitrary: shaped }),
  };
}
