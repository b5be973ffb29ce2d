import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { handleChatwootInbound } from '../../src/connectors/chatwoot/chatwoot-webhook.js';
import { handleZendeskInbound } from '../../src/connectors/zendesk/zendesk-webhook.js';
import { handleWebhookInbound } from '../../src/connectors/webhook/webhook-webhook.js';
import { storableInboundEvent } from '../../src/connectors/connector-helpers.js';
import { signedHeaders } from '../../src/outbound/standard-webhooks.js';
import { newId } from '../../src/store/ids.js';

const SECRET = 'whsec_' + Buffer.from('a-shared-secret-of-32-bytes-long!').toString('base64');

/** The message of the one event a generic webhook request carried. */
function messageOf(result: ReturnType<typeof handleWebhookInbound>) {
  const event = result.ok && 'events' in result ? result.events[0] : undefined;
  return event?.type === 'message.created' ? event.message : undefined;
}

describe('generic webhook inbound', () => {
  const request = (id: string, body: unknown) => {
    const raw = JSON.stringify(body);
    return { headers: signedHeaders(SECRET, id, raw), rawBody: raw, body };
  };
  const event = { type: 'message.created', handoverId: 'ho_1', data: { message: { id: 'm-1', text: 'hello' } } };

  it("takes the helpdesk's signed events", () => {
    expect(handleWebhookInbound(SECRET, request('hd_123', event))).toMatchObject({ ok: true, receiptId: 'hd_123' });
  });

  it("takes a reason of the helpdesk's own, a queue update without data, and a long text (cut); names a timestamp in milliseconds", () => {
    const ended = handleWebhookInbound(SECRET, request('hd_end', { type: 'handover.ended', handoverId: 'ho_1', data: { reason: 'resolved' } }));
    expect(ended).toMatchObject({ ok: true, events: [{ type: 'handover.ended', reason: 'agent_ended', detail: 'resolved' }] });
    const known = handleWebhookInbound(SECRET, request('hd_end2', { type: 'handover.ended', handoverId: 'ho_1', data: { reason: 'user_ended' } }));
    expect(known).toMatchObject({ ok: true, events: [{ type: 'handover.ended', reason: 'user_ended' }] });
    expect(handleWebhookInbound(SECRET, request('hd_q', { type: 'queue.updated', handoverId: 'ho_1' }))).toMatchObject({
      ok: true,
      events: [{ type: 'queue.updated', handoverId: 'ho_1' }],
    });
    const long = handleWebhookInbound(
      SECRET,
      request('hd_long', { type: 'message.created', handoverId: 'ho_1', data: { message: { id: 'm', text: 'x'.repeat(25_000) } } }),
    );
    expect(messageOf(long)?.text.length).toBe(20_000);
    // Fields of the helpdesk's own on an attachment are passed over; a link that is not http(s) is refused.
    const withFile = handleWebhookInbound(
      SECRET,
      request('hd_file', {
        type: 'message.created',
        handoverId: 'ho_1',
        data: { message: { id: 'm2', text: '', attachments: [{ url: 'https://files.example/a.pdf', name: 'a.pdf', id: 'att_x', size: 12 }] } },
      }),
    );
    expect(messageOf(withFile)?.attachments).toEqual([{ url: 'https://files.example/a.pdf', name: 'a.pdf' }]);
    const script = handleWebhookInbound(
      SECRET,
      request('hd_js', {
        type: 'message.created',
        handoverId: 'ho_1',
        data: { message: { id: 'm3', text: '', attachments: [{ url: 'javascript:alert(1)' }] } },
      }),
    );
    expect(script).toMatchObject({ ok: false, reason: 'invalid_body' });
    const raw = JSON.stringify(event);
    const millis = { ...signedHeaders(SECRET, 'hd_ms', raw), 'webhook-timestamp': String(Date.now()) };
    expect(handleWebhookInbound(SECRET, { headers: millis, rawBody: raw, body: event })).toMatchObject({
      ok: false,
      reason: 'stale_timestamp',
      message: expect.stringMatching(/seconds .* not milliseconds/),
    });
  });

  it('never takes back one of our own signed requests (an echo, or a replay by whoever saw it)', () => {
    // What we send the helpdesk: the same secret signs it, and its shape also fits an inbound event.
    const ours = {
      id: newId('event'),
      type: 'message.created',
      handoverId: 'ho_1',
      conversationId: 'c',
      createdAt: new Date().toISOString(),
      data: { message: { id: 'm-1', text: 'the user said this' } },
    };
    const result = handleWebhookInbound(SECRET, request(ours.id, ours));
    expect(result).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(result.ok === false && result.message).toMatch(/own event ids/);
  });
});

describe('Chatwoot and Zendesk inbound: texts past the limit', () => {
  // 19,999 units, then an emoji (two units) across the 20,000-unit bound.
  const long = 'x'.repeat(19_999) + '😀';

  function textOf(result: ReturnType<typeof handleChatwootInbound>): string {
    if (!result.ok || !('receipts' in result)) throw new Error(JSON.stringify(result).slice(0, 200));
    const event = result.receipts[0]!.events[0]!;
    if (event.type !== 'message.created') throw new Error(event.type);
    return event.message.text;
  }

  it('are cut before a character, never between the halves of an emoji', () => {
    const raw = JSON.stringify({
      event: 'message_created',
      id: 1,
      content: long,
      message_type: 'outgoing',
      private: false,
      sender: { id: 1, type: 'user' },
      conversation: { id: 5 },
    });
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = `sha256=${createHmac('sha256', 'cw-secret').update(`${timestamp}.${raw}`).digest('hex')}`;
    const chatwoot = textOf(
      handleChatwootInbound(
        { webhookSecret: 'cw-secret' },
        { headers: { 'x-chatwoot-signature': signature, 'x-chatwoot-timestamp': timestamp }, rawBody: raw, body: JSON.parse(raw) },
      ),
    );
    const body = {
      app: { id: 'app' },
      events: [
        {
          id: 'e',
          type: 'conversation:message',
          payload: { conversation: { id: 'c' }, message: { id: 'm', author: { type: 'business' }, content: { type: 'text', text: long } } },
        },
      ],
    };
    const zendesk = textOf(
      handleZendeskInbound({ appId: 'app', webhookSecret: 'zd-secret' }, { headers: { 'x-api-key': 'zd-secret' }, rawBody: JSON.stringify(body), body }),
    );
    for (const text of [chatwoot, zendesk]) {
      expect(text).toBe('x'.repeat(19_999));
      // Half a pair would not survive UTF-8 (nor a jsonb column): the text is whole characters.
      expect(Buffer.from(text, 'utf8').toString('utf8')).toBe(text);
    }
  });
});

describe('Chatwoot and Zendesk inbound: authentic bodies with fields of the wrong type', () => {
  function chatwoot(body: Record<string, unknown>) {
    const raw = JSON.stringify(body);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = `sha256=${createHmac('sha256', 'cw-secret').update(`${timestamp}.${raw}`).digest('hex')}`;
    return handleChatwootInbound(
      { webhookSecret: 'cw-secret' },
      { headers: { 'x-chatwoot-signature': signature, 'x-chatwoot-timestamp': timestamp }, rawBody: raw, body: JSON.parse(raw) },
    );
  }
  const reply = {
    event: 'message_created',
    id: 1,
    content: 'hi',
    message_type: 'outgoing',
    private: false,
    sender: { id: 1, type: 'user' },
    conversation: { id: 5 },
  };

  it('Chatwoot: an event we act on is refused as invalid, not read into a crash', () => {
    expect(chatwoot(reply)).toMatchObject({ ok: true });
    for (const broken of [{ attachments: [null] }, { attachments: 'a.png' }, { content: 42 }, { sender: 'agent' }, { conversation: { id: {} } }]) {
      expect(chatwoot({ ...reply, ...broken }), JSON.stringify(broken)).toMatchObject({ ok: false, reason: 'invalid_body' });
    }
    const update = { event: 'conversation_updated', id: 5, changed_attributes: [null], meta: { assignee: { id: 1 } } };
    expect(chatwoot(update)).toMatchObject({ ok: false, reason: 'invalid_body' });
    // An event we do not act on is acknowledged whatever it holds.
    expect(chatwoot({ event: 'contact_created', attachments: [null] })).toMatchObject({ ok: true });
  });

  it('Zendesk: an event whose payload has the wrong types is acknowledged and dropped; the rest of the batch is taken', () => {
    const message = (id: string, content: unknown) => ({
      id,
      type: 'conversation:message',
      payload: { conversation: { id: 'c' }, message: { id: `m-${id}`, author: { type: 'business' }, content } },
    });
    const body = {
      app: { id: 'app' },
      events: [message('bad', { type: 'image', mediaUrl: 'https://example.com/a.png', altText: false }), message('good', { type: 'text', text: 'hello' })],
    };
    const result = handleZendeskInbound(
      { appId: 'app', webhookSecret: 'zd-secret' },
      { headers: { 'x-api-key': 'zd-secret' }, rawBody: JSON.stringify(body), body },
    );
    expect(result).toMatchObject({
      ok: true,
      receipts: [
        // Named, so the service can log what it dropped and why.
        { receiptId: 'bad', events: [], unreadable: expect.stringMatching(/^conversation:message payload \/message\/content\/altText: /) },
        { receiptId: 'good', events: [{ type: 'message.created', message: { text: 'hello' } }] },
      ],
    });
    expect((result as { receipts: Array<{ unreadable?: string }> }).receipts[1]!.unreadable).toBeUndefined();
  });
});

describe('what any helpdesk sends the bot as files', () => {
  it('are web links with a name and a type only: other links are dropped, fields of their own passed over', () => {
    const stored = storableInboundEvent({
      type: 'message.created',
      handoverId: 'ho_1',
      message: {
        id: 'm-1',
        text: 'see these',
        attachments: [
          { url: 'https://files.example/a.pdf', name: 'a.pdf', contentType: 'application/pdf', id: 'att_forged', size: 3 },
          { url: 'HTTP://files.example/b.png' },
          { url: 'javascript:alert(document.domain)', name: 'click me' },
          { url: 'data:text/html;base64,PHNjcmlwdD4=' },
        ],
      },
    });
    expect(stored.type === 'message.created' && stored.message.attachments).toEqual([
      { url: 'https://files.example/a.pdf', name: 'a.pdf', contentType: 'application/pdf' },
      { url: 'HTTP://files.example/b.png' },
    ]);
  });
});
