import { describe, expect, it } from 'vitest';
import { handleWebhookInbound } from '../../src/connectors/webhook/webhook-inbound.js';
import { signedHeaders } from '../../src/delivery/standard-webhooks.js';
import { newId } from '../../src/store/ids.js';

const SECRET = 'whsec_' + Buffer.from('a-shared-secret-of-32-bytes-long!').toString('base64');

describe('generic webhook inbound', () => {
  const request = (id: string, body: unknown) => {
    const raw = JSON.stringify(body);
    return { headers: signedHeaders(SECRET, id, raw), rawBody: raw, body };
  };
  const event = { type: 'message.created', handoverId: 'ho_1', data: { message: { id: 'm-1', text: 'hello' } } };

  it("takes the helpdesk's signed events", () => {
    expect(handleWebhookInbound(SECRET, request('hd_123', event))).toMatchObject({ ok: true, receiptId: 'hd_123' });
  });

  it('never takes back one of our own signed requests (an echo, or a replay by whoever saw it)', () => {
    // What we send the helpdesk: the same secret signs it, and its shape also fits an inbound event.
    const ours = { id: newId('event'), type: 'message.created', handoverId: 'ho_1', conversationId: 'c', createdAt: new Date().toISOString(), data: { message: { id: 'm-1', text: 'the user said this' } } };
    const result = handleWebhookInbound(SECRET, request(ours.id, ours));
    expect(result).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(result.ok === false && result.message).toMatch(/own event ids/);
  });
});
