import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { headerSafe, hostileString, jsonValue } from '../hostile-input.js';
import { field, mutants, names, withHeaders, type InboundWire } from './wire.js';

// Zendesk (Sunshine Conversations): the webhook's static secret in `X-API-Key`; batches of events, each
// with its own id.

type ZendeskKey = 'correct' | 'missing' | 'wrong' | 'suffix' | 'truncated' | 'upper' | 'otherHeader' | { hostile: string };

export interface ZendeskAuth {
  key: ZendeskKey;
}

export function zendeskWire(live: { secret: string; appId: string; conversationId: string }): InboundWire<ZendeskAuth> {
  const value = (k: ZendeskKey): string | undefined =>
    typeof k === 'object'
      ? k.hostile
      : {
          correct: live.secret,
          missing: undefined,
          wrong: `whk-${randomBytes(16).toString('hex')}`,
          suffix: `${live.secret}x`,
          truncated: live.secret.slice(0, -1),
          upper: live.secret.toUpperCase(),
          otherHeader: undefined,
        }[k];
  const message = (conversationId: unknown) =>
    fc.record(
      {
        conversation: fc.oneof(fc.record({ id: fc.constant(conversationId) }), jsonValue),
        message: fc.oneof(
          fc.record(
            {
              id: fc.oneof(hostileString, jsonValue),
              author: fc.oneof(
                fc.record({ type: fc.oneof(fc.constantFrom('business', 'user'), jsonValue), displayName: fc.oneof(hostileString, jsonValue) }),
                jsonValue,
              ),
              content: fc.oneof(
                fc.record(
                  {
                    type: fc.oneof(fc.constantFrom('text', 'image', 'file'), jsonValue),
                    text: fc.oneof(hostileString, jsonValue),
                    mediaUrl: fc.oneof(hostileString, jsonValue),
                    altText: fc.oneof(hostileString, jsonValue),
                  },
                  { requiredKeys: [] },
                ),
                jsonValue,
              ),
            },
            { requiredKeys: [] },
          ),
          jsonValue,
        ),
        reason: fc.oneof(fc.constant('ticketClosed'), jsonValue),
      },
      { requiredKeys: [] },
    );
  const events = (conversationId: fc.Arbitrary<unknown>) =>
    fc.array(
      fc.record(
        {
          id: fc.oneof(hostileString, jsonValue),
          type: fc.oneof(fc.constantFrom('conversation:message', 'switchboard:passControl', 'conversation:read'), hostileString),
          createdAt: hostileString,
          payload: fc.oneof(conversationId.chain(message), jsonValue),
        },
        { requiredKeys: [] },
      ),
      { maxLength: 3 },
    );
  const unknownConversation = fc.oneof(fc.constant('c0ffee'), hostileString, jsonValue);
  // Only events of our app that name the watched conversation could change it.
  const notWatched = (body: unknown) => {
    const events = field(body, 'events');
    return (
      !names(field(field(body, 'app'), 'id'), live.appId) ||
      !Array.isArray(events) ||
      events.every((e) => !names(field(field(field(e, 'payload'), 'conversation'), 'id'), live.conversationId))
    );
  };
  return {
    name: 'zendesk',
    longText: 'cut',
    auth: fc.record({
      key: fc.oneof(
        { weight: 8, arbitrary: fc.constant<ZendeskKey>('correct') },
        { weight: 6, arbitrary: fc.constantFrom<ZendeskKey>('missing', 'wrong', 'suffix', 'truncated', 'upper', 'otherHeader') },
        { weight: 1, arbitrary: hostileString.map((hostile) => ({ hostile })) },
      ),
    }),
    verifies: (auth) => {
      const v = value(auth.key);
      return v !== undefined && headerSafe(v) === live.secret;
    },
    headers(auth) {
      // `otherHeader`: the secret, but where another vendor puts its signature.
      return withHeaders([
        ['x-api-key', value(auth.key)],
        ['authorization', auth.key === 'otherHeader' ? `Bearer ${live.secret}` : undefined],
      ]);
    },
    validEvent: (n, text, idTail) =>
      JSON.stringify({
        app: { id: live.appId },
        webhook: { id: 'wh_1', version: 'v2' },
        events: [
          {
            id: `zd-valid-${n}`,
            type: 'conversation:message',
            createdAt: new Date().toISOString(),
            payload: {
              conversation: { id: live.conversationId },
              message: { id: `zm-${n}${idTail ? `-${idTail}` : ''}`, author: { type: 'business', displayName: 'Zoe' }, content: { type: 'text', text } },
            },
          },
        ],
      }),
    // The watched conversation appears only in another app's events, which must change nothing.
    hostileEvent: fc.oneof(
      {
        weight: 3,
        arbitrary: mutants(
          [
            {
              app: { id: live.appId },
              webhook: { id: 'wh_1', version: 'v2' },
              events: [
                {
                  id: 'e-1',
                  type: 'conversation:message',
                  createdAt: '2030-01-01T00:00:00.000Z',
                  payload: {
                    conversation: { id: 'c0ffee' },
                    message: { id: 'm-1', author: { type: 'business', displayName: 'Zoe' }, content: { type: 'text', text: 'hello' } },
                  },
                },
                {
                  id: 'e-2',
                  type: 'conversation:message',
                  payload: {
                    conversation: { id: 'c0ffee' },
                    message: { id: 'm-2', author: { type: 'business' }, content: { type: 'image', mediaUrl: 'https://example.com/a.png', altText: 'a' } },
                  },
                },
                { id: 'e-3', type: 'switchboard:passControl', payload: { conversation: { id: 'c0ffee' }, reason: 'ticketClosed' } },
              ],
            },
          ],
          notWatched,
        ),
      },
      {
        weight: 3,
        arbitrary: fc
          .oneof(
            fc.record({ app: fc.record({ id: fc.constant(live.appId) }), events: events(unknownConversation) }).filter(notWatched),
            fc.record({ app: fc.record({ id: fc.oneof(fc.constant('another-app'), hostileString) }), events: events(fc.constant(live.conversationId)) }),
            fc.record({ app: jsonValue, events: jsonValue }, { requiredKeys: [] }),
          )
          .map((body) => JSON.stringify(body)),
      },
    ),
  };
}
