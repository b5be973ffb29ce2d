/**
 * The generic webhook protocol's batch mode through the whole service: bot API → outbox → delivery
 * worker → one signed call for events of several handovers → a result per event. The helpdesk is the
 * fake speaking the batch wire (it checks each call's signature over the batch body).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { startSignedWebhookServer, type SignedWebhookServer } from '../fakes/signed-webhook-server.js';
import { dbKinds, type DbKind } from '../support/test-db.js';
import { firstArrivals, messageTexts, numbered } from '../support/receivers.js';
import { deliveriesSettled, sharedServices } from '../support/shared-services.js';
import { eventually, type TestService } from '../support/test-service.js';

const SECRET = 'whsec_' + Buffer.from('batch-mode-helpdesk-secret-32-by').toString('base64');

type Event = Record<string, any>;
const textOf = (event: Event): string | undefined => (event.type === 'message.created' ? event.data?.message?.text : undefined);

describe.each<DbKind>([...dbKinds])('generic webhook helpdesk in batch mode, end to end (%s)', (kind) => {
  // One service per store and settings; each case has a tenant, helpdesk and bot of its own, reads
  // the database for its tenant only, and lets its deliveries settle before its fakes close.
  const service = sharedServices(kind);
  let parts: { t: TestService; bot: SignedWebhookServer; helpdesk: GenericHelpdesk; tenantId?: string } | undefined;
  afterEach(async () => {
    const done = parts;
    parts = undefined;
    if (!done) return;
    try {
      if (done.tenantId) await deliveriesSettled(done.t, done.tenantId);
    } finally {
      await done.bot.close();
      await done.helpdesk.close();
    }
  });

  async function setUp(options: { batch?: Record<string, unknown>; service?: Record<string, unknown> } = {}) {
    const t = await service(options.service);
    let botSecret = '';
    const bot = await startSignedWebhookServer(() => botSecret);
    const helpdesk = await startGenericHelpdesk(SECRET, { batch: true });
    parts = { t, bot, helpdesk };
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Batchco', webhookUrl: bot.url });
    botSecret = tenant.body.webhookSecret;
    parts.tenantId = tenant.body.id;
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'webhook',
      name: 'batched-helpdesk',
      config: { url: helpdesk.url, secret: SECRET, batch: options.batch ?? {} },
    });
    expect(connector.status, JSON.stringify(connector.body)).toBe(201);
    helpdesk.inboundUrl = connector.body.inboundUrl;
    expect((await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'helpdesk', connectorId: connector.body.id })).status).toBe(201);
    const s = { t, bot, helpdesk, apiKey: tenant.body.apiKey as string, tenantId: tenant.body.id as string };
    return {
      ...s,
      /** Handovers started and taken by the helpdesk. */
      async start(count: number): Promise<string[]> {
        const ids: string[] = [];
        for (let i = 0; i < count; i++) {
          const created = await s.t.api('POST', '/v1/handovers', {
            token: s.apiKey,
            body: { conversationId: `c-${i}`, queue: 'helpdesk', user: { id: `u-${i}` } },
          });
          expect(created.status).toBe(201);
          ids.push(created.body.id);
        }
        await eventually(async () => ids.every((id) => s.helpdesk.eventsFor(id, 'handover.requested').length > 0), 'the handovers at the helpdesk');
        return ids;
      },
      send(handoverId: string, id: string, text: string) {
        return s.t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: s.apiKey, body: { id, text } });
      },
      /** Every arrival of the event whose text is `text`, across calls: the call's webhook id and the event. */
      arrivals(text: string): Array<{ webhookId: string; event: Event }> {
        return s.helpdesk.batches.flatMap((b) => b.events.filter((e) => textOf(e) === text).map((event) => ({ webhookId: b.webhookId, event })));
      },
      /** Attempts that failed, by message text (the outbox keeps each item's payload). */
      async failedAttempts(): Promise<Array<{ text: string; outcome: string; status_code: number | null; error: string }>> {
        const { rows } = await s.t.db.query<{ text: string; outcome: string; status_code: number | null; error: string }>(
          `select o.payload->'message'->>'text' as text, a.outcome, a.status_code, a.error from delivery_attempts a join outbox o on o.id = a.outbox_id where o.target = 'agent' and o.tenant_id = $1 order by a.started_at`,
          [s.tenantId],
        );
        return rows;
      },
    };
  }

  it("several handovers' events share calls; each handover's order holds across calls; no call holds two events of one handover", async () => {
    const s = await setUp({ batch: { maxWaitMs: 20 } });
    const handovers = await s.start(6);
    const each = 15;
    await Promise.all(
      handovers.map(async (handoverId, h) => {
        for (let i = 0; i < each; i++) expect((await s.send(handoverId, `m-${i}`, `h${h} ${i}`)).status).toBe(202);
      }),
    );
    for (const [h, handoverId] of handovers.entries()) {
      await eventually(async () => messageTexts(s.helpdesk.eventsFor(handoverId)).length >= each, `handover ${h}'s messages`);
      expect(messageTexts(s.helpdesk.eventsFor(handoverId))).toEqual(numbered(`h${h}`, each));
    }
    expect(s.helpdesk.rejected).toEqual([]);
    const calls = s.helpdesk.batches;
    // Coalesced: fewer calls than events, and calls that carry several handovers.
    expect(calls.length).toBeLessThan(handovers.length * (each + 1));
    expect(calls.some((c) => new Set(c.events.map((e) => e.handoverId)).size > 1)).toBe(true);
    // One item per handover in flight: a call never holds two events of one handover.
    for (const call of calls) expect(new Set(call.events.map((e) => e.handoverId)).size).toBe(call.events.length);
    // Every call had its own webhook id, none of them an event's.
    const eventIds = new Set(calls.flatMap((c) => c.events.map((e) => e.id)));
    expect(new Set(calls.map((c) => c.webhookId)).size).toBe(calls.length);
    for (const call of calls) expect(eventIds.has(call.webhookId)).toBe(false);
  });

  it('an event answered "retry" is retried alone; the other events of its call are done once', async () => {
    const s = await setUp({ batch: { maxWaitMs: 20 } });
    const handovers = await s.start(3);
    s.helpdesk.answerEvent = (event, attempt) => (textOf(event) === 'h1 0' && attempt === 1 ? { status: 'retry', error: 'agent desk busy' } : { status: 'ok' });
    await Promise.all(handovers.map((id, h) => s.send(id, 'm-0', `h${h} 0`)));
    await eventually(async () => handovers.every((id) => messageTexts(s.helpdesk.eventsFor(id)).length === 1), 'every message at the helpdesk');
    expect(s.arrivals('h0 0')).toHaveLength(1);
    expect(s.arrivals('h2 0')).toHaveLength(1);
    const retried = s.arrivals('h1 0');
    expect(retried).toHaveLength(2);
    expect(retried[1]!.event).toEqual(retried[0]!.event);
    // The attempt that failed is recorded for that item only, with the receiver's reason quoted.
    expect(await s.failedAttempts()).toEqual([
      { text: 'h1 0', outcome: 'retry', status_code: null, error: expect.stringMatching(/answered "retry" for this event of a batch: agent desk busy$/) },
    ]);
    // Successes are recorded in batches, shortly after: the items delivered at their first attempt are
    // deleted, the one that failed first is kept as done, beside its failed attempt.
    await eventually(async () => {
      const { rows } = await s.t.db.query<{ state: string; n: number }>(
        `select state, count(*)::int as n from outbox where target = 'agent' and tenant_id = $1 group by state`,
        [s.tenantId],
      );
      return rows.length === 1 && rows[0]!.state === 'done' && rows[0]!.n === 1;
    }, 'every item recorded as delivered');
  });

  it('an event answered "failed" is given up: its handover fails and the bot is told; the others go on', async () => {
    const s = await setUp({ batch: { maxWaitMs: 20 } });
    const handovers = await s.start(3);
    s.helpdesk.answerEvent = (event) => (textOf(event) === 'h1 0' ? { status: 'failed', error: 'conversation is closed' } : { status: 'ok' });
    await Promise.all(handovers.map((id, h) => s.send(id, 'm-0', `h${h} 0`)));
    const ended = await eventually(
      async () => firstArrivals(s.bot.received.map((r) => r.body)).find((b) => b.type === 'handover.ended' && b.handoverId === handovers[1]),
      'handover.ended at the bot',
    );
    expect(ended.data).toMatchObject({ reason: 'failed', detail: expect.stringContaining('answered "failed" for this event of a batch') });
    // Given up at once (a final answer), not retried.
    expect(s.arrivals('h1 0')).toHaveLength(1);
    // The other handovers are untouched and keep relaying.
    for (const h of [0, 2]) expect((await s.send(handovers[h]!, 'm-1', `h${h} 1`)).status).toBe(202);
    for (const h of [0, 2]) {
      await eventually(async () => messageTexts(s.helpdesk.eventsFor(handovers[h]!)).length === 2, `handover ${h}'s second message`);
      expect((await s.t.api('GET', `/v1/handovers/${handovers[h]}`, { token: s.apiKey })).body.state).toBe('queued');
    }
    expect((await s.t.api('GET', `/v1/handovers/${handovers[1]}`, { token: s.apiKey })).body.state).toBe('ended');
  });

  it('a 503 for the whole call retries every event of it, honouring Retry-After', async () => {
    const s = await setUp({ batch: { maxWaitMs: 20 } });
    const handovers = await s.start(3);
    // Down for the next calls: every event that arrives meanwhile is answered by the call's 503.
    const seenWhileDown = new Set<string>();
    s.helpdesk.respond = (body) => {
      const events = (body.events ?? []) as Event[];
      const down = seenWhileDown.size < handovers.length;
      if (down) for (const e of events) if (textOf(e)) seenWhileDown.add(textOf(e)!);
      return down ? { status: 503, headers: { 'retry-after': '0' } } : { status: 200 };
    };
    await Promise.all(handovers.map((id, h) => s.send(id, 'm-0', `h${h} 0`)));
    await eventually(async () => handovers.every((id) => messageTexts(s.helpdesk.eventsFor(id)).length === 1), 'every message at the helpdesk');
    const failed = await s.failedAttempts();
    expect(new Set(failed.map((f) => f.text))).toEqual(new Set(['h0 0', 'h1 0', 'h2 0']));
    for (const f of failed) expect(f).toMatchObject({ outcome: 'retry', status_code: 503 });
    // Each event was taken once, when the helpdesk was back.
    for (const h of [0, 1, 2]) expect(s.arrivals(`h${h} 0`)).toHaveLength(1);
  });

  it('an event whose answer was lost comes again with the same id and body in another call; a receiver de-duplicates it by id', async () => {
    const s = await setUp({ service: { 'delivery.timeoutMs': 500 } });
    const [handoverId] = await s.start(1);
    // The first call is taken but answered too late: the service has given up waiting and sends again.
    let calls = 0;
    s.helpdesk.respond = () => (++calls === 1 ? { status: 200, delayMs: 900 } : { status: 200 });
    expect((await s.send(handoverId!, 'm-0', 'first')).status).toBe(202);
    expect((await s.send(handoverId!, 'm-1', 'second')).status).toBe(202);
    await eventually(async () => s.arrivals('first').length === 2 && s.arrivals('second').length === 1, 'the resent event and the next one');
    const [late, again] = s.arrivals('first');
    expect(late!.webhookId).not.toBe(again!.webhookId);
    expect(late!.event).toEqual(again!.event);
    // Taken twice, seen once by a receiver that drops repeats by event id, in order.
    expect(s.helpdesk.eventsFor(handoverId!, 'message.created')).toHaveLength(3);
    expect(messageTexts(s.helpdesk.eventsFor(handoverId!))).toEqual(['first', 'second']);
  });
});
