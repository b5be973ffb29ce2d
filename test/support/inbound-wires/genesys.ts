import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { hostileString, jsonValue } from '../hostile-input.js';
import { field, mutants, names, randomKey, withHeaders, type InboundWire } from './wire.js';

// Genesys Cloud Open Messaging: `X-Hub-Signature-256: sha256=<base64 HMAC-SHA256 of the body>` under the
// integration's outbound notification webhook signature secret token; no timestamp; one normalized
// message per call, the same body on every retry. The user is `channel.to.id`.

type GenesysSignature = 'correct' | 'missing' | 'wrongSecret' | 'otherBody' | 'hex' | 'noPrefix' | 'sha1' | 'sha1Prefix' | 'truncated' | { hostile: string };

export interface GenesysAuth {
  signature: GenesysSignature;
}

export function genesysWire(live: { secret: string; integrationId: string; userRef: string }): InboundWire<GenesysAuth> {
  const mac = (secret: string | Buffer, content: string, algorithm = 'sha256', encoding: 'hex' | 'base64' = 'base64') =>
    createHmac(algorithm, secret).update(content).digest(encoding);
  const notWatched = (body: unknown) => !names(field(field(field(body, 'channel'), 'to'), 'id'), live.userRef);
  const channel = (to: string) => ({
    id: live.integrationId,
    platform: 'Open',
    type: 'Private',
    to: { id: to },
    from: { nickname: 'Ada', id: live.integrationId, idType: 'Opaque' },
    time: '2026-01-01T00:00:00.000Z',
    messageId: 'm0',
  });
  const message = (fields: Record<string, unknown>) => ({
    id: '0123456789abcdef0123456789abcdef',
    channel: channel('ho_someone_else'),
    direction: 'Outbound',
    ...fields,
  });
  // Valid messages for a user we never handed over, with fields broken or removed.
  const mutated = mutants(
    [
      message({
        type: 'Text',
        text: 'hello',
        originatingEntity: 'Human',
        content: [{ contentType: 'Attachment', attachment: { mediaType: 'Image', url: 'https://example.com/a.png', mime: 'image/png', filename: 'a.png' } }],
      }),
      message({ type: 'Event', events: [{ eventType: 'Typing', typing: { type: 'On', duration: 5000 } }] }),
      message({ type: 'Event', events: [{ eventType: 'Presence', presence: { type: 'Disconnect' } }] }),
      message({ type: 'Receipt', status: 'Delivered', isFinalReceipt: true, direction: 'Inbound' }),
    ],
    notWatched,
  );
  // Normalized-message-shaped bodies of any types.
  const shaped = fc
    .record(
      {
        id: fc.oneof(hostileString, jsonValue),
        type: fc.oneof(fc.constantFrom('Text', 'Structured', 'Event', 'Receipt', 'toString'), hostileString, jsonValue),
        direction: fc.oneof(fc.constant('Outbound'), jsonValue),
        text: fc.oneof(hostileString, jsonValue),
        content: fc.oneof(fc.array(jsonValue, { maxLength: 3 }), jsonValue),
        events: fc.oneof(fc.array(jsonValue, { maxLength: 3 }), jsonValue),
        channel: fc.oneof(
          fc.record({
            to: fc.oneof(fc.record({ id: fc.oneof(fc.constant('ho_someone_else'), hostileString, jsonValue) }), jsonValue),
            time: fc.oneof(hostileString, jsonValue),
          }),
          jsonValue,
        ),
      },
      { requiredKeys: [] },
    )
    .filter(notWatched)
    .map((body) => JSON.stringify(body));
  return {
    name: 'genesys',
    longText: 'cut',
    auth: fc.record({
      signature: fc.oneof(
        { weight: 12, arbitrary: fc.constant<GenesysSignature>('correct') },
        {
          weight: 6,
          arbitrary: fc.constantFrom<GenesysSignature>('missing', 'wrongSecret', 'otherBody', 'hex', 'noPrefix', 'sha1', 'sha1Prefix', 'truncated'),
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
              correct: `sha256=${good}`,
              missing: undefined,
              wrongSecret: `sha256=${mac(randomKey(), raw)}`,
              otherBody: `sha256=${mac(live.secret, `${raw} `)}`,
              hex: `sha256=${mac(live.secret, raw, 'sha256', 'hex')}`,
              noPrefix: good,
              sha1: `sha256=${mac(live.secret, raw, 'sha1')}`,
              sha1Prefix: `sha1=${good}`,
              truncated: `sha256=${good.slice(0, -2)}`,
            }[s];
      return withHeaders([['x-hub-signature-256', signature]]);
    },
    // An agent's text message for the watched user.
    validEvent: (n, text, idTail) =>
      JSON.stringify({
        id: `${String(n).padStart(32, '0')}${idTail ? `-${idTail}` : ''}`,
        channel: { ...channel(live.userRef), time: new Date().toISOString(), messageId: String(n) },
        type: 'Text',
        text,
        originatingEntity: 'Human',
        direction: 'Outbound',
      }),
    hostileEvent: fc.oneof({ weight: 2, arbitrary: mutated }, { weight: 1, arbitrary: shaped }),
  };
}
