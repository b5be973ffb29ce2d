import { afterEach, describe, expect, it } from 'vitest';
import { writeUserMessages } from '../../src/handover/accept-user-messages.js';
import { DeliveryError } from '../../src/outbound/delivery-error.js';
import type { Db } from '../../src/store/db.js';
import { eventually } from '../support/test-service.js';
import { afterEachStatement, beforeEachStatement, startWorkerScene, textOf, userMessage, type WorkerScene } from '../support/worker-scene.js';
import { WALK_LANES } from '../../src/delivery/claim-lanes.js';

const SECRET = 'whsec_' + Buffer.from('claims-on-demand-secret-0123456789').toString('base64');

/**
 * The delivery worker queries the outbox for work (a claim) when there may be some: at start, on a
 * wake-up, when a lane put back for later comes due, and when a run ends while claimable work may be
 * waiting (the last claim was cut short, or skipped because every run was busy, or the run gave its lane
 * back with items left) — not at the end of every run, which under load was a query a message on every
 * instance. Driven step by step; the worker's poll is a minute, so nothing here is found by it.
 */
describe('claims when there is something to claim (pg)', () => {
  let scene: WorkerScene | undefined;
  afterEach(async () => {
    await scene?.close();
    scene = undefined;
  });

  /** The service's database, counting the claim statements that go through it. */
  function counting(db: Db): { db: Db; claims: () => number } {
    let claims = 0;
    const counted = beforeEachStatement(db, (name) => {
      if (name === 'claim-lanes') claims++;
    });
    return { db: counted, claims: () => claims };
  }

  it('does not query the outbox when a handed lane is done and nothing else waits', async () => {
    scene = await startWorkerScene(1, SECRET);
    const { t, tenantId, handovers, handoff } = scene;
    const { db, claims } = counting(t.db);
    const delivered: string[] = [];
    let runs = 0;
    scene.startWorker({ db, deliver: async (row) => void delivered.push(textOf(row)), onRunsChanged: (n) => (runs = n) });
    // The claim every worker makes when it starts; it finds nothing (the handover's opening was delivered).
    await eventually(async () => claims() === 1 || undefined, 'the first claim');
    for (const text of ['one', 'two', 'three']) {
      const [written] = await writeUserMessages(t.db, [userMessage(tenantId, handovers[0]!, text)], 3, handoff);
      expect(written).toMatchObject({ handed: true });
      await eventually(async () => (delivered.includes(text) && runs === 0) || undefined, `${text} delivered and its lane given back`);
    }
    // A claim started at a run's end would have gone out within these turns.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(delivered).toEqual(['one', 'two', 'three']);
    expect(claims()).toBe(1);
  });

  it('claims work it could not take while full as soon as a run ends', async () => {
    scene = await startWorkerScene(2, SECRET);
    const { t, tenantId, handovers, handoff } = scene;
    const delivered: string[] = [];
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    scene.startWorker({
      concurrency: 1,
      deliver: async (row) => {
        if (textOf(row) === 'first') await gate;
        delivered.push(textOf(row));
      },
      onRunsChanged: (n) => (runs = n),
    });
    // The only run is busy with the first handover's message...
    const [first] = await writeUserMessages(t.db, [userMessage(tenantId, handovers[0]!, 'first')], 3, handoff);
    expect(first).toMatchObject({ handed: true });
    await eventually(async () => runs === 1 || undefined, 'the first lane in work');
    // ...so the second's cannot be handed over: it waits in the outbox, and the accept path wakes the workers.
    const [second] = await writeUserMessages(t.db, [userMessage(tenantId, handovers[1]!, 'second')], 3, handoff);
    expect(second).toMatchObject({ handed: false });
    t.service.deps.bus.publish('outbox', { tenantId });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(delivered).toEqual([]);
    release();
    await eventually(async () => delivered.length === 2 || undefined, 'both delivered, the second found by a claim when the first run ended');
    expect(delivered).toEqual(['first', 'second']);
  });

  it('claims a lane put back for a retry when the retry is due', async () => {
    scene = await startWorkerScene(1, SECRET);
    const { t, tenantId, handovers, handoff } = scene;
    const delivered: string[] = [];
    let tries = 0;
    scene.startWorker({
      retryMaxMs: 40,
      deliver: async (row) => {
        if (++tries === 1) throw new DeliveryError('the helpdesk is busy', { retryable: true });
        delivered.push(textOf(row));
      },
    });
    const [written] = await writeUserMessages(t.db, [userMessage(tenantId, handovers[0]!, 'again')], 3, handoff);
    expect(written).toMatchObject({ handed: true });
    await eventually(async () => delivered.length === 1 || undefined, 'the retry delivered when due');
    expect(tries).toBe(2);
    expect(delivered).toEqual(['again']);
  });

  it('claims each lane put back for a retry when its own retry is due', async () => {
    scene = await startWorkerScene(2, SECRET);
    const { t, tenantId, handovers, handoff } = scene;
    const delivered: string[] = [];
    const tried = new Set<string>();
    scene.startWorker({
      retryMaxMs: 2000,
      deliver: async (row) => {
        const text = textOf(row);
        if (!tried.has(text)) {
          tried.add(text);
          // Retry-After sets each one's own retry time: one soon, one later.
          throw new DeliveryError('the helpdesk is busy', { retryable: true, retryAfterMs: text === 'soon' ? 100 : 700 });
        }
        delivered.push(text);
      },
    });
    const written = await writeUserMessages(t.db, [userMessage(tenantId, handovers[0]!, 'soon'), userMessage(tenantId, handovers[1]!, 'later')], 3, handoff);
    expect(written).toMatchObject([{ handed: true }, { handed: true }]);
    await eventually(async () => delivered.length === 2 || undefined, 'both retries delivered, each when due');
    expect(delivered).toEqual(['soon', 'later']);
  });

  it('claims what is left of a lane given back at the end of its time slice', async () => {
    scene = await startWorkerScene(1, SECRET);
    const { t, tenantId, handovers, handoff } = scene;
    const delivered: string[] = [];
    // A run holds a lane for half the lease at most (200 ms here), then gives it back to be claimed again.
    scene.startWorker({
      leaseMs: 400,
      deliver: async (row) => {
        await new Promise((resolve) => setTimeout(resolve, 25));
        delivered.push(textOf(row));
      },
    });
    const texts = Array.from({ length: 20 }, (_, i) => `m${i}`);
    const written = await writeUserMessages(
      t.db,
      texts.map((text) => userMessage(tenantId, handovers[0]!, text)),
      3,
      handoff,
    );
    expect(written.every((w) => w?.handed)).toBe(true);
    await eventually(async () => delivered.length === texts.length || undefined, 'every message, across time slices');
    expect(delivered).toEqual(texts);
  });

  /**
   * `count` lanes with one pending item each, named in order; those numbered `held[0]` to `held[1]` are
   * leased to another instance for ten minutes, the rest are due and free.
   */
  async function backlog(count: number, held: [number, number]): Promise<void> {
    const { t, tenantId } = scene!;
    const { rows } = await t.db.query<{ connector_id: string }>('select connector_id from handovers where id = $1', [scene!.handovers[0]]);
    const connectorId = rows[0]!.connector_id;
    await t.db.query(
      `insert into outbox_lanes (lane, tenant_id, target, connector_id, last_seq, pending, next_attempt_at, locked_by, locked_until)
       select 'walk_' || lpad(n::text, 5, '0') || ':agent', $1, 'agent', $2, 1, 1, now(),
              case when n between $3 and $4 then 'other-instance' end, case when n between $3 and $4 then now() + interval '10 minutes' end
       from generate_series(1, $5::int) n`,
      [tenantId, connectorId, held[0], held[1], count],
    );
    await t.db.query(
      `insert into outbox (tenant_id, lane, seq, handover_id, target, connector_id, kind, payload, max_attempts)
       select $1, 'walk_' || lpad(n::text, 5, '0') || ':agent', 1, 'walk_' || n, 'agent', $2, 'message.created',
              jsonb_build_object('message', jsonb_build_object('text', 'walk ' || n)), 3
       from generate_series(1, $3::int) n`,
      [tenantId, connectorId, count],
    );
  }
  const laneNumber = (text: string) => Number(text.slice('walk '.length));

  it('claims every due lane among more than one claim looks at, without waiting for the poll', async () => {
    // A claim walks at most WALK_LANES lanes with pending items. One that took every free slot looks at
    // the same ones again next time (due lanes may be left among them), not on past them: past them are
    // only lanes held elsewhere, and a walk there that finds nothing must not leave the rest to the poll.
    scene = await startWorkerScene(1, SECRET);
    const free = WALK_LANES;
    await backlog(free + 100, [free + 1, free + 100]);
    const delivered = new Set<string>();
    scene.startWorker({ deliver: async (row) => void delivered.add(textOf(row)), concurrency: 8 });
    await eventually(async () => delivered.size >= free || undefined, 'every lane not held elsewhere', 30_000);
    expect(delivered.size).toBe(free);
    expect([...delivered].every((text) => laneNumber(text) <= free)).toBe(true);
  });

  it('goes on past a walk that found nothing at its bound, and stops once every lane was looked at', async () => {
    // The first WALK_LANES + 50 lanes are held elsewhere: the first claim's walk finds nothing it can
    // take before its bound, and the lanes after it are found only by going on from there. Once they are
    // delivered, the worker stops claiming (with the poll a minute away) instead of walking the held
    // lanes again and again.
    scene = await startWorkerScene(1, SECRET);
    const held = WALK_LANES + 50;
    await backlog(held + 50, [1, held]);
    const { db, claims } = counting(scene.t.db);
    const delivered = new Set<string>();
    let runs = 0;
    scene.startWorker({ db, deliver: async (row) => void delivered.add(textOf(row)), concurrency: 8, onRunsChanged: (n) => (runs = n) });
    await eventually(async () => (delivered.size >= 50 && runs === 0) || undefined, 'the lanes after the held ones', 30_000);
    expect([...delivered].every((text) => laneNumber(text) > held)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const settled = claims();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(claims()).toBe(settled);
  });

  it('goes back to the first lane when woken while a chain of claims walked on past it', async () => {
    // The first WALK_LANES + 50 lanes are held elsewhere. The first claim's walk stops at its bound, the
    // second goes on to the last lane. As the first answers, a lane before the second's cursor is written
    // and the worker woken: it must be claimed then, not at the poll a minute later.
    scene = await startWorkerScene(1, SECRET);
    const held = WALK_LANES + 50;
    await backlog(held, [1, held]);
    const { t, tenantId } = scene;
    const { rows } = await t.db.query<{ connector_id: string }>('select connector_id from handovers where id = $1', [scene.handovers[0]]);
    let woken = false;
    const db = afterEachStatement(t.db, async (name, params) => {
      // The first claim (its walk from the first lane), once.
      if (name !== 'claim-lanes' || woken || params?.[7] !== '') return;
      woken = true;
      await t.db.query(
        `insert into outbox_lanes (lane, tenant_id, target, connector_id, last_seq, pending) values ('walk_00000:agent', $1, 'agent', $2, 1, 1)`,
        [tenantId, rows[0]!.connector_id],
      );
      await t.db.query(
        `insert into outbox (tenant_id, lane, seq, handover_id, target, connector_id, kind, payload, max_attempts)
         values ($1, 'walk_00000:agent', 1, 'walk_0', 'agent', $2, 'message.created', '{"message":{"text":"walk 0"}}', 3)`,
        [tenantId, rows[0]!.connector_id],
      );
      t.service.deps.bus.publish('outbox', { tenantId });
    });
    const delivered: string[] = [];
    scene.startWorker({ db, deliver: async (row) => void delivered.push(textOf(row)), concurrency: 8 });
    await eventually(async () => delivered.includes('walk 0') || undefined, 'the lane written before the cursor', 30_000);
    expect(woken).toBe(true);
    expect(delivered).toEqual(['walk 0']);
  });
});
