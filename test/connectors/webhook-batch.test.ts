/**
 * The generic webhook connector in batch mode, driven directly (no service around it) against the fake
 * helpdesk over real HTTP: how calls are formed, how each event's result settles its own delivery, and
 * how a failed call fails each of its events. The service-level behaviour (order, retries, giving up,
 * on a real database) is in test/e2e/webhook-batch.test.ts and the contract suite.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import { DeliveryError, type Connector, type MessageWork } from '../../src/connectors/connector.js';
import { webhookConnectorDefinition } from '../../src/connectors/webhook/webhook-connector.js';
import { createOutboundAgent } from '../../src/outbound/index.js';
import { newId } from '../../src/store/ids.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';

const SECRET = 'whsec_' + Buffer.from('batch-helpdesk-secret-of-32-bytes!').toString('base64');
const TIMEOUT_MS = 2000;

function message(handoverId: string, text: string): MessageWork {
  return {
    kind: 'message.created',
    eventId: newId('event'),
    handoverId,
    conversationId: `c-${handoverId}`,
    message: { id: newId('message'), text, attachments: [], createdAt: new Date().toISOString() },
  };
}

/** What a `sendMessage` came to: done, or its DeliveryError's retryability, message and quote. */
interface Outcome {
  ok: boolean;
  retryable?: boolean;
  message?: string;
  quote?: string | undefined;
  retryAfterMs?: number | undefined;
  statusCode?: number | undefined;
}

async function outcome(p: Promise<unknown>): Promise<Outcome> {
  try {
    await p;
    return { ok: true };
  } catch (err) {
    expect(err).toBeInstanceOf(DeliveryError);
    const e = err as DeliveryError;
    return { ok: false, retryable: e.retryable, message: e.message, quote: e.answerQuote, retryAfterMs: e.retryAfterMs, statusCode: e.statusCode };
  }
}

describe('generic webhook connector, batch mode', () => {
  let helpdesk: GenericHelpdesk | undefined;
  let dispatcher: Agent | undefined;
  afterEach(async () => {
    await dispatcher?.close();
    await helpdesk?.close();
    helpdesk = undefined;
    dispatcher = undefined;
  });

  async function setUp(
    batch: Record<string, unknown> = {},
    options: { timeoutMs?: number } = {},
  ): Promise<{ connector: Connector; helpdesk: GenericHelpdesk }> {
    helpdesk = await startGenericHelpdesk(SECRET, { batch: true });
    const timeoutMs = options.timeoutMs ?? TIMEOUT_MS;
    dispatcher = createOutboundAgent(timeoutMs, { allowPrivate: true, allowHttp: true });
    const connector = webhookConnectorDefinition(dispatcher).create(
      { url: helpdesk.url, secret: SECRET, batch },
      { connectorId: newId('connector'), tenantId: newId('tenant'), log: createLogger('silent'), timeoutMs },
    );
    return { connector, helpdesk };
  }

  const live = () => new AbortController().signal;

  it('deliveries made in one turn go out as one signed call, each event in its own envelope', async () => {
    const { connector, helpdesk } = await setUp();
    const work = ['ho_a', 'ho_b', 'ho_c'].map((h) => message(h, `hello from ${h}`));
    const results = await Promise.all(work.map((w) => outcome(connector.sendMessage(w, { externalRef: null, signal: live() }))));
    expect(results).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    // One call, verified by the fake over the batch body; its webhook-id is the call's own.
    expect(helpdesk.rejected).toEqual([]);
    expect(helpdesk.batches).toHaveLength(1);
    expect(helpdesk.batches[0]!.events.map((e) => e.id)).toEqual(work.map((w) => w.eventId));
    expect(work.map((w) => w.eventId)).not.toContain(helpdesk.batches[0]!.webhookId);
    // The envelopes are the ones a single call would carry.
    expect(helpdesk.received.map((r) => r.body)).toEqual(
      work.map((w) => ({
        id: w.eventId,
        type: 'message.created',
        handoverId: w.handoverId,
        conversationId: w.conversationId,
        createdAt: (w as { message: { createdAt: string } }).message.createdAt,
        data: { message: (w as { message: unknown }).message },
      })),
    );
  });

  it('a call closes at maxEvents, and before an event that would take it past maxBytes', async () => {
    const { connector, helpdesk } = await setUp({ maxEvents: 2, maxBytes: 16 * 1024 });
    const small = ['ho_1', 'ho_2', 'ho_3', 'ho_4', 'ho_5'].map((h) => message(h, 'short'));
    await Promise.all(small.map((w) => connector.sendMessage(w, { externalRef: null, signal: live() })));
    expect(helpdesk.batches.map((b) => b.events.length)).toEqual([2, 2, 1]);

    helpdesk.batches.length = 0;
    // 10 KB each: two do not fit in 16 KB, so each goes alone; one larger than the bound still goes.
    const large = ['ho_6', 'ho_7'].map((h) => message(h, 'x'.repeat(10_000)));
    const huge = message('ho_8', 'y'.repeat(20_000));
    await Promise.all([...large, huge].map((w) => connector.sendMessage(w, { externalRef: null, signal: live() })));
    expect(helpdesk.batches.map((b) => b.events.map((e) => e.handoverId))).toEqual([['ho_6'], ['ho_7'], ['ho_8']]);
    expect(helpdesk.rejected).toEqual([]);
  });

  it('a body of several events stays within maxBytes, its own bytes counted too', async () => {
    // One event alone first, for the size of an event of this shape (ids and times are of fixed length).
    const probe = await setUp({ maxEvents: 10 });
    await probe.connector.sendMessage(message('ho_a', 'z'.repeat(1000)), { externalRef: null, signal: live() });
    const eventBytes = Buffer.byteLength(JSON.stringify(probe.helpdesk.batches[0]!.events[0]));
    await dispatcher!.close();
    await helpdesk!.close();
    // Room for two events and their commas, not for the body around them.
    const { connector, helpdesk: receiver } = await setUp({ maxEvents: 10, maxBytes: 2 * eventBytes + 2 });
    await Promise.all(['ho_b', 'ho_c'].map((h) => connector.sendMessage(message(h, 'z'.repeat(1000)), { externalRef: null, signal: live() })));
    expect(receiver.batches.map((b) => b.events.length)).toEqual([1, 1]);
    for (const b of receiver.batches) expect(Buffer.byteLength(JSON.stringify({ type: 'batch', events: b.events }))).toBeLessThanOrEqual(2 * eventBytes + 2);
  });

  it("each delivery settles by its own event's result: ok, retry, failed, or missing from the answer", async () => {
    const { connector, helpdesk } = await setUp();
    const answers: Record<string, ReturnType<GenericHelpdesk['answerEvent']>> = {
      ok: { status: 'ok' },
      retry: { status: 'retry', error: 'conversation locked, try later' },
      failed: { status: 'failed', error: 'conversation closed for good' },
      missing: 'omit',
    };
    helpdesk.answerEvent = (event) => answers[(event.data as { message: { text: string } }).message.text]!;
    const work = Object.keys(answers).map((text, i) => message(`ho_${i}`, text));
    const [ok, retry, failed, missing] = await Promise.all(work.map((w) => outcome(connector.sendMessage(w, { externalRef: null, signal: live() }))));
    expect(helpdesk.batches).toHaveLength(1);
    expect(ok).toEqual({ ok: true });
    // The receiver's words stay beside the error (quoted only where allowed), never in its message.
    expect(retry).toMatchObject({ ok: false, retryable: true, quote: 'conversation locked, try later' });
    expect(retry!.message).not.toContain('locked');
    expect(failed).toMatchObject({ ok: false, retryable: false, quote: 'conversation closed for good' });
    expect(missing).toMatchObject({ ok: false, retryable: true, message: expect.stringContaining('without a result for this event') });
  });

  it('a refused call fails every event of it as a single call would: 503 with Retry-After retried, 410 final, unreadable 200 retried', async () => {
    const { connector, helpdesk } = await setUp();
    const deliverTwo = () => Promise.all(['ho_x', 'ho_y'].map((h) => outcome(connector.sendMessage(message(h, 'hi'), { externalRef: null, signal: live() }))));

    helpdesk.respond = () => ({ status: 503, headers: { 'retry-after': '7' } });
    const unavailable = await deliverTwo();
    for (const o of unavailable) expect(o).toMatchObject({ ok: false, retryable: true, statusCode: 503, retryAfterMs: 7000 });

    helpdesk.respond = () => ({ status: 410 });
    for (const o of await deliverTwo()) expect(o).toMatchObject({ ok: false, retryable: false, statusCode: 410 });

    helpdesk.respond = () => ({ status: 200, body: '<html>welcome</html>' });
    for (const o of await deliverTwo()) expect(o).toMatchObject({ ok: false, retryable: true, message: expect.stringContaining('no per-event results') });
    // Nothing of those calls counts as taken.
    expect(helpdesk.received).toEqual([]);
  });

  it('a helpdesk that does not answer in time, or cannot be reached, fails the call retryably', async () => {
    const { connector, helpdesk } = await setUp({}, { timeoutMs: 300 });
    helpdesk.respond = () => ({ status: 200, delayMs: 2000 });
    const started = Date.now();
    const late = await Promise.all(['ho_1', 'ho_2'].map((h) => outcome(connector.sendMessage(message(h, 'hi'), { externalRef: null, signal: live() }))));
    expect(Date.now() - started).toBeLessThan(1500);
    for (const o of late) expect(o).toMatchObject({ ok: false, retryable: true, message: expect.stringContaining('deadline exceeded') });

    await helpdesk.close();
    const unreachable = await outcome(connector.sendMessage(message('ho_3', 'hi'), { externalRef: null, signal: live() }));
    expect(unreachable).toMatchObject({ ok: false, retryable: true, message: expect.stringContaining('failed') });
  });

  it('an aborted event is rejected at once, whether its call is still open or already out; the others get their results', async () => {
    const { connector, helpdesk } = await setUp({ maxWaitMs: 50 });
    // Aborted while its call is still open: never sent.
    const gone = new AbortController();
    const kept = message('ho_kept', 'kept');
    const dropped = message('ho_dropped', 'dropped');
    const keptDone = outcome(connector.sendMessage(kept, { externalRef: null, signal: live() }));
    const droppedDone = outcome(connector.sendMessage(dropped, { externalRef: null, signal: gone.signal }));
    gone.abort(new Error('instance shutting down'));
    expect(await droppedDone).toMatchObject({ ok: false, retryable: true, message: expect.stringContaining('instance shutting down') });
    expect(await keptDone).toEqual({ ok: true });
    expect(helpdesk.batches.map((b) => b.events.map((e) => e.handoverId))).toEqual([['ho_kept']]);

    // Aborted while its call is out: rejected before the answer comes; the other still gets its result.
    helpdesk.respond = () => ({ status: 200, delayMs: 400 });
    const late = new AbortController();
    const waiting = outcome(connector.sendMessage(message('ho_waits', 'waits'), { externalRef: null, signal: live() }));
    const leaving = outcome(connector.sendMessage(message('ho_leaves', 'leaves'), { externalRef: null, signal: late.signal }));
    await helpdesk.waitFor(() => helpdesk.requests === 2, 2000, 'the second call');
    const abortedAt = Date.now();
    late.abort(new Error('deadline'));
    expect(await leaving).toMatchObject({ ok: false, retryable: true });
    expect(Date.now() - abortedAt).toBeLessThan(200);
    expect(await waiting).toEqual({ ok: true });

    // A signal already aborted: rejected without a call.
    const calls = helpdesk.requests;
    expect(await outcome(connector.sendMessage(message('ho_z', 'z'), { externalRef: null, signal: AbortSignal.abort(new Error('gone')) }))).toMatchObject({
      ok: false,
      retryable: true,
    });
    expect(helpdesk.requests).toBe(calls);
  });

  it('calls reuse one kept-alive connection, and each request arrives in one write', async () => {
    const { connector, helpdesk } = await setUp();
    for (let i = 0; i < 5; i++) {
      await Promise.all(['ho_1', 'ho_2'].map((h) => connector.sendMessage(message(h, `round ${i}`), { externalRef: null, signal: live() })));
    }
    expect(helpdesk.requests).toBe(5);
    expect(helpdesk.connections).toBe(1);
    // Head and body written together (undici corks them into one writev): the fake reads each call at once.
    expect(helpdesk.socketReads).toBe(5);
  });
});
