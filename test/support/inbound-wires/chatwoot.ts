import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { headerSafe, hostileString, jsonValue } from '../hostile-input.js';
import { field, mutants, names, randomKey, stamp, stampValue, withHeaders, type InboundWire, type Stamp } from './wire.js';

// Chatwoot: `X-Chatwoot-Signature: sha256=<hex HMAC-SHA256 of "{X-Chatwoot-Timestamp}.{body}">` under
// the webhook secret; one event per call.

type ChatwootSignature =
  'correct' | 'missing' | 'wrongSecret' | 'otherBody' | 'otherStamp' | 'upper' | 'noPrefix' | 'sha1' | 'base64' | 'truncated' | { hostile: string };

export interface ChatwootAuth {
  stamp: Stamp;
  signature: ChatwootSignature;
  delivery: string | undefined;
}

export function chatwootWire(live: { secret: string; conversationId: number }): InboundWire<ChatwootAuth> {
  const mac = (secret: string | Buffer, content: string, algorithm = 'sha256', encoding: 'hex' | 'base64' = 'hex') =>
    createHmac(algorithm, secret).update(content).digest(encoding);
  const unknownConversation = fc.oneof(fc.integer({ min: 1_000_000_000 }), hostileString, jsonValue);
  const notWatched = (event: unknown) =>
    !names(field(event, 'id'), live.conversationId) && !names(field(field(event, 'conversation'), 'id'), live.conversationId);
  // Valid events for a conversation we never opened, with fields broken or removed. (`id` names the
  // conversation in status and update events: never the watched one.)
  const mutated = mutants(
    [
      {
        event: 'message_created',
        id: 7,
        content: 'hello',
        message_type: 'outgoing',
        private: false,
        sender: { id: 1, name: 'Cora', type: 'user' },
        conversation: { id: 999_999_999 },
        attachments: [{ data_url: 'https://example.com/a.png', file_type: 'image' }],
      },
      { event: 'conversation_status_changed', id: 999_999_999, status: 'resolved' },
      { event: 'conversation_typing_on', conversation: { id: 999_999_999 }, user: { id: 1, type: 'user' }, is_private: false },
      {
        event: 'conversation_updated',
        id: 999_999_999,
        changed_attributes: [{ assignee_id: { previous_value: null, current_value: 1 } }, { team_id: { previous_value: null, current_value: 2 } }],
        meta: { assignee: { id: 1, name: 'Cora' }, team: { id: 2, name: 'Billing' } },
      },
    ],
    notWatched,
  );
  // Webhook-shaped bodies of any types.
  const shaped = fc
    .record(
      {
        event: fc.oneof(
          fc.constantFrom(
            'message_created',
            'conversation_status_changed',
            'conversation_typing_on',
            'conversation_typing_off',
            'conversation_updated',
            'webwidget_triggered',
          ),
          hostileString,
        ),
        id: fc.oneof(fc.integer({ min: 1_000_000_000 }), hostileString, jsonValue),
        content: fc.oneof(hostileString, jsonValue),
        message_type: fc.oneof(fc.constantFrom('outgoing', 'incoming', 'activity'), jsonValue),
        private: fc.oneof(fc.boolean(), jsonValue),
        is_private: fc.oneof(fc.boolean(), jsonValue),
        status: fc.oneof(fc.constantFrom('resolved', 'open', 'pending'), jsonValue),
        sender: fc.oneof(
          fc.record({
            id: fc.oneof(fc.integer(), jsonValue),
            name: fc.oneof(hostileString, jsonValue),
            type: fc.oneof(fc.constantFrom('user', 'contact', 'agent_bot'), jsonValue),
          }),
          jsonValue,
        ),
        user: fc.oneof(fc.record({ id: fc.integer(), type: fc.constantFrom('user', 'contact') }), jsonValue),
        conversation: fc.oneof(fc.record({ id: unknownConversation }), jsonValue),
        attachments: fc.oneof(fc.array(fc.record({ data_url: fc.oneof(hostileString, jsonValue), file_type: hostileString }), { maxLength: 3 }), jsonValue),
        changed_attributes: fc.oneof(fc.constantFrom([{ assignee_id: {} }], [{ team_id: {} }], [{ assignee_id: {} }, { team_id: {} }]), jsonValue),
        meta: fc.oneof(
          fc.record({
            assignee: fc.oneof(fc.record({ id: fc.integer(), name: hostileString }), jsonValue),
            team: fc.oneof(fc.record({ id: fc.integer(), name: hostileString }), jsonValue),
          }),
          jsonValue,
        ),
      },
      { requiredKeys: [] },
    )
    .filter(notWatched)
    .map((event) => JSON.stringify(event));
  return {
    name: 'chatwoot',
    longText: 'cut',
    auth: fc.record({
      stamp,
      signature: fc.oneof(
        { weight: 12, arbitrary: fc.constant<ChatwootSignature>('correct') },
        {
          weight: 6,
          arbitrary: fc.constantFrom<ChatwootSignature>(
            'missing',
            'wrongSecret',
            'otherBody',
            'otherStamp',
            'upper',
            'noPrefix',
            'sha1',
            'base64',
            'truncated',
          ),
        },
        { weight: 1, arbitrary: hostileString.map((hostile) => ({ hostile })) },
      ),
      delivery: fc.option(hostileString, { nil: undefined }),
    }),
    verifies: (auth) => auth.stamp.at === 'now' && auth.signature === 'correct',
    headers(auth, raw) {
      const timestamp = stampValue(auth.stamp);
      const ts = timestamp === undefined ? '' : headerSafe(timestamp);
      const good = mac(live.secret, `${ts}.${raw}`);
      const s = auth.signature;
      const signature =
        typeof s === 'object'
          ? s.hostile
          : {
              correct: `sha256=${good}`,
              missing: undefined,
              wrongSecret: `sha256=${mac(randomKey(), `${ts}.${raw}`)}`,
              otherBody: `sha256=${mac(live.secret, `${ts}.${raw} `)}`,
              otherStamp: `sha256=${mac(live.secret, `${Number(ts) + 1}.${raw}`)}`,
              upper: `sha256=${good.toUpperCase()}`,
              noPrefix: good,
              sha1: `sha1=${mac(live.secret, `${ts}.${raw}`, 'sha1')}`,
              base64: `sha256=${mac(live.secret, `${ts}.${raw}`, 'sha256', 'base64')}`,
              truncated: `sha256=${good.slice(0, -2)}`,
            }[s];
      return withHeaders([
        ['x-chatwoot-signature', signature],
        ['x-chatwoot-timestamp', timestamp],
        ['x-chatwoot-delivery', auth.delivery],
      ]);
    },
    validEvent: (n, text, idTail) =>
      JSON.stringify({
        event: 'message_created',
        id: idTail ? `${50_000_000 + n}-${idTail}` : 50_000_000 + n,
        content: text,
        message_type: 'outgoing',
        private: false,
        sender: { id: 1, name: 'Cora', type: 'user' },
        conversation: { id: live.conversationId },
        account: { id: 3 },
        inbox: { id: 7 },
      }),
    hostileEvent: fc.oneof({ weight: 2, arbitrary: mutated }, { weight: 1, arbitrary: shaped }),
  };
}
