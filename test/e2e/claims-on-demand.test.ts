import { afterEach, describe, expect, it } from 'vitest';
import { writeUserMessages, type UserMessageWrite } from '../../src/handover/accept-user-messages.js';
import { LaneHandoff } from '../../src/delivery/lane-handoff.js';
import { startDeliveryWorker, type DeliveryWorker, type OutboxRow } from '../../src/delivery/worker.js';
import { DeliveryError } from '../../src/outbound/delivery-error.js';
import { ConnectorHealth } from '../../src/resilience/circuit-breaker.js';
import type { Db } from '../../src/store/db.js';
import { newId } from '../../src/store/ids.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { eventually, startTestService, type TestService } from '../support/test-service.js';

const SECRET = 'whsec_' + Buffer.from('claims-on-demand-secret-0123456789').toString('base64');
/** Longer than any test here: whatever they see delivered was not found by the safety-net poll. */
const POLL_MS = 60_000;

/**
 * The delivery worker queries the outbox for work (a claim) when there may be some: at start, on a
 * wake-up, when a lane put back for later comes due, and when a run ends while claimable work may be
 * waiting (the last claim was cut short, or skipped because every run was busy, or the run gave its lane
 * back with items left) — not at the end of every run, which under load was a query a message on every
 * instance. Driven step by step; the poll
 * is a minute, so nothing here is found by it.
 */
describe('claims when there is something to claim (pg)', () => {
  let t: TestService | undefined;
  let helpdesk: GenericHelpdesk | undefined;
  let worker: DeliveryWorker | undefined;
  afterEach(async () => {
    await worker?.stop({ graceMs: 1000 });
    await t?.close();
    await helpdesk?.close();
    t = helpdesk = worker = undefined;
  });

  /** A service with `count` live handovers on a generic-webhook helpdesk, its own worker stopped. */
  async function setUp(count: number): Promise<{ tenantId: string; handovers: string[] }> {
    t = await startTestService('pg');
    helpdesk = await startGenericHelpdesk(SECRET);
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Claimco' });
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'webhook',
      name: 'hd',
      config: { url: helpdesk.url, secret: SECRET },
    });
    await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'q', connectorId: connector.body.id });
    const handovers: string[] = [];
    for (let i = 0; i < count; i++) {
      const created = await t.api('POST', '/v1/handovers', {
        token: tenant.body.apiKey,
        body: { conversationId: `c-${i}`, queue: 'q', user: { id: `u-${i}` } },
      });
      expect(created.status).toBe(201);
      handovers.push(created.body.id);
    }
    await helpdesk.waitFor((r) => r.filter((w) => w.body.type === 'handover.requested').length === count, 10_000, 'every handover.requested');
    // From here on only the test's worker delivers.
    await t.service.stopBackground(1000);
    return { tenantId: tenant.body.id, handovers };
  }

  /** The service's database, counting the claim statements that go through it. */
  function counting(db: Db): { db: Db; claims: () => number } {
    let claims = 0;
    const counted = new Proxy(db, {
      get(target, prop, receiver) {
        if (prop === 'query')
          return (sql: Parameters<Db['query']>[0], params?: Parameters<Db['query']>[1]) => {
            if (typeof sql !== 'string' && sql.name === 'claim-lanes') claims++;
            return target.query(sql, params);
          };
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    return { db: counted, claims: () => claims };
  }

  function message(tenantId: string, handoverId: string, text: string): UserMessageWrite {
    const now = new Date();
    const id = newId('message', now.getTime());
    return {
      tenantId,
      handoverId,
      clientId: text,
      messageId: id,
      text,
      attachments: [],
      createdAt: now,
      work: { kind: 'message.created', eventId: newId('event'), handoverId, message: { id, text, attachments: [], createdAt: now.toISOString() } },
      traceParent: null,
    };
  }

  function start(
    db: Db,
    handoff: LaneHandoff,
    concurrency: number,
    deliver: (row: OutboxRow) => Promise<void>,
    onRuns: (n: number) => void,
    settings: { leaseMs?: number; retryMaxMs?: number } = {},
  ): DeliveryWorker {
    const notThisSide = async () => {
      throw new Error('not this side');
    };
    return startDeliveryWorker({
      db,
      bus: t!.service.deps.bus,
      log: createLogger('silent'),
      instanceId: 'claims-test',
      concurrency,
      leaseMs: settings.leaseMs ?? 30_000,
      timeoutMs: 2000,
      pollIntervalMs: POLL_MS,
      retryBaseMs: 20,
      retryMaxMs: settings.retryMaxMs ?? 40,
      deliverers: { agent: { deliver, onGiveUp: notThisSide }, bot: { deliver: notThisSide, onGiveUp: notThisSide } },
      health: new ConnectorHealth({ failureThreshold: 5, cooldownMs: 1000, maxInflightPerConnector: 8 }),
      quoteAnswers: false,
      handoff,
      onRunsChanged: onRuns,
    });
  }

  it('does not query the outbox when a handed lane is done and nothing else waits', async () => {
    const { tenantId, handovers } = await setUp(1);
    const { db, claims } = counting(t!.db);
    const delivered: string[] = [];
    let runs = 0;
    const handoff = new LaneHandoff('claims-test', 30_000);
    worker = start(
      db,
      handoff,
      4,
      async (row) => {
        delivered.push((row.payload as { message: { text: string } }).message.text);
      },
      (n) => (runs = n),
    );
    // The claim every worker makes when it starts; it finds nothing (the handover's opening was delivered).
    await eventually(async () => claims() === 1 || undefined, 'the first claim');
    for (const text of ['one', 'two', 'three']) {
      const [written] = await writeUserMessages(t!.db, [message(tenantId, handovers[0]!, text)], 3, handoff);
      expect(written).toMatchObject({ handed: true });
      await eventually(async () => (delivered.includes(text) && runs === 0) || undefined, `${text} delivered and its lane given back`);
    }
    // A claim started at a run's end would have gone out within these turns.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(delivered).toEqual(['one', 'two', 'three']);
    expect(claims()).toBe(1);
  });

  it('claims work it could not take while full as soon as a run ends', async () => {
    const { tenantId, handovers } = await setUp(2);
    const delivered: string[] = [];
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const handoff = new LaneHandoff('claims-test', 30_000);
    worker = start(
      t!.db,
      handoff,
      1,
      async (row) => {
        const text = (row.payload as { message: { text: string } }).message.text;
        if (text === 'first') await gate;
        delivered.push(text);
      },
      (n) => (runs = n),
    );
    // The only run is busy with the first handover's message...
    const [first] = await writeUserMessages(t!.db, [message(tenantId, handovers[0]!, 'first')], 3, handoff);
    expect(first).toMatchObject({ handed: true });
    await eventually(async () => runs === 1 || undefined, 'the first lane in work');
    // ...so the second's cannot be handed over: it waits in the outbox, and the accept path wakes the workers.
    const [second] = await writeUserMessages(t!.db, [message(tenantId, handovers[1]!, 'second')], 3, handoff);
    expect(second).toMatchObject({ handed: false });
    t!.service.deps.bus.publish('outbox', { tenantId });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(delivered).toEqual([]);
    release();
    await eventually(async () => delivered.length === 2 || undefined, 'both delivered, the second found by a claim when the first run ended');
    expect(delivered).toEqual(['first', 'second']);
  });

  it('claims a lane put back for a retry when the retry is due', async () => {
    const { tenantId, handovers } = await setUp(1);
    const delivered: string[] = [];
    let tries = 0;
    const handoff = new LaneHandoff('claims-test', 30_000);
    worker = start(
      t!.db,
      handoff,
      4,
      async (row) => {
        if (++tries === 1) throw new DeliveryError('the helpdesk is busy', { retryable: true });
        delivered.push((row.payload as { message: { text: string } }).message.text);
      },
      () => {},
    );
    const [written] = await writeUserMessages(t!.db, [message(tenantId, handovers[0]!, 'again')], 3, handoff);
    expect(written).toMatchObject({ handed: true });
    await eventually(async () => delivered.length === 1 || undefined, 'the retry delivered when due');
    expect(tries).toBe(2);
    expect(delivered).toEqual(['again']);
  });

  it('claims each lane put back for a retry when its own retry is due', async () => {
    const { tenantId, handovers } = await setUp(2);
    const delivered: string[] = [];
    const tried = new Set<string>();
    const handoff = new LaneHandoff('claims-test', 30_000);
    worker = start(
      t!.db,
      handoff,
      4,
      async (row) => {
        const text = (row.payload as { message: { text: string } }).message.text;
        if (!tried.has(text)) {
          tried.add(text);
          // Retry-After sets each one's own retry time: one soon, one later.
          throw new DeliveryError('the helpdesk is busy', { retryable: true, retryAfterMs: text === 'soon' ? 100 : 700 });
        }
        delivered.push(text);
      },
      () => {},
      { retryMaxMs: 2000 },
    );
    const written = await writeUserMessages(t!.db, [message(tenantId, handovers[0]!, 'soon'), message(tenantId, handovers[1]!, 'later')], 3, handoff);
    expect(written).toMatchObject([{ handed: true }, { handed: true }]);
    await eventually(async () => delivered.length === 2 || undefined, 'both retries delivered, each when due');
    expect(delivered).toEqual(['soon', 'later']);
  });

  it('claims what is left of a lane given back at the end of its time slice', async () => {
    const { tenantId, handovers } = await setUp(1);
    const delivered: string[] = [];
    const handoff = new LaneHandoff('claims-test', 30_000);
    // A run holds a lane for half the lease at most (200 ms here), then gives it back to be claimed again.
    worker = start(
      t!.db,
      handoff,
      4,
      async (row) => {
        await new Promise((resolve) => setTimeout(resolve, 25));
        delivered.push((row.payload as { message: { text: string } }).message.text);
      },
      () => {},
      { leaseMs: 400 },
    );
    const texts = Array.from({ length: 20 }, (_, i) => `m${i}`);
    const written = await writeUserMessages(
      t!.db,
      texts.map((text) => message(tenantId, handovers[0]!, text)),
      3,
      handoff,
    );
    expect(written.every((w) => w?.handed)).toBe(true);
    await eventually(async () => delivered.length === texts.length || undefined, 'every message, across time slices');
    expect(delivered).toEqual(texts);
  });
});
