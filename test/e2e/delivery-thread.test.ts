import { readdirSync, readFileSync } from 'node:fs';
import { getPriority as osPriority } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { startSignedWebhookServer, type SignedWebhookServer } from '../fakes/signed-webhook-server.js';
import { captureLogs } from '../support/log-capture.js';
import { firstArrivals, messageTexts, numbered } from '../support/receivers.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { eventually, startTestService, type DbKind, type TestService } from '../support/test-service.js';
import { createTestDb } from '../support/test-db.js';

/**
 * The delivery worker in a thread of its own (HANDOVER_DELIVERY_THREAD): the HTTP thread hands it
 * lanes, counts its attempts, mirrors its circuits and ends the conversations whose items it gave up; a
 * thread that dies is started again and nothing accepted is lost. On both stores: the embedded one runs
 * in its own thread, as in the service, and the delivery thread's statements go on a session of that
 * thread's of their own (pglite-sessions.ts), the accept path's batches too.
 */
const HELPDESK_SECRET = 'whsec_' + Buffer.from('helpdesk-shared-secret-of-32-bytes!!').toString('base64');

async function setUp(t: TestService, bot: SignedWebhookServer, helpdesk: GenericHelpdesk) {
  const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Initech', webhookUrl: bot.url });
  const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
    type: 'webhook',
    name: 'desk',
    config: { url: helpdesk.url, secret: helpdesk.secret },
  });
  expect(connector.status).toBe(201);
  helpdesk.inboundUrl = connector.body.inboundUrl;
  expect((await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'desk', connectorId: connector.body.id })).status).toBe(201);
  const token = tenant.body.apiKey as string;
  const created = await t.api('POST', '/v1/handovers', {
    token,
    body: { conversationId: 'c-1', queue: 'desk', user: { id: 'u-1' }, transcript: [{ role: 'user', text: 'help' }] },
  });
  expect(created.status).toBe(201);
  return { token, handoverId: created.body.id as string, connectorId: connector.body.id as string, webhookSecret: tenant.body.webhookSecret as string };
}

/** The service with its delivery thread, a bot and a helpdesk, and one handover towards the helpdesk. */
async function startWith(kind: DbKind, overrides: Record<string, unknown>, options: Parameters<typeof startTestService>[2] = {}) {
  // The embedded store in its own thread, as the service runs it: the delivery thread gets a session of it.
  const db = options.db ?? (kind === 'pglite' ? await createTestDb('pglite', { thread: true }) : undefined);
  const t = await startTestService(kind, { 'delivery.thread': 'on', ...overrides }, { ...options, ...(db ? { db } : {}) });
  if (db && !options.db) {
    // Made here, so closed here: the test service closes only a database it made itself.
    const close = t.close.bind(t);
    t.close = async () => {
      await close();
      await db.dropAndClose();
    };
  }
  let botSecret = '';
  const bot = await startSignedWebhookServer(() => botSecret);
  const helpdesk = await startGenericHelpdesk(HELPDESK_SECRET);
  return {
    t,
    bot,
    helpdesk,
    setUp: async () => {
      const set = await setUp(t, bot, helpdesk);
      botSecret = set.webhookSecret;
      return set;
    },
  };
}

/** The handover set up, with an agent joined at the helpdesk: a user's messages now go to it. */
async function withAgent(started: Awaited<ReturnType<typeof startWith>>) {
  const set = await started.setUp();
  await started.helpdesk.waitFor((r) => r.some((w) => w.body.type === 'handover.requested'), 10_000, 'handover.requested');
  expect((await started.helpdesk.send({ type: 'agent.joined', handoverId: set.handoverId, data: { agent: { id: 'a-1', name: 'Ann' } } })).status).toBe(200);
  return set;
}

/** How many times the message `u-once` is stored. */
async function storedOnce(t: TestService, handoverId: string): Promise<number> {
  const { rows } = await t.db.query<{ n: number }>(
    "select count(*)::int as n from messages where handover_id = $1 and client_id = 'u-once' and direction = 'to_agent'",
    [handoverId],
  );
  return rows[0]!.n;
}

/** The message `u-once` sent again after its first try failed: stored once, and delivered once. */
async function retriedOnce(t: TestService, helpdesk: GenericHelpdesk, token: string, handoverId: string) {
  const retried = await t.api('POST', `/v1/handovers/${handoverId}/messages`, { token, body: { id: 'u-once', text: 'written in the thread' } });
  expect(retried.status).toBe(202);
  expect(await storedOnce(t, handoverId)).toBe(1);
  await helpdesk.waitFor((r) => r.some((w) => w.body.type === 'message.created'), 30_000, 'the message at the helpdesk');
  expect(messageTexts(firstArrivals(helpdesk.eventsFor(handoverId)))).toEqual(['written in the thread']);
}

async function send(t: TestService, token: string, handoverId: string, from: number, to: number) {
  for (let i = from; i < to; i++) {
    const res = await t.api('POST', `/v1/handovers/${handoverId}/messages`, { token, body: { id: `u-${i}`, text: `user ${i}` } });
    expect(res.status).toBe(202);
  }
}

describe.each<DbKind>(['pg', 'pglite'])('the delivery worker in its own thread (%s)', (kind) => {
  let t: TestService | undefined;
  let bot: SignedWebhookServer | undefined;
  let helpdesk: GenericHelpdesk | undefined;
  afterEach(async () => {
    await t?.close();
    await bot?.close();
    await helpdesk?.close();
    t = bot = helpdesk = undefined;
  });

  it('delivers in order and once each, and the HTTP thread counts its attempts', async () => {
    const logs = captureLogs();
    // With the start's warm-up (off in the other tests): its calls stay inside the process.
    const started = await startWith(kind, { 'delivery.warmUpCalls': 30 }, { log: createLogger('info', logs.stream) });
    ({ t, bot, helpdesk } = started);
    expect(t.service.deliveryThread()).not.toBeNull();
    expect(logs.text()).toContain('delivery warmed up: 30 loopback calls');
    const { token, handoverId } = await started.setUp();
    await helpdesk.waitFor((r) => r.some((w) => w.body.type === 'handover.requested'), 10_000, 'handover.requested');
    expect((await helpdesk.send({ type: 'agent.joined', handoverId, data: { agent: { id: 'a-1', name: 'Ann' } } })).status).toBe(200);
    await bot.waitFor((r) => r.some((w) => w.body.type === 'handover.accepted'), 10_000, 'handover.accepted at the bot');

    // Sent in parallel bursts, so lanes are handed while the thread is delivering and giving them back.
    await Promise.all([send(t, token, handoverId, 0, 40), helpdesk.send({ type: 'agent.typing', handoverId, data: {} })]);
    await send(t, token, handoverId, 40, 80);
    await helpdesk.waitFor((r) => r.filter((w) => w.body.type === 'message.created').length >= 80, 20_000, '80 messages at the helpdesk');
    // Exactly once each here (no retry was needed), in the order accepted.
    expect(messageTexts(helpdesk.eventsFor(handoverId))).toEqual(numbered('user', 80));
    expect(helpdesk.eventsFor(handoverId, 'message.created')).toHaveLength(80);
    expect(helpdesk.received.some((w) => JSON.stringify(w.body).includes('warm_up'))).toBe(false);

    // Counted by the HTTP thread's metrics, from the thread's notes.
    await eventually(async () => {
      const metrics = await (await fetch(`${t!.url}/metrics`)).text();
      const count = /handover_delivery_latency_seconds_count\{direction="to_agent"\} (\d+)/.exec(metrics);
      return count && Number(count[1]) >= 81;
    }, 'deliveries counted on /metrics');
    // Each thread's CPU, as the OS counts it (Linux): the delivery thread's as it reported it.
    if (process.platform === 'linux')
      await eventually(async () => {
        const metrics = await (await fetch(`${t!.url}/metrics`)).text();
        const seconds = (thread: string) => Number(new RegExp(`^handover_thread_cpu_seconds_total\\{thread="${thread}"\\} (\\S+)$`, 'm').exec(metrics)?.[1]);
        // And the share of the last window the HTTP thread's loop ran on a CPU, beside its utilization.
        const loopCpu = Number(/^handover_event_loop_cpu_ratio (\S+)$/m.exec(metrics)?.[1]);
        return seconds('http') > 0 && seconds('delivery') > 0 && loopCpu >= 0 && loopCpu <= 1;
      }, 'both threads’ CPU, and the loop thread’s share of a CPU, on /metrics');
  });

  // (A process already at nice 19 has no lower priority to give the thread.)
  it.runIf(kind === 'pg' && process.platform === 'linux' && osPriority() < 19)(
    'runs at a lower CPU priority than the HTTP thread (HANDOVER_DELIVERY_THREAD_NICE), and at the same one with 0',
    async () => {
      // The nice value of each thread of this process, as the OS has it (/proc/self/task/<tid>/stat, field 19).
      const threads = () =>
        new Map(
          readdirSync('/proc/self/task').map((tid) => {
            const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
            return [tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])] as const;
          }),
        );
      const own = () => threads().get(String(process.pid))!;
      const mainNice = own();
      const newThreads = (before: Map<string, number>) => [...threads()].filter(([tid]) => !before.has(tid)).map(([, nice]) => nice);

      const before = threads();
      const logs = captureLogs();
      ({ t, bot, helpdesk } = await startWith(kind, {}, { log: createLogger('info', logs.stream) }));
      await eventually(async () => newThreads(before).includes(Math.min(19, mainNice + 10)) || undefined, 'a thread at nice +10');
      // Said while the thread starts, before the service listens: lines it logs then are written too.
      expect(logs.text()).toContain(`the delivery thread runs at nice ${Math.min(19, mainNice + 10)}`);
      // That thread alone: the HTTP thread and the process's other threads keep their priority.
      expect(newThreads(before).filter((nice) => nice !== mainNice)).toEqual([Math.min(19, mainNice + 10)]);
      expect(own()).toBe(mainNice);
      expect([...threads()].filter(([tid]) => before.has(tid)).every(([tid, nice]) => nice === before.get(tid))).toBe(true);
      await t.close();
      await bot.close();
      await helpdesk.close();
      t = bot = helpdesk = undefined;

      const again = threads();
      ({ t, bot, helpdesk } = await startWith(kind, { 'delivery.threadNice': 0 }));
      expect(t.service.deliveryThread()).not.toBeNull();
      expect(newThreads(again).every((nice) => nice === mainNice)).toBe(true);
    },
  );

  it('mirrors an open circuit for routing and the status page, and ends a conversation whose item is given up', async () => {
    const started = await startWith(kind, { 'connectors.failureThreshold': 2, 'connectors.cooldownMs': 300, 'delivery.maxAttempts': 3 });
    ({ t, bot, helpdesk } = started);
    helpdesk.respond = () => ({ status: 503 });
    const { handoverId, connectorId } = await started.setUp();

    // The thread's circuit opened: the HTTP thread's routing and metrics see it.
    await eventually(async () => t!.service.deps.connectorState(connectorId) === 'open' || undefined, 'the circuit open on the HTTP thread');
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toContain(`handover_connector_circuit_state{connector_id="${connectorId}"} 2`);

    // Given up after its attempts: the HTTP thread ends the handover and tells the bot.
    await bot.waitFor((r) => r.some((w) => w.body.type === 'handover.ended'), 30_000, 'handover.ended at the bot');
    const ended = bot.received.find((w) => w.body.type === 'handover.ended')!.body as { handoverId: string; data: { reason: string } };
    expect(ended).toMatchObject({ handoverId, data: { reason: 'failed' } });
  });

  it.runIf(kind === 'pg')(
    'writes accepted messages with its own connections; dying while writing, it fails the caller honestly, and a retry stores the message once',
    async () => {
      const started = await startWith(kind, { 'delivery.leaseMs': 1000 });
      ({ t, bot, helpdesk } = started);
      const { token, handoverId } = await withAgent(started);

      // The handover's row locked elsewhere: the accept statement waits for it, and shows where it runs.
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let locked!: (pid: number) => void;
      const holder = new Promise<number>((resolve) => (locked = resolve));
      const held = t.db.transaction(async (q) => {
        await q.query('select 1 from handovers where id = $1 for update', [handoverId]);
        locked((await q.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
        await released;
      });
      try {
        const holderPid = await holder;
        const answer = t.api('POST', `/v1/handovers/${handoverId}/messages`, { token, body: { id: 'u-once', text: 'written in the thread' } });
        const waiting = await eventually(async () => {
          const { rows } = await t!.db.query<{ application_name: string }>(
            'select application_name from pg_stat_activity where $1 = any(pg_blocking_pids(pid))',
            [holderPid],
          );
          return rows[0];
        }, 'the accept statement waiting for the lock');
        expect(waiting.application_name).toBe('handover-delivery');

        // The thread dies with the batch in its hands: the caller is told at once, with the true cause.
        const first = t.service.deliveryThread()!;
        await first.terminate();
        const refused = await answer;
        expect(refused.status).toBe(503);
        expect(refused.body.error.code).toBe('database_unavailable');
        expect(refused.body.error.message).toContain('same clientId');
      } finally {
        release();
        await held;
      }
      // The statement may still have committed once the lock went: the retry is then a repeat.
      await retriedOnce(t, helpdesk, token, handoverId);
    },
  );

  it.runIf(kind === 'pglite')(
    "writes accepted messages on its own session of the embedded database's thread; dying while one waits there, it fails the caller honestly, and a retry stores the message once",
    async () => {
      const started = await startWith(kind, { 'delivery.leaseMs': 1000 });
      ({ t, bot, helpdesk } = started);
      const { token, handoverId } = await withAgent(started);

      // A transaction of the HTTP thread's session holds the one connection: the accept statement, sent by
      // the delivery thread on its own session, waits for it in the database's thread.
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let opened!: () => void;
      const isOpen = new Promise<void>((resolve) => (opened = resolve));
      const held = t.db.transaction(async (q) => {
        await q.query('select 1');
        opened();
        await released;
      });
      try {
        await isOpen;
        let settled = false;
        const answer = t.api('POST', `/v1/handovers/${handoverId}/messages`, { token, body: { id: 'u-once', text: 'written in the thread' } });
        void answer.then(() => (settled = true));
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(settled).toBe(false);
        // The delivery thread dies with the batch waiting on its session: had this thread written it, it
        // would still be waiting for the connection and be stored once the transaction ends.
        await t.service.deliveryThread()!.terminate();
        const refused = await answer;
        expect(refused.status).toBe(503);
        expect(refused.body.error.code).toBe('database_unavailable');
        expect(refused.body.error.message).toContain('same clientId');
      } finally {
        release();
        await held;
      }
      // Its session closed with it: the statement waiting there was dropped, not run once the connection was free.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await storedOnce(t, handoverId)).toBe(0);
      await retriedOnce(t, helpdesk, token, handoverId);
    },
  );

  it('a thread that dies is reported and started again, and every accepted message still arrives in order', async () => {
    const logs = captureLogs();
    const started = await startWith(kind, { 'delivery.leaseMs': 1000 }, { log: createLogger('info', logs.stream) });
    ({ t, bot, helpdesk } = started);
    const { token, handoverId } = await started.setUp();
    await helpdesk.waitFor((r) => r.some((w) => w.body.type === 'handover.requested'), 10_000, 'handover.requested');
    expect((await helpdesk.send({ type: 'agent.joined', handoverId, data: { agent: { id: 'a-1', name: 'Ann' } } })).status).toBe(200);

    // Slow answers, so the thread holds the lane, with items handed to it, when it dies.
    helpdesk.respond = () => ({ status: 200, delayMs: 30 });
    await send(t, token, handoverId, 0, 20);
    const first = t.service.deliveryThread()!;
    await first.terminate();
    await send(t, token, handoverId, 20, 40);
    await eventually(async () => {
      const now = t!.service.deliveryThread();
      return now !== null && now !== first;
    }, 'a new delivery thread');
    expect(logs.text()).toContain('the delivery thread stopped');

    await helpdesk.waitFor(
      (r) => firstArrivals(r.map((w) => w.body)).filter((b) => b.type === 'message.created').length >= 40,
      30_000,
      'all 40 messages at the helpdesk',
    );
    // At least once: an item in flight when the thread died may come twice, but in order, none missing.
    expect(messageTexts(firstArrivals(helpdesk.eventsFor(handoverId)))).toEqual(numbered('user', 40));
  });
});
