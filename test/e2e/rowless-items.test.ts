import { afterEach, describe, expect, it } from 'vitest';
import { writeUserMessages } from '../../src/handover/accept-user-messages.js';
import { CompletionRecorder } from '../../src/delivery/completions.js';
import { LaneHandoff, type HandedLane, type HandoffSink } from '../../src/delivery/lane-handoff.js';
import { messageEventId, sweepIdleMarkers } from '../../src/delivery/rowless.js';
import type { OutboxRow } from '../../src/delivery/worker.js';
import { DeliveryError } from '../../src/outbound/delivery-error.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { eventually } from '../support/test-service.js';
import { startWorkerScene, textOf, userMessage, type WorkerScene } from '../support/worker-scene.js';

const SECRET = 'whsec_' + Buffer.from('rowless-items-secret-0123456789ab').toString('base64');

/**
 * A user's message whose lane the accept statement leases to this instance's worker has no outbox row
 * (src/delivery/rowless.ts): its lane's row says it is owed and its message holds its content. These
 * drive the cases where that matters, step by step: the instance that took the lane goes away before
 * delivering, two workers complete the same item, an item fails, rows and rowless items share a lane,
 * and idle lanes' markers are swept.
 */
describe('rowless items (pg)', () => {
  let scene: WorkerScene | undefined;
  afterEach(async () => {
    await scene?.close();
    scene = undefined;
  });

  /** A handoff to an instance that takes lanes and never delivers them (it died): leases of `leaseMs`. */
  function deadInstance(leaseMs: number, instanceId = 'dead-instance'): { handoff: LaneHandoff; taken: HandedLane[] } {
    const taken: HandedLane[] = [];
    const handoff = new LaneHandoff(instanceId, leaseMs);
    const sink: HandoffSink = { hasRoom: () => true, blocked: () => [], take: (lanes) => void taken.push(...lanes), giveBack: () => undefined };
    handoff.attach(sink);
    return { handoff, taken };
  }

  const laneOf = (handoverId: string) => `${handoverId}:agent`;

  async function items(lane: string): Promise<Array<{ seq: number; kind: string; state: string }>> {
    const { rows } = await scene!.t.db.query<{ seq: number; kind: string; state: string }>('select seq, kind, state from outbox where lane = $1 order by seq', [
      lane,
    ]);
    return rows;
  }

  async function laneRow(lane: string): Promise<{ pending: number; last_seq: number; locked_by: string | null }> {
    const { rows } = await scene!.t.db.query<{ pending: number; last_seq: number; locked_by: string | null }>(
      'select pending, last_seq, locked_by from outbox_lanes where lane = $1',
      [lane],
    );
    return rows[0]!;
  }

  it('are written without rows, and delivered from the messages by another instance once the lease of the one that took them runs out', async () => {
    scene = await startWorkerScene(1, SECRET);
    const { t, tenantId, handovers } = scene;
    const handoverId = handovers[0]!;
    const lane = laneOf(handoverId);
    const dead = deadInstance(300);
    const writes = ['one', 'two', 'three'].map((text) => userMessage(tenantId, handoverId, text));
    const written = await writeUserMessages(t.db, writes, 3, dead.handoff);
    expect(written.map((w) => w?.handed)).toEqual([true, true, true]);
    const handed = dead.taken.flatMap((l) => l.items);
    expect(handed.map((i) => i.id)).toEqual([0, 0, 0]);

    // No item rows: the lane's marker alone (the conversation's request was delivered before).
    expect((await items(lane)).filter((i) => i.state === 'pending' || i.state === 'marker')).toEqual([{ seq: 0, kind: 'lane.rowless', state: 'marker' }]);
    const { rows: places } = await t.db.query<{ lane_seq: number }>('select lane_seq from messages where handover_id = $1 order by seq', [handoverId]);
    expect(places.map((p) => p.lane_seq)).toEqual(handed.map((i) => i.seq));

    const delivered: OutboxRow[] = [];
    scene.startWorker({ deliver: async (row) => void delivered.push(row), pollIntervalMs: 100 });
    await eventually(async () => delivered.length >= 3 || undefined, 'the three items delivered by the other instance');
    expect(delivered.map(textOf)).toEqual(['one', 'two', 'three']);
    // What a delivery is made of is what it was handed with: the same event ids and payloads.
    expect(delivered.map((d) => d.payload)).toEqual(handed.map((h) => h.payload));
    expect(delivered.map((d) => (d.payload as { eventId: string }).eventId)).toEqual(writes.map((w) => messageEventId(w.messageId)));
    expect(delivered.map((d) => d.seq)).toEqual(handed.map((h) => h.seq));
    await eventually(async () => (await laneRow(lane)).pending === 0 || undefined, 'the lane drained');
    expect(delivered).toHaveLength(3);
  });

  it('are counted once when two workers complete the same one', async () => {
    scene = await startWorkerScene(1, SECRET);
    const { t, tenantId, handovers } = scene;
    const lane = laneOf(handovers[0]!);
    const dead = deadInstance(30_000);
    await writeUserMessages(
      t.db,
      ['a', 'b', 'c'].map((text) => userMessage(tenantId, handovers[0]!, text)),
      3,
      dead.handoff,
    );
    const [first] = dead.taken.flatMap((l) => l.items);
    const before = await laneRow(lane);
    expect(before.pending).toBe(3);
    // The one that held the lane and one that took it after its lease ran out, both delivered the first.
    for (const instance of ['dead-instance', 'other-instance']) {
      const recorder = new CompletionRecorder(t.db, instance, createLogger('silent'));
      recorder.delivered({ id: 0, attempt: 1, lane, seq: first!.seq });
      await recorder.close();
    }
    expect(await laneRow(lane)).toMatchObject({ pending: 2, last_seq: before.last_seq });
  });

  it('get a row when they fail, and are retried from it', async () => {
    scene = await startWorkerScene(1, SECRET);
    const { t, tenantId, handovers, handoff } = scene;
    const lane = laneOf(handovers[0]!);
    const attempts: OutboxRow[] = [];
    scene.startWorker({
      deliver: async (row) => {
        attempts.push(row);
        if (attempts.length === 1) throw new DeliveryError('busy', { retryable: true, statusCode: 503 });
      },
      retryMaxMs: 50,
    });
    const [written] = await writeUserMessages(t.db, [userMessage(tenantId, handovers[0]!, 'retry me')], 3, handoff);
    expect(written).toMatchObject({ handed: true });
    await eventually(async () => attempts.length >= 2 || undefined, 'the item tried again');
    expect(attempts[0]!.id).toBe(0);
    // The second attempt is of the row the failure made, with the same content.
    expect(attempts[1]!.id).toBeGreaterThan(0);
    expect(attempts[1]!.payload).toEqual(attempts[0]!.payload);
    expect(attempts[1]!.attempts).toBe(1);
    await eventually(async () => (await laneRow(lane)).pending === 0 || undefined, 'the lane drained');
    const { rows } = await t.db.query<{ state: string; attempts: number; seq: number }>('select state, attempts, seq from outbox where id = $1', [
      attempts[1]!.id,
    ]);
    expect(rows).toEqual([{ state: 'done', attempts: 2, seq: attempts[0]!.seq }]);
    const { rows: tried } = await t.db.query<{ outcome: string }>('select outcome from delivery_attempts where outbox_id = $1', [attempts[1]!.id]);
    expect(tried).toEqual([{ outcome: 'retry' }]);
    expect(attempts).toHaveLength(2);
  });

  it('share a lane with rows in order', async () => {
    scene = await startWorkerScene(1, SECRET);
    const { t, tenantId, handovers } = scene;
    const handoverId = handovers[0]!;
    const dead = deadInstance(300);
    // Leased to the dead instance: rowless. Then written while the lane is held there: rows.
    await writeUserMessages(
      t.db,
      ['r1', 'r2'].map((text) => userMessage(tenantId, handoverId, text)),
      3,
      dead.handoff,
    );
    const other = deadInstance(300, 'another-instance');
    const [row] = await writeUserMessages(t.db, [userMessage(tenantId, handoverId, 'w3')], 3, new LaneHandoff('x', 300));
    expect(row).toMatchObject({ handed: false });
    await writeUserMessages(t.db, [userMessage(tenantId, handoverId, 'w4')], 3, other.handoff);
    expect(other.taken).toEqual([]);
    const owed = (await items(laneOf(handoverId))).filter((i) => i.state === 'pending' || i.state === 'marker');
    expect(owed.map((i) => i.state)).toEqual(['marker', 'pending', 'pending']);

    const delivered: OutboxRow[] = [];
    scene.startWorker({ deliver: async (r) => void delivered.push(r), pollIntervalMs: 100 });
    await eventually(async () => delivered.length >= 4 || undefined, 'the four items delivered');
    expect(delivered.map(textOf)).toEqual(['r1', 'r2', 'w3', 'w4']);
    expect(delivered.map((d) => d.id === 0)).toEqual([true, true, false, false]);
    await eventually(async () => (await laneRow(laneOf(handoverId))).pending === 0 || undefined, 'the lane drained');
    expect(delivered).toHaveLength(4);
  });

  it("lose their lane's marker once the lane is idle, and keep it while anything is owed or leased", async () => {
    scene = await startWorkerScene(2, SECRET);
    const { t, tenantId, handovers, handoff } = scene;
    const [idle, owed] = handovers.map(laneOf);
    const delivered: OutboxRow[] = [];
    scene.startWorker({ deliver: async (r) => void delivered.push(r) });
    await writeUserMessages(t.db, [userMessage(tenantId, handovers[0]!, 'done soon')], 3, handoff);
    await eventually(async () => ((await laneRow(idle!)).pending === 0 && (await laneRow(idle!)).locked_by === null) || undefined, 'the first lane idle');
    const dead = deadInstance(30_000);
    await writeUserMessages(t.db, [userMessage(tenantId, handovers[1]!, 'owed')], 3, dead.handoff);

    expect(await sweepIdleMarkers(t.db, 0)).toBe(1);
    expect((await items(idle!)).filter((i) => i.seq === 0)).toEqual([]);
    expect((await items(owed!)).filter((i) => i.seq === 0)).toHaveLength(1);
    // Written again when the lane is handed over again.
    await writeUserMessages(t.db, [userMessage(tenantId, handovers[0]!, 'again')], 3, handoff);
    expect((await items(idle!)).filter((i) => i.seq === 0)).toHaveLength(1);
    await eventually(async () => delivered.length >= 2 || undefined, 'both delivered');
    expect(delivered.map(textOf)).toEqual(['done soon', 'again']);
  });
});
