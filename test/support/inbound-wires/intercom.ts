import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { hostileString, jsonValue } from '../hostile-input.js';
import { field, mutants, names, randomKey, withHeaders, type InboundWire } from './wire.js';

// Intercom: `X-Hub-Signature: sha1=<hex HMAC-SHA1 of the body>` under the app's client secret; no
// timestamp; one notification per call, its id the same on every delivery attempt.

type IntercomSignature = 'correct' | 'missing' | 'wrongSecret' | 'otherBody' | 'upper' | 'noPrefix' | 'sha256' | 'base64' | 'truncated' | { hostile: string };

export interface IntercomAuth {
  signature: IntercomSignature;
}

export function intercomWire(live: { secret: string; conversationId: string }): InboundWire<IntercomAuth> {
  const mac = (secret: string | Buffer, content: string, algorithm = 'sha1', encoding: 'hex' | 'base64' = 'hex') =>
    createHmac(algorithm, secret).update(content).digest(encoding);
  const notWatched = (body: unknown) => !names(field(field(field(body, 'data'), 'item'), 'id'), live.conversationId);
  const part = {
    type: 'conversation_part',
    id: '9001',
    part_type: 'comment',
    body: '<p>hello</p>',
    author: { type: 'admin', id: '7002', name: 'Ada', email: 'ada@acme.test' },
    assigned_to: null,
    attachments: [{ type: 'upload', name: 'a.png', url: 'https://example.com/a.png', content_type: 'image/png' }],
  };
  const notification = (topic: string, parts: unknown[]) => ({
    type: 'notification_event',
    app_id: 'app1',
    id: 'notif_00000000-0000-4000-8000-000000000000',
    topic,
    data: {
      type: 'notification_event_data',
      item: {
        type: 'conversation',
        id: '999999999',
        conversation_parts: { type: 'conversation_part.list', conversation_parts: parts, total_count: parts.length },
      },
    },
    delivery_attempts: 1,
  });
  // Valid notifications for a conversation we never opened, with fields broken or removed.
  const mutated = mutants(
    [
      notification('conversation.admin.replied', [part]),
      notification('conversation.admin.assigned', [{ ...part, part_type: 'assignment', body: null, assigned_to: { type: 'team', id: '502' } }]),
      notification('conversation.admin.closed', [{ ...part, part_type: 'close', body: null }]),
    ],
    notWatched,
  );
  // Notification-shaped bodies of any types.
  const shaped = fc
    .record(
      {
        type: fc.oneof(fc.constant('notification_event'), jsonValue),
        id: fc.oneof(hostileString, jsonValue),
        topic: fc.oneof(
          fc.constantFrom('conversation.admin.replied', 'conversation.admin.assigned', 'conversation.admin.closed', 'ping', 'toString'),
          hostileString,
        ),
        data: fc.oneof(
          fc.record({
            item: fc.oneof(
              fc.record({
                id: fc.oneof(fc.constant('999999999'), hostileString, jsonValue),
                conversation_parts: fc.oneof(fc.record({ conversation_parts: fc.oneof(fc.array(jsonValue, { maxLength: 3 }), jsonValue) }), jsonValue),
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
    name: 'intercom',
    longText: 'cut',
    auth: fc.record({
      signature: fc.oneof(
        { weight: 12, arbitrary: fc.constant<IntercomSignature>('correct') },
        {
          weight: 6,
          arbitrary: fc.constantFrom<IntercomSignature>('missing', 'wrongSecret', 'otherBody', 'upper', 'noPrefix', 'sha256', 'base64', 'truncated'),
        },
        { weight: 1, arbitrary: hostileString.map((hostile) => ({ hostile })) },
      ),
    }),
    verifies: (auth) => auth.signature === 'correct',
    headers(auth, raw) {
      const good = mac(live.secret, raw);
      const s = auth.signature;
      const signature =
        typeof s === 'object'
          ? s.hostile
          : {
              correct: `sha1=${good}`,
              missing: undefined,
              wrongSecret: `sha1=${mac(randomKey(), raw)}`,
              otherBody: `sha1=${mac(live.secret, `${raw} `)}`,
              upper: `sha1=${good.toUpperCase()}`,
              noPrefix: good,
              sha256: `sha256=${mac(live.secret, raw, 'sha256')}`,
              base64: `sha1=${mac(live.secret, raw, 'sha1', 'base64')}`,
              truncated: `sha1=${good.slice(0, -2)}`,
            }[s];
      return withHeaders([['x-hub-signature', signature]]);
    },
    // An admin's reply as apps on API version 2.15 and later get it: the body in plain text.
    validEvent: (n, text, idTail) =>
      JSON.stringify({
        type: 'notification_event',
        app_id: 'app1',
        id: `notif_${n}${idTail ? `-${idTail}` : ''}`,
        topic: 'conversation.admin.replied',
        data: {
          type: 'notification_event_data',
          item: {
            type: 'conversation',
            id: live.conversationId,
            conversation_parts: {
              type: 'conversation_part.list',
              conversation_parts: [{ ...part, id: `${70_000_000 + n}${idTail ? `-${idTail}` : ''}`, body: text, attachments: [] }],
              total_count: 1,
            },
          },
        },
        delivery_attempts: 1,
        first_sent_at: Math.floor(Date.now() / 1000),
        created_at: Math.floor(Date.now() / 1000),
      }),
    hostileEvent: fc.oneof({ weight: 2, arbitrary: mutated }, { weight: 1, arbitrary: shaped }),
  };
}
