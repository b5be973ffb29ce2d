import { afterEach, describe, expect, it } from 'vitest';
import { writeUserMessages } from '../../src/handover/accept-user-messages.js';
import type { OutboxRow } from '../../src/delivery/worker.js';
import { eventually } from '../support/test-service.js';
import { startWorkerScene, userMessage, type WorkerScene } from '../support/worker-scene.js';

const SECRET = 'whsec_' + Buffer.from('handed-copy-secret-0123456789abcd').toString('base64');

/**
 * A copy of an item handed to the worker after the item was delivered — as when the accept path's
 * hand-over arrives (from the HTTP thread) after the lane's run already read and delivered it — is not
 * delivered again: the outbox decides what is still pending. Driven step by step, not by timing.
 */
describe('a handed copy of a delivered item (pg)', () => {
  let scene: WorkerScene | undefined;
  afterEach(async () => {
    await scene?.close();
    scene = undefined;
  });

  it('is not delivered a second time', async () => {
    scene = await startWorkerScene(1, SECRET);
    const { t, tenantId, handovers, handoff } = scene;
    const handoverId = handovers[0]!;
    const delivered: OutboxRow[] = [];
    let runs = 0;
    scene.startWorker({ deliver: async (row) => void delivered.push(row), onRunsChanged: (n) => (runs = n) });

    const [written] = await writeUserMessages(t.db, [userMessage(tenantId, handoverId, 'once')], 3, handoff);
    expect(written).toMatchObject({ handed: true });
    // Delivered, recorded, and the lane given back.
    await eventually(async () => delivered.length === 1 && runs === 0, 'the item delivered and its lane given back');
    const { rows: left } = await t.db.query(`select id from outbox where id = $1 and state = 'pending'`, [delivered[0]!.id]);
    expect(left).toEqual([]);

    // The late copy: a run starts for it, reads the outbox, finds nothing pending, and ends.
    const copy = delivered[0]!;
    expect(handoff.hand([{ lane: copy.lane, connectorId: copy.connector_id, items: [copy], wasIdle: false }])).toBe(true);
    // Taken at once, in the same turn.
    expect(runs).toBe(1);
    await eventually(async () => runs === 0 || undefined, 'the run of the copy ended');
    expect(delivered).toHaveLength(1);
  });
});
