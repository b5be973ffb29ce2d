import { createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { headerSafe, hostileString, jsonValue } from '../hostile-input.js';
import { base32, mutants, randomKey, stamp, stampValue, withHeaders, type InboundWire, type Stamp } from './wire.js';

// Generic webhook: Standard Webhooks, `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under the
// base64-decoded `whsec_` secret; the service refuses ids shaped like its own event ids.

type WebhookSignature =
  | 'correct'
  | 'rotated'
  | 'missing'
  | 'wrongSecret'
  | 'otherBody'
  | 'otherId'
  | 'otherStamp'
  | 'noVersion'
  | 'v2'
  | 'hex'
  | 'truncated'
  | 'random'
  | 'onlyBad'
  | 'empty'
  | { hostile: string };

export interface WebhookAuth {
  id: { kind: 'fresh'; suffix: string } | { kind: 'missing' } | { kind: 'ownEventId' };
  stamp: Stamp;
  signature: WebhookSignature;
}

export function standardWebhooksWire(live: { secret: string; handoverId: string; otherHandoverIds: string[] }): InboundWire<WebhookAuth> {
  const key = Buffer.from(live.secret.replace(/^whsec_/, ''), 'base64');
  const mac = (k: Buffer, content: string, encoding: 'base64' | 'hex' = 'base64') => createHmac('sha256', k).update(content).digest(encoding);
  // Valid events for other handovers (another connector's), with fields broken or removed.
  const mutated = mutants(
    live.otherHandoverIds.flatMap((handoverId) => [
      {
        type: 'message.created',
        handoverId,
        data: {
          message: { id: 'm-1', text: 'hello', attachments: [{ url: 'https://example.com/a.png', name: 'a.png', contentType: 'image/png' }] },
          agent: { id: 'a-1', name: 'Al' },
        },
      },
      { type: 'agent.joined', handoverId, data: { agent: { id: 'a-1', name: 'Al' } } },
      { type: 'queue.updated', handoverId, data: { position: 2, estimatedWaitSeconds: 60 } },
      { type: 'handover.ended', handoverId, data: { reason: 'agent_ended' } },
    ]),
    () => true,
  );
  // Event-shaped bodies of any types; never for the watched handover: another connector's, an unknown
  // one, or not an id at all.
  const shaped = fc
    .record(
      {
        type: fc.oneof(
          fc.constantFrom('agent.joined', 'message.created', 'agent.typing', 'queue.updated', 'handover.transferred', 'handover.ended'),
          hostileString,
        ),
        handoverId: fc.oneof(fc.constantFrom(...live.otherHandoverIds, `ho_${'0'.repeat(26)}`), hostileString, jsonValue),
        data: fc.oneof(
          jsonValue,
          fc.constantFrom(
            { agent: { id: 'a' } },
            { message: { id: 'm', text: 't' } },
            { typing: true },
            { reason: 'agent_ended' },
            { position: 1 },
            { message: { id: 'm', text: 'x'.repeat(20_001) } },
          ),
        ),
      },
      { requiredKeys: [] },
    )
    .map((event) => JSON.stringify(event));
  return {
    name: 'generic webhook',
    longText: 'refused',
    auth: fc.record({
      id: fc.oneof(
        { weight: 8, arbitrary: fc.record({ kind: fc.constant('fresh' as const), suffix: hostileString }) },
        { weight: 1, arbitrary: fc.constantFrom({ kind: 'missing' as const }, { kind: 'ownEventId' as const }) },
      ),
      stamp,
      signature: fc.oneof(
        { weight: 12, arbitrary: fc.constantFrom<WebhookSignature>('correct', 'rotated') },
        {
          weight: 6,
          arbitrary: fc.constantFrom<WebhookSignature>(
            'missing',
            'wrongSecret',
            'otherBody',
            'otherId',
            'otherStamp',
            'noVersion',
            'v2',
            'hex',
            'truncated',
            'random',
            'onlyBad',
            'empty',
          ),
        },
        { weight: 1, arbitrary: hostileString.map((hostile) => ({ hostile })) },
      ),
    }),
    verifies: (auth) => auth.id.kind === 'fresh' && auth.stamp.at === 'now' && (auth.signature === 'correct' || auth.signature === 'rotated'),
    headers(auth, raw, caseNo) {
      const id =
        auth.id.kind === 'fresh'
          ? headerSafe(`fz-${caseNo}-${auth.id.suffix}`)
          : auth.id.kind === 'ownEventId'
            ? `evt_${Array.from(randomBytes(26), (b) => base32[b % 32]).join('')}`
            : undefined;
      const timestamp = stampValue(auth.stamp);
      const ts = timestamp === undefined ? '' : headerSafe(timestamp);
      const good = mac(key, `${id}.${ts}.${raw}`);
      const s = auth.signature;
      const signature =
        typeof s === 'object'
          ? s.hostile
          : {
              correct: `v1,${good}`,
              rotated: `v1,${mac(randomKey(), raw)} v1,${good}`,
              missing: undefined,
              wrongSecret: `v1,${mac(randomKey(), `${id}.${ts}.${raw}`)}`,
              otherBody: `v1,${mac(key, `${id}.${ts}.${raw} `)}`,
              otherId: `v1,${mac(key, `${id}x.${ts}.${raw}`)}`,
              otherStamp: `v1,${mac(key, `${id}.${Number(ts) + 1}.${raw}`)}`,
              noVersion: good,
              v2: `v2,${good}`,
              hex: `v1,${mac(key, `${id}.${ts}.${raw}`, 'hex')}`,
              truncated: `v1,${good.slice(0, -8)}`,
              random: `v1,${randomKey().toString('base64')}`,
              onlyBad: `v1,AAAA v1,${randomKey().toString('base64')}`,
              empty: 'v1,',
            }[s];
      return withHeaders([
        ['webhook-id', id],
        ['webhook-timestamp', timestamp],
        ['webhook-signature', signature],
      ]);
    },
    validEvent: (n, text) =>
      JSON.stringify({
        type: 'message.created',
        handoverId: live.handoverId,
        data: { message: { id: `hd-${n}`, text }, agent: { id: 'hd-agent', name: 'Hal' } },
      }),
    hostileEvent: fc.oneof({ weight: 2, arbitrary: mutated }, { weight: 1, arbitrary: shaped }),
  };
}
