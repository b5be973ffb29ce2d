import { describe, expect, it } from 'vitest';
import { readServerSentEvents, toInboundEvents, type ServerSentEvent } from '../../src/connectors/salesforce/salesforce-stream.js';
import { uuidFrom } from '../../src/connectors/salesforce/salesforce-connector.js';

async function* chunks(...parts: string[]): AsyncGenerator<Buffer> {
  for (const part of parts) yield Buffer.from(part);
}

async function collect(...parts: string[]): Promise<ServerSentEvent[]> {
  const out: ServerSentEvent[] = [];
  for await (const e of readServerSentEvents(chunks(...parts))) out.push(e);
  return out;
}

const CONV = '3f1c2a9e-8b7d-4c6e-9f10-1a2b3c4d5e6f';

function entryEvent(event: string, role: string, payload: Record<string, unknown>, extra: Record<string, unknown> = {}): ServerSentEvent {
  return {
    id: '7',
    event,
    data: JSON.stringify({
      conversationId: CONV,
      conversationEntry: {
        identifier: 'e-1',
        senderDisplayName: 'Ada',
        sender: { role, subject: '005A', appType: 'agent' },
        entryPayload: JSON.stringify(payload),
      },
      ...extra,
    }),
  };
}

describe('server-sent events as Salesforce sends them', () => {
  it('parses ids, names and data across chunk boundaries, CRLF, comments and multi-line data', async () => {
    const events = await collect(
      'id: 1\nevent: CONVERSATION_MESSAGE\nda',
      'ta: {"a":1}\n\n: keep-alive\n\r\nid: 2\r\nevent: X\r\ndata: line one\r\ndata: line two\r\n\r\nevent: ping\ndata: {}\n\n',
    );
    expect(events).toEqual([
      { id: '1', event: 'CONVERSATION_MESSAGE', data: '{"a":1}' },
      { id: '2', event: 'X', data: 'line one\nline two' },
      // No id field: the last event id stays (the client skips it as already applied).
      { id: '2', event: 'ping', data: '{}' },
    ]);
  });

  it('does not split a CRLF that arrives in two chunks', async () => {
    expect(await collect('id: 5\r', '\nevent: A\r\ndata: x\r', '\n\r', '\n')).toEqual([{ id: '5', event: 'A', data: 'x' }]);
  });

  it('maps agent messages, drops the end user’s echoes, other conversations, bad JSON and unknown events', () => {
    const message = { abstractMessage: { messageType: 'StaticContentMessage', staticContent: { formatType: 'Text', text: 'hi' } } };
    expect(toInboundEvents(entryEvent('CONVERSATION_MESSAGE', 'Agent', message), 'ho_1', CONV)).toEqual([
      { type: 'message.created', handoverId: 'ho_1', message: { id: 'sf_e-1', text: 'hi', attachments: [] }, agent: { id: '005A', name: 'Ada' } },
    ]);
    expect(toInboundEvents(entryEvent('CONVERSATION_MESSAGE', 'EndUser', message), 'ho_1', CONV)).toEqual([]);
    expect(
      toInboundEvents(entryEvent('CONVERSATION_MESSAGE', 'Agent', message, { conversationId: '00000000-0000-4000-8000-000000000000' }), 'ho_1', CONV),
    ).toEqual([]);
    expect(toInboundEvents({ id: '8', event: 'CONVERSATION_MESSAGE', data: '{not json' }, 'ho_1', CONV)).toEqual([]);
    expect(toInboundEvents(entryEvent('CONVERSATION_DELIVERY_ACKNOWLEDGEMENT', 'Agent', {}), 'ho_1', CONV)).toEqual([]);
  });

  it('tells who ended the session and turns a routing failure into an end the bot can read', () => {
    expect(
      toInboundEvents(entryEvent('CONVERSATION_SESSION_STATUS_CHANGED', 'System', { sessionStatus: 'Ended', sessionEndedByRole: 'EndUser' }), 'ho_1', CONV),
    ).toEqual([{ type: 'handover.ended', handoverId: 'ho_1', reason: 'user_ended' }]);
    expect(toInboundEvents(entryEvent('CONVERSATION_SESSION_STATUS_CHANGED', 'System', { sessionStatus: 'Active' }), 'ho_1', CONV)).toEqual([]);
    // The routing result's documented estimatedWaitTime holds the estimate only: a position beside it is not
    // read (the place in the queue comes from QueuePosition entries; test/connectors/salesforce.test.ts).
    expect(
      toInboundEvents(
        entryEvent('CONVERSATION_ROUTING_RESULT', 'System', { failureType: 'None', estimatedWaitTime: { position: 3, estimatedWaitTimeInSeconds: 90 } }),
        'ho_1',
        CONV,
      ),
    ).toEqual([{ type: 'queue.updated', handoverId: 'ho_1', estimatedWaitSeconds: 90 }]);
    const [ended] = toInboundEvents(entryEvent('CONVERSATION_ROUTING_RESULT', 'System', { failureType: 'Timeout' }), 'ho_1', CONV);
    expect(ended).toMatchObject({ type: 'handover.ended', reason: 'unavailable' });
  });

  it('derives stable lowercase v4-shaped UUIDs from our ids', () => {
    const id = uuidFrom('msg_01abc');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(uuidFrom('msg_01abc')).toBe(id);
    expect(uuidFrom('msg_01abd')).not.toBe(id);
  });
});
