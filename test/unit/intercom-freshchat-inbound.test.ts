import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { handleFreshchatInbound } from '../../src/connectors/freshchat/freshchat-webhook.js';
import { handleIntercomInbound } from '../../src/connectors/intercom/intercom-webhook.js';
import { hostileString, jsonValue } from '../support/hostile-input.js';

/**
 * Authentic (correctly signed) bodies of any shape, near the vendors' own and far from them: the
 * handlers answer each with a result — taken, acknowledged or refused as invalid — and never throw;
 * what they take is well formed.
 */
const RUNS = 400;

/**
 * A body of each vendor's own shape that is taken, run first (fast-check's `examples`): "some events are
 * taken" then holds on every run, not only when the random bodies happen to hit one (for Freshchat, whose
 * taken events need several fields right at once, one run in a few missed).
 */
const intercomReply = {
  type: 'notification_event',
  id: 'n1',
  topic: 'conversation.admin.replied',
  data: {
    item: {
      id: 'c1',
      conversation_parts: { conversation_parts: [{ id: 'p1', part_type: 'comment', body: '<p>hello</p>', author: { type: 'admin', id: '42', name: 'Ada' } }] },
    },
  },
};
const freshchatReply = {
  action: 'message_create',
  action_time: '2026-01-01T00:00:00.000Z',
  data: {
    message: { id: 'm1', conversation_id: 'c1', actor_type: 'agent', actor_id: 'a1', message_type: 'normal', message_parts: [{ text: { content: 'hello' } }] },
  },
};

/** Checks one result; returns how many events it took. */
function wellFormed(result: ReturnType<typeof handleIntercomInbound>): number {
  if (!result.ok) {
    expect(result.reason).toBe('invalid_body');
    return 0;
  }
  const receipts = 'receipts' in result ? result.receipts : [];
  for (const receipt of receipts) {
    expect(typeof receipt.receiptId).toBe('string');
    expect(receipt.receiptId.length).toBeGreaterThan(0);
    for (const event of receipt.events) {
      expect(typeof ('externalRef' in event ? event.externalRef : event.handoverId)).toBe('string');
      if (event.type === 'message.created') {
        expect(typeof event.message.id).toBe('string');
        expect(typeof event.message.text).toBe('string');
        for (const a of event.message.attachments) expect(typeof a.url).toBe('string');
      }
    }
  }
  return receipts.reduce((n, r) => n + r.events.length, 0);
}

const anyId = fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), fc.integer({ min: 0 }));
const loose = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 4, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: jsonValue as fc.Arbitrary<unknown> });

// Intercom: notifications of the vendor's shape with hostile contents, each field now and then of
// another type, and JSON of any shape.
const intercomPart = fc.record(
  {
    id: loose(anyId),
    part_type: loose(fc.constantFrom('comment', 'note', 'assignment', 'assign_and_reopen', 'close', 'open')),
    body: loose(fc.oneof(hostileString, fc.constant(null))),
    author: loose(fc.record({ type: fc.constantFrom('admin', 'user', 'bot'), id: anyId, name: fc.oneof(hostileString, fc.constant(null)) })),
    assigned_to: loose(
      fc.oneof(
        fc.record({ type: fc.constantFrom('admin', 'team'), id: anyId }),
        fc.record({ type: fc.constant('nobody_admin'), id: fc.constant(null) }),
        fc.constant(null),
      ),
    ),
    attachments: loose(fc.array(fc.record({ url: hostileString, name: hostileString, content_type: hostileString }), { maxLength: 2 })),
  },
  { requiredKeys: ['id', 'part_type'] },
);
const intercomBody = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      type: loose(fc.constant('notification_event')),
      id: loose(fc.oneof(fc.string({ minLength: 1, maxLength: 60 }), fc.constant(null))),
      topic: loose(
        fc.oneof(
          fc.constantFrom(
            'conversation.admin.replied',
            'conversation.admin.assigned',
            'conversation.admin.open.assigned',
            'conversation.admin.closed',
            'conversation.deleted',
            'ping',
            'toString',
            '__proto__',
          ),
          hostileString,
        ),
      ),
      data: loose(
        fc.record({
          item: loose(
            fc.record({ id: loose(anyId), conversation_parts: loose(fc.record({ conversation_parts: loose(fc.array(intercomPart, { maxLength: 3 })) })) }),
          ),
        }),
      ),
    }) as fc.Arbitrary<unknown>,
  },
  { weight: 1, arbitrary: jsonValue as fc.Arbitrary<unknown> },
);

// Freshchat: events of the vendor's shape with hostile contents, each field now and then of another
// type, and JSON of any shape.
const text = fc.oneof(hostileString, fc.constant(null));
const freshchatMessage = fc.record({
  id: loose(fc.string({ minLength: 1, maxLength: 40 })),
  conversation_id: loose(fc.string({ minLength: 1, maxLength: 40 })),
  actor_type: loose(fc.constantFrom('agent', 'user', 'system')),
  actor_id: loose(text),
  message_type: loose(fc.constantFrom('normal', 'private')),
  botsPrivateNote: loose(fc.boolean()),
  message_parts: loose(
    fc.array(
      fc.oneof(
        fc.record({ text: fc.record({ content: text }) }),
        fc.record({ image: fc.record({ url: text }) }),
        fc.record({ file: fc.record({ url: text, name: text, content_type: text }) }),
        fc.record({ url_button: fc.record({ url: text, label: text }) }),
      ),
      { maxLength: 3 },
    ),
  ),
});
const conversationRef = loose(fc.record({ conversation_id: loose(fc.string({ minLength: 1, maxLength: 40 })) }));
const maybeId = loose(fc.oneof(fc.string({ maxLength: 20 }), fc.constant(null)));
const freshchatBody = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      // Names an object has by inheritance (`toString`, `__proto__`) must not pass for known actions.
      action: loose(
        fc.oneof(
          fc.constantFrom(
            'message_create',
            'conversation_assignment',
            'conversation_resolution',
            'conversation_reopen',
            'toString',
            '__proto__',
            'constructor',
          ),
          hostileString,
        ),
      ),
      action_time: loose(fc.string({ maxLength: 30 })),
      data: loose(
        fc.oneof(
          fc.record({ message: loose(freshchatMessage) }),
          fc.record({
            assignment: loose(
              fc.record({
                assignor_id: maybeId,
                to_agent_id: maybeId,
                to_group_id: maybeId,
                from_agent_id: maybeId,
                from_group_id: maybeId,
                conversation: conversationRef,
              }),
            ),
          }),
          fc.record({ resolve: loose(fc.record({ resolver_id: maybeId, conversation: conversationRef })) }),
        ),
      ),
    }) as fc.Arbitrary<unknown>,
  },
  { weight: 1, arbitrary: jsonValue as fc.Arbitrary<unknown> },
);

describe('Intercom and Freshchat inbound: authentic bodies of any shape', () => {
  it('Intercom: every signed body is answered (taken, acknowledged or invalid), never thrown on', () => {
    const config = { clientSecret: 'intercom-client-secret', adminId: '7001', teams: { billing: '502' } };
    let taken = 0;
    fc.assert(
      fc.property(intercomBody, (value) => {
        const rawBody = JSON.stringify(value) ?? 'null';
        const signature = `sha1=${createHmac('sha1', config.clientSecret).update(rawBody).digest('hex')}`;
        taken += wellFormed(handleIntercomInbound(config, { headers: { 'x-hub-signature': signature }, rawBody, body: JSON.parse(rawBody) }));
      }),
      { numRuns: RUNS, examples: [[intercomReply]] },
    );
    // Events are taken, not only refused.
    expect(taken).toBeGreaterThan(0);
  });

  it('Freshchat: every signed body is answered (taken, acknowledged or invalid), never thrown on', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const config = { agentId: 'bot-agent', groups: { billing: 'grp-billing' } };
    let taken = 0;
    fc.assert(
      fc.property(freshchatBody, (value) => {
        const rawBody = JSON.stringify(value) ?? 'null';
        const signature = sign('sha256', Buffer.from(rawBody), privateKey).toString('base64');
        taken += wellFormed(handleFreshchatInbound(config, publicKey, { headers: { 'x-freshchat-signature': signature }, rawBody, body: JSON.parse(rawBody) }));
      }),
      { numRuns: RUNS, examples: [[freshchatReply]] },
    );
    expect(taken).toBeGreaterThan(0);
  });
});
