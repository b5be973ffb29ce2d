import { afterEach, describe, expect, it } from 'vitest';
import { writeUserMessages } from '../../src/handover/accept-user-messages.js';
import type { DeliveryWorker } from '../../src/delivery/worker.js';
import type { Db } from '../../src/store/db.js';
import { eventually } from '../support/test-service.js';
import { afterEachStatement, startWorkerScene, textOf, userMessage, type WorkerScene } from '../support/worker-scene.js';

const SECRET = 'whsec_' + Buffer.from('leases-at-stop-secret-0123456789').toString('base64');

/**
 * An accept batch may take its lane's lease for this instance's worker just as that worker stops. The
 * lease must be given back with the worker's last writes, not left to run out (30 s by default, during
 * which that conversation's messages wait). Driven step by step: the worker stops inside the very
 * statement that races with it.
 */
describe('leases taken for a worker as it stops (pg)', () => {
  let scene: WorkerScene | undefined;
  afterEach(async () => {
    await scene?.close();
    scene = undefined;
  });

  async function leaseOf(db: Db, lane: string): Promise<string | null> {
    const { rows } = await db.query<{ locked_by: string | null }>('select locked_by from outbox_lanes where lane = $1', [lane]);
    return rows[0]?.locked_by ?? null;
  }

  /** A second worker on the same database delivers what the first left, in order. */
  async function deliveredAfterwards(s: WorkerScene, expected: string[]): Promise<void> {
    const delivered: string[] = [];
    s.startWorker({ deliver: async (row) => void delivered.push(textOf(row)) });
    await eventually(async () => delivered.length >= expected.length || undefined, 'the next worker delivering what was left');
    expect(delivered).toEqual(expected);
  }

  it('gives back a lease its accept statement took after the worker detached', async () => {
    scene = await startWorkerScene(1, SECRET);
    const { t, tenantId, handovers, handoff } = scene;
    const lane = `${handovers[0]!}:agent`;
    const worker = scene.startWorker({ deliver: async () => undefined });
    let stopped: Promise<void> | undefined;
    // The statement runs with the worker attached (so it leases the idle lane for it); the worker
    // stops before the statement's answer is read.
    const q = afterEachStatement(t.db, () => {
      stopped ??= worker.stop({ graceMs: 1000 });
    });
    const [written] = await writeUserMessages(q, [userMessage(tenantId, handovers[0]!, 'raced')], 3, handoff);
    expect(written).toMatchObject({ handed: false });
    await stopped;
    expect(await leaseOf(t.db, lane)).toBeNull();
    await deliveredAfterwards(scene, ['raced']);
  });

  it('gives back a lane its claim leased as the worker began to stop', async () => {
    scene = await startWorkerScene(1, SECRET);
    const { t, tenantId, handovers } = scene;
    const lane = `${handovers[0]!}:agent`;
    // Written with no worker to hand it to: it waits for a claim.
    const [written] = await writeUserMessages(t.db, [userMessage(tenantId, handovers[0]!, 'claimed')], 3, null);
    expect(written).toMatchObject({ handed: false });
    const the: { worker?: DeliveryWorker } = {};
    let stopped: Promise<void> | undefined;
    // The worker's first claim leases the lane; the worker stops before the claim's answer is read.
    const db = afterEachStatement(t.db, (name, _params, result) => {
      // (The statement answers one row even when it claims nothing: where its walk stopped.)
      if (name === 'claim-lanes' && (result.rows as Array<{ claimed_lane: string | null }>).some((r) => r.claimed_lane !== null))
        stopped ??= the.worker!.stop({ graceMs: 1000 });
    });
    const delivered: string[] = [];
    the.worker = scene.startWorker({ db, deliver: async (row) => void delivered.push(textOf(row)) });
    await eventually(async () => stopped !== undefined, 'the claim of the lane');
    await stopped;
    expect(delivered).toEqual([]);
    expect(await leaseOf(t.db, lane)).toBeNull();
    await deliveredAfterwards(scene, ['claimed']);
  });

  /**
   * The worker's database: once its run, out of items, has given the lane back (the statement is
   * committed), an accept batch leases the idle lane again for the run that is still giving it back.
   * The worker stops either after that batch's hand-over (`after the hand`: the run takes the item,
   * and then ends without starting again) or inside the batch's statement (`inside the statement`:
   * the hand-over finds no worker attached, and the lane goes back to the one that stopped while its
   * run still holds it).
   */
  for (const when of ['after the hand', 'inside the statement'] as const) {
    it(`gives back a lane leased again while its run was giving it back, the worker stopping ${when}`, async () => {
      scene = await startWorkerScene(1, SECRET);
      const { t, tenantId, handovers, handoff } = scene;
      const lane = `${handovers[0]!}:agent`;
      const the: { worker?: DeliveryWorker } = {};
      let stopped: Promise<void> | undefined;
      let late: Awaited<ReturnType<typeof writeUserMessages>> | undefined;
      const stop = () => (stopped ??= the.worker!.stop({ graceMs: 1000 }));
      const stoppingInside = afterEachStatement(t.db, () => void stop());
      const db = afterEachStatement(t.db, async (name, params) => {
        const releasesIfEmpty = name === 'record-completions' && (params?.[7] as string[]).length > 0;
        if (!releasesIfEmpty || late) return;
        const message = userMessage(tenantId, handovers[0]!, 'late');
        late = await writeUserMessages(when === 'inside the statement' ? stoppingInside : t.db, [message], 3, handoff);
        stop();
      });
      const delivered: string[] = [];
      the.worker = scene.startWorker({ db, deliver: async (row) => void delivered.push(textOf(row)) });
      const [first] = await writeUserMessages(t.db, [userMessage(tenantId, handovers[0]!, 'first')], 3, handoff);
      expect(first).toMatchObject({ handed: true });
      await eventually(async () => stopped !== undefined, 'the run giving its lane back');
      // Taken in memory by the run giving the lane back, or refused by the handoff once detached.
      expect(late?.[0]).toMatchObject({ handed: when === 'after the hand' });
      await stopped;
      expect(delivered).toEqual(['first']);
      expect(await leaseOf(t.db, lane)).toBeNull();
      await deliveredAfterwards(scene, ['late']);
    });
  }
});
