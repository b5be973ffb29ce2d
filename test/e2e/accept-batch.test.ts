import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postUserMessage } from '../../src/handover/messages.js';
import { writeUserMessages, type UserMessageWrite } from '../../src/handover/accept-user-messages.js';
import { LaneHandoff, type HandedLane } from '../../src/delivery/lane-handoff.js';
import { userMessage } from '../support/worker-scene.js';
import { loadConfig } from '../../src/config/config.js';
import { createService, type Service } from '../../src/service.js';
import { terminatePgliteDbThread } from '../../src/store/pglite-db.js';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { deliveriesSettled, sharedServices } from '../support/shared-services.js';
import { ADMIN_TOKEN, eventually, startTestService, testSettings, type DbKind, type TestService } from '../support/test-service.js';

const SECRET = 'whsec_' + Buffer.from('accept-batch-secret-0123456789abc').toString('base64');

/**
 * The accept path's group commit, on both stores, at the level of the use case: batches formed in one
 * turn of the event loop, checked in the database itself.
 */
describe.each<DbKind>(['pglite', 'pg'])('group commit of user messages (%s)', (kind) => {
  // The cases on default settings share a service: each has a tenant and helpdesk of its own, reads
  // the database by its own handovers, and lets its deliveries settle before its helpdesk closes. The
  // case with a short handler deadline, and the one that changes the schema, start their own.
  const shared = sharedServices(kind);
  let t: TestService | undefined;
  let own: TestService | undefined;
  let helpdesk: GenericHelpdesk | undefined;
  let tenantOfCase: string | undefined;
  afterEach(async () => {
    try {
      if (t && tenantOfCase && !own) await deliveriesSettled(t, tenantOfCase);
    } finally {
      await own?.close();
      await helpdesk?.close();
      t = own = helpdesk = tenantOfCase = undefined;
    }
  });

  async function setUp(conversations: string[], service: { own?: boolean; overrides?: Record<string, unknown> } = {}) {
    t = service.own ? (own = await startTestService(kind, service.overrides)) : await shared();
    helpdesk = await startGenericHelpdesk(SECRET);
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Batchco' });
    tenantOfCase = tenant.body.id;
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'webhook',
      name: 'hd',
      config: { url: helpdesk.url, secret: SECRET },
    });
    await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'q', connectorId: connector.body.id });
    const ids: string[] = [];
    for (const c of conversations) {
      const h = await t.api('POST', '/v1/handovers', { token: tenant.body.apiKey, body: { conversationId: c, queue: 'q', user: { id: `u-${c}` } } });
      expect(h.status).toBe(201);
      ids.push(h.body.id);
    }
    return { tenantId: tenant.body.id as string, apiKey: tenant.body.apiKey as string, handovers: ids };
  }

  const post = (tenantId: string, handoverId: string, clientId: string, text = clientId) =>
    postUserMessage(t!.service.deps, { tenantId, handoverId, clientId, text });

  it('answers each caller of one batch with its own outcome: stored, repeated, ended, unknown', async () => {
    const { tenantId, apiKey, handovers } = await setUp(['a', 'b']);
    const [live, ended] = handovers as [string, string];
    expect((await t!.api('POST', `/v1/handovers/${ended}/end`, { token: apiKey, body: {} })).status).toBe(200);
    const before = t!.service.deps.userMessages!.stats.batches;
    // Submitted in one turn: one batch.
    const answers = await Promise.allSettled([
      post(tenantId, live, 'm-1'),
      post(tenantId, ended, 'm-1'),
      post(tenantId, 'ho_unknown', 'm-1'),
      post('ten_other', live, 'm-2'),
      post(tenantId, live, 'm-2'),
      post(tenantId, live, 'm-1', 'the same id again, in the same batch'),
    ]);
    const outcome = (a: PromiseSettledResult<{ id: string; duplicate: boolean }>) => (a.status === 'fulfilled' ? a.value : (a.reason as { code: string }).code);
    const [first, endedAnswer, unknown, otherTenant, second, repeat] = answers.map(outcome);
    expect(first).toMatchObject({ duplicate: false });
    expect(endedAnswer).toBe('handover_ended');
    expect(unknown).toBe('handover_not_found');
    expect(otherTenant).toBe('handover_not_found');
    expect(second).toMatchObject({ duplicate: false });
    expect(repeat).toEqual({ id: (first as { id: string }).id, duplicate: true });
    expect(t!.service.deps.userMessages!.stats.batches - before).toBeLessThanOrEqual(2);
    const { rows } = await t!.db.query<{ client_id: string; seq: number }>(
      `select client_id, seq from messages where handover_id = $1 and direction = 'to_agent' order by seq`,
      [live],
    );
    expect(rows.map((r) => r.client_id)).toEqual(['m-1', 'm-2']);
  });

  it('fails only its own caller when the database refuses a message of the batch: the others are stored', async () => {
    const { tenantId, handovers } = await setUp(['a', 'b']);
    const [first, second] = handovers as [string, string];
    // Past postUserMessage, which refuses a NUL before a message joins a batch: as if one got through.
    const unstorable: UserMessageWrite = { ...userMessage(tenantId, first, 'nul'), text: 'a\u0000b' };
    const userMessages = t!.service.deps.userMessages!;
    const before = userMessages.stats.batches;
    const [ahead, refused, beside] = await Promise.allSettled([
      post(tenantId, first, 'ahead'),
      userMessages.submit(unstorable),
      post(tenantId, second, 'beside'),
    ]);
    // One batch: the refusal came from the database, for the whole statement.
    expect(userMessages.stats.batches - before).toBe(1);
    expect(refused.status === 'rejected' && (refused.reason as { code: string }).code).toBe('invalid_request');
    expect(ahead).toMatchObject({ status: 'fulfilled', value: { duplicate: false } });
    expect(beside).toMatchObject({ status: 'fulfilled', value: { duplicate: false } });
    const { rows } = await t!.db.query<{ client_id: string }>(
      `select client_id from messages where handover_id = any($1::text[]) and direction = 'to_agent' order by client_id`,
      [[first, second]],
    );
    expect(rows.map((r) => r.client_id)).toEqual(['ahead', 'beside']);
  });

  it('refuses a message holding a NUL before it joins a batch, in its text or an attachment', async () => {
    const { tenantId, handovers } = await setUp(['a']);
    const handoverId = handovers[0]!;
    const userMessages = t!.service.deps.userMessages!;
    const before = userMessages.stats.batches;
    for (const input of [{ text: 'a\u0000b' }, { text: 'fine', attachments: [{ url: 'https://files.example/a', name: 'a\u0000.png' }] }]) {
      await expect(postUserMessage(t!.service.deps, { tenantId, handoverId, clientId: 'nul', ...input })).rejects.toMatchObject({ code: 'invalid_request' });
    }
    expect(userMessages.stats.batches).toBe(before);
  });

  it('keeps the order of acceptance per handover across batches, and takes a repeat from an earlier batch as a repeat', async () => {
    const { tenantId, handovers } = await setUp(['a', 'b']);
    const [a, b] = handovers as [string, string];
    const accepted: string[] = [];
    // Five rounds, each submitted in one turn while the previous may still be in flight.
    const rounds: Array<Promise<unknown>> = [];
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 10; i++) {
        const id = `r${round}-${i}`;
        rounds.push(post(tenantId, i % 2 ? a : b, id).then(() => accepted.push(id)));
      }
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(rounds);
    const repeat = await post(tenantId, a, 'r0-1');
    expect(repeat.duplicate).toBe(true);
    for (const [handoverId, parity] of [
      [a, 1],
      [b, 0],
    ] as const) {
      const { rows } = await t!.db.query<{ client_id: string; seq: number }>(
        `select client_id, seq from messages where handover_id = $1 and direction = 'to_agent' order by seq`,
        [handoverId],
      );
      const expected = Array.from({ length: 50 }, (_, n) => `r${Math.floor(n / 10)}-${n % 10}`).filter((_, n) => n % 2 === parity);
      expect(rows.map((r) => r.client_id)).toEqual(expected);
      // Delivered in that order too (the outbox keeps an item only until it is delivered).
      const delivered = () => helpdesk!.eventsFor(handoverId, 'message.created').map((e) => (e.data as { message: { text: string } }).message.text);
      await eventually(async () => delivered().length >= expected.length, 'every message at the helpdesk');
      expect(delivered()).toEqual(expected);
    }
  });

  // One connection on the embedded store: a transaction held open there holds up every statement.
  if (kind === 'pg') {
    it('lets a batch waiting on a row lock held elsewhere hold up only its own handovers', async () => {
      const { tenantId, handovers } = await setUp(['a', 'b']);
      const [locked, free] = handovers as [string, string];
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let taken!: () => void;
      const lockTaken = new Promise<void>((resolve) => (taken = resolve));
      // Another session (an admin's transaction, another instance) holds one handover's row.
      const holder = t!.db.transaction(async (q) => {
        await q.query('select 1 from handovers where id = $1 for update', [locked]);
        taken();
        await held;
      });
      await lockTaken;
      try {
        const stats = t!.service.deps.userMessages!.stats;
        const before = stats.batches;
        const waiting = post(tenantId, locked, 'l-1');
        await eventually(async () => stats.batches > before, 'the locked handover’s batch to start');
        // Written beside the batch that waits on the lock, once that one has run its overlap time.
        const other = await post(tenantId, free, 'f-1');
        expect(other.duplicate).toBe(false);
        const { rows } = await t!.db.query<{ client_id: string }>(`select client_id from messages where handover_id = $1 and direction = 'to_agent'`, [free]);
        expect(rows.map((r) => r.client_id)).toEqual(['f-1']);
        release();
        await holder;
        expect((await waiting).duplicate).toBe(false);
      } finally {
        release();
        await holder.catch(() => {});
      }
    });
  }

  it('hands the worker the payload the outbox keeps, byte for byte, attachments and escapes too', async () => {
    const { tenantId, handovers } = await setUp(['a']);
    const handoverId = handovers[0]!;
    // The lane is idle once the conversation's opening has been delivered and the lane given back.
    await eventually(async () => {
      const { rows } = await t!.db.query<{ idle: boolean }>('select pending = 0 and locked_by is null as idle from outbox_lanes where lane = $1', [
        `${handoverId}:agent`,
      ]);
      return rows[0]?.idle;
    }, 'the lane idle');
    // A worker of another instance, for this statement only; once its short lease has run out, the
    // service's own worker claims the lane and delivers the message.
    const taken: HandedLane[] = [];
    const handoff = new LaneHandoff('ins_handed_here', 200);
    handoff.attach({ hasRoom: () => true, blocked: () => [], take: (lanes) => void taken.push(...lanes), giveBack: () => {} });
    const write: UserMessageWrite = {
      ...userMessage(tenantId, handoverId, 'handed'),
      text: 'with "quotes", a \\ backslash, {braces}, ünïcode 日本 and 😀',
      attachments: [{ url: 'https://files.example/a.png?x="1"', size: 3, name: 'a.png', contentType: 'image/png' }],
    };
    await writeUserMessages(t!.db, [write], 3, handoff);
    expect(taken).toHaveLength(1);
    const item = taken[0]!.items[0]!;
    const { rows } = await t!.db.query<{ payload: string }>('select payload::text as payload from outbox where id = $1', [item.id]);
    expect(JSON.stringify(item.payload)).toBe(JSON.stringify(JSON.parse(rows[0]!.payload)));
    expect(item.payload).toEqual({
      kind: 'message.created',
      eventId: write.eventId,
      handoverId,
      conversationId: 'a',
      message: { id: write.messageId, text: write.text, attachments: write.attachments, createdAt: write.createdAt.toISOString() },
    });
    await helpdesk!.waitFor(() => helpdesk!.eventsFor(handoverId, 'message.created').length >= 1, 20_000, 'the message at the helpdesk');
  });

  it('loses nothing accepted when the answer is lost after the commit: the retry is answered with the stored id', async () => {
    const { tenantId, handovers } = await setUp(['a']);
    const handoverId = handovers[0]!;
    const write: UserMessageWrite = { ...userMessage(tenantId, handoverId, 'lost-answer'), text: 'committed, never answered' };
    const id = write.messageId;
    // The statement commits; the process "dies" before the caller hears of it.
    await writeUserMessages(t!.db, [write], 3, null);
    const retried = await post(tenantId, handoverId, 'lost-answer', 'committed, never answered');
    expect(retried).toEqual({ id, duplicate: true });
    await helpdesk!.waitFor(() => helpdesk!.eventsFor(handoverId, 'message.created').length >= 1, 20_000, 'the message at the helpdesk');
    expect(helpdesk!.eventsFor(handoverId, 'message.created').map((e) => (e.data as { message: { id: string } }).message.id)).toEqual([id]);
  });

  it('delivers and records a lane handed over by a request after that request’s deadline has passed', async () => {
    // The lane's run starts from the request that accepted the message; it must not inherit its deadline.
    const { apiKey, handovers } = await setUp(['a'], { own: true, overrides: { 'admission.handlerTimeoutMs': 1000 } });
    const [h] = handovers as [string];
    await helpdesk!.waitFor((r) => r.some((w) => w.body.type === 'handover.requested'), 10_000, 'handover.requested');
    const laneIdle = async () =>
      (await t!.db.query(`select 1 from outbox_lanes where lane = $1 and pending = 0 and locked_by is null`, [`${h}:agent`])).rowCount > 0;
    await eventually(laneIdle, 'the agent lane idle');
    helpdesk!.respond = (body) => ({ status: 200, delayMs: body.type === 'message.created' ? 1500 : 0 });
    for (const id of ['m-1', 'm-2']) {
      expect((await t!.api('POST', `/v1/handovers/${h}/messages`, { token: apiKey, body: { id, text: id } })).status).toBe(202);
    }
    await helpdesk!.waitFor((r) => r.filter((w) => w.body.type === 'message.created').length >= 2, 10_000, 'both messages');
    const pending = async () =>
      (await t!.db.query<{ n: number }>(`select count(*)::int as n from outbox where handover_id = $1 and state = 'pending'`, [h])).rows[0]!.n;
    await eventually(async () => (await pending()) === 0, 'both deliveries recorded', 5000);
    await eventually(laneIdle, 'the lane given back', 5000);
    expect(helpdesk!.received.filter((w) => w.body.type === 'message.created')).toHaveLength(2);
  });

  it('counts its batches on /metrics: the messages each wrote, how long its write took and what waits for one', async () => {
    const { tenantId, handovers } = await setUp(['m1', 'm2', 'm3', 'm4']);
    const sample = async (name: string) => {
      const text = await (await fetch(`${t!.url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name} `));
      return line === undefined ? undefined : Number(line.slice(name.length + 1));
    };
    const before = {
      messages: (await sample('handover_accept_batch_messages_sum'))!,
      batches: (await sample('handover_accept_batch_messages_count'))!,
      ok: (await sample('handover_accept_batch_duration_seconds_count{outcome="ok"}'))!,
    };
    const written = await Promise.all(handovers.map((h, i) => post(tenantId, h, `metrics-${i}`)));
    expect(written.every((w) => w.duplicate === false)).toBe(true);
    const batches = (await sample('handover_accept_batch_messages_count'))! - before.batches;
    expect((await sample('handover_accept_batch_messages_sum'))! - before.messages).toBe(4);
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(batches).toBeLessThanOrEqual(4);
    // Every batch is timed once, under its outcome.
    expect((await sample('handover_accept_batch_duration_seconds_count{outcome="ok"}'))! - before.ok).toBe(batches);
    expect(await sample('handover_accept_queued_messages')).toBe(0);
  });

  it('fails every caller of a batch the database refuses, with the database’s own cause, and writes none of it', async () => {
    // A service of its own: the case adds a trigger to the schema.
    const { tenantId, handovers } = await setUp(['a', 'b'], { own: true });
    // A real refusal from the database: a trigger that raises "disk full" for one marked text.
    await t!.db.query(`create function refuse_marked() returns trigger language plpgsql as $$
      begin if new.text = 'refuse me' then raise exception 'could not extend file: No space left on device' using errcode = '53100'; end if; return new; end $$`);
    await t!.db.query(`create trigger refuse_marked before insert on messages for each row execute function refuse_marked()`);
    const answers = await Promise.allSettled([
      post(tenantId, handovers[0]!, 'x-1', 'fine'),
      post(tenantId, handovers[1]!, 'x-2', 'refuse me'),
      post(tenantId, handovers[0]!, 'x-3', 'fine too'),
    ]);
    for (const a of answers) {
      expect(a.status).toBe('rejected');
      expect((a as PromiseRejectedResult).reason).toMatchObject({ code: '53100', message: expect.stringContaining('No space left') });
    }
    const { rows } = await t!.db.query<{ n: number }>(`select count(*)::int as n from messages where client_id like 'x-%'`);
    expect(rows[0]!.n).toBe(0);
    // Counted as one failed batch (the service is this case's own).
    const metrics = await (await fetch(`${t!.url}/metrics`)).text();
    expect(metrics).toContain('handover_accept_batch_duration_seconds_count{outcome="failed"} 1\n');
    // Over HTTP the same refusal is a 500 with no internals, and the bot may retry.
    await t!.db.query('drop trigger refuse_marked on messages');
    expect((await post(tenantId, handovers[0]!, 'x-1', 'fine')).duplicate).toBe(false);
  });
});

describe('the embedded database in its own thread', () => {
  let service: Service | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await service?.stop().catch(() => {});
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.runIf(process.platform === 'linux')('tells its own CPU time, which /metrics shows beside the HTTP thread’s', async () => {
    dir = await mkdtemp(join(tmpdir(), 'handover-thread-'));
    service = await createService(loadConfig({}, { ...testSettings, 'database.dataDir': dir, 'demo.enabled': false }));
    const url = await service.listen();
    const seconds = async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      const of = (thread: string) => Number(new RegExp(`^handover_thread_cpu_seconds_total\\{thread="${thread}"\\} (\\S+)$`, 'm').exec(text)?.[1]);
      return { http: of('http'), database: of('database') };
    };
    // Starting ran the migrations in that thread: it has spent CPU, and says so within its report interval.
    const first = await eventually(async () => {
      const s = await seconds();
      return s.database > 0 && s.http > 0 ? s : undefined;
    }, "the database thread's CPU on /metrics");
    // Work for the database raises it (the OS counts in 10 ms ticks): a tenant made at each look.
    let made = 0;
    await eventually(async () => {
      const tenant = await fetch(`${url}/v1/admin/tenants`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `Cpuco ${made++}` }),
      });
      expect(tenant.status).toBe(201);
      return (await seconds()).database > first.database;
    }, 'the database thread’s CPU to rise with its work');
  });

  it('when its thread dies, the service says so and refuses with database_unavailable instead of hanging', async () => {
    dir = await mkdtemp(join(tmpdir(), 'handover-thread-'));
    service = await createService(loadConfig({}, { ...testSettings, 'database.dataDir': dir, 'demo.enabled': false }));
    const url = await service.listen();
    const tenant = await fetch(`${url}/v1/admin/tenants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Threadco' }),
    });
    expect(tenant.status).toBe(201);
    const { apiKey } = (await tenant.json()) as { apiKey: string };

    await terminatePgliteDbThread(service.deps.db);
    const started = Date.now();
    const answer = await fetch(`${url}/v1/handovers/ho_x/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'hello' }),
      signal: AbortSignal.timeout(10_000),
    });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(answer.status).toBe(503);
    expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('database_unavailable');
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain('database_unavailable');
  });
});
