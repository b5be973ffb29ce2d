import { afterEach, describe, expect, it } from 'vitest';
import { writeUserMessages } from '../../src/handover/accept-user-messages.js';
import { eventually } from '../support/test-service.js';
import { afterEachStatement, beforeEachStatement, startWorkerScene, textOf, userMessage, type WorkerScene } from '../support/worker-scene.js';

const SECRET = 'whsec_' + Buffer.from('bulkhead-slots-secret-0123456789').toString('base64');

/**
 * A helpdesk's bulkhead bounds the lanes of that helpdesk that may call it at once on this instance.
 * A lane whose run has delivered what it had and waits for its completions to be written (and its lane
 * given back) holds no slot: that wait is on this instance's database, not on the helpdesk. Driven step
 * by step, with a bulkhead of one slot.
 */
describe('bulkhead slots (pg)', () => {
  let scene: WorkerScene | undefined;
  /** Lets whatever a test holds back go on, so that a failed test still stops its worker at once. */
  let unblock = () => {};
  afterEach(async () => {
    unblock();
    await scene?.close();
    scene = undefined;
  });

  it('holds a slot while a lane calls the helpdesk: another lane of it is not handed over', async () => {
    scene = await startWorkerScene(2, SECRET);
    const { t, tenantId, handovers, handoff } = scene;
    const delivered: string[] = [];
    let calling = false;
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    unblock = answer;
    scene.startWorker({
      maxPerConnector: 1,
      deliver: async (row) => {
        if (textOf(row) === 'first') {
          calling = true;
          await answered;
        }
        delivered.push(textOf(row));
      },
    });
    const [first] = await writeUserMessages(t.db, [userMessage(tenantId, handovers[0]!, 'first')], 3, handoff);
    expect(first).toMatchObject({ handed: true });
    await eventually(async () => calling || undefined, 'the first lane calling the helpdesk');
    // The one slot is taken by a call in flight: the second lane waits in the outbox for a claim.
    const [second] = await writeUserMessages(t.db, [userMessage(tenantId, handovers[1]!, 'second')], 3, handoff);
    expect(second).toMatchObject({ handed: false });
    t.service.deps.bus.publish('outbox', { tenantId });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(delivered).toEqual([]);
    answer();
    await eventually(async () => delivered.length === 2 || undefined, 'both delivered, the second once the slot came free');
    expect(delivered).toEqual(['first', 'second']);
  });

  it('gives the slot up while a lane waits for its release: another lane of the helpdesk is handed over and delivered meanwhile', async () => {
    scene = await startWorkerScene(2, SECRET);
    const { t, tenantId, handovers, handoff } = scene;
    const delivered: string[] = [];
    let completionsHeld = 0;
    let letThrough!: () => void;
    const gate = new Promise<void>((resolve) => (letThrough = resolve));
    unblock = letThrough;
    let runs = 0;
    // The completion statement's answer is held back: the first lane's run delivered its message and
    // waits for the answer to its lane's release (given back in the database already).
    const db = afterEachStatement(t.db, async (name) => {
      if (name !== 'record-completions') return;
      completionsHeld++;
      await gate;
    });
    scene.startWorker({ db, maxPerConnector: 1, deliver: async (row) => void delivered.push(textOf(row)), onRunsChanged: (n) => (runs = n) });
    const [first] = await writeUserMessages(t.db, [userMessage(tenantId, handovers[0]!, 'first')], 3, handoff);
    expect(first).toMatchObject({ handed: true });
    await eventually(async () => (delivered.includes('first') && completionsHeld === 1) || undefined, 'the first delivered, its release waiting');
    expect(runs).toBe(1);
    const [second] = await writeUserMessages(t.db, [userMessage(tenantId, handovers[1]!, 'second')], 3, handoff);
    expect(second).toMatchObject({ handed: true });
    await eventually(async () => delivered.includes('second') || undefined, 'the second delivered while the first lane waits for its release');
    letThrough();
    await eventually(async () => runs === 0 || undefined, 'both lanes given back');
    expect(delivered).toEqual(['first', 'second']);
    const { rows } = await t.db.query<{ pending: number; locked_by: string | null }>(
      `select pending, locked_by from outbox_lanes where lane = any($1::text[])`,
      [handovers.map((id) => `${id}:agent`)],
    );
    expect(rows).toEqual([
      { pending: 0, locked_by: null },
      { pending: 0, locked_by: null },
    ]);
  });

  it('takes the slot back for a lane kept at its release only if one is free, and otherwise gives the lane back to be claimed', async () => {
    scene = await startWorkerScene(2, SECRET);
    const { t, tenantId, handovers, handoff } = scene;
    const delivered: string[] = [];
    let inFlight = 0;
    let mostInFlight = 0;
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    let letThrough!: () => void;
    let gate: Promise<void> | undefined = new Promise<void>((resolve) => (letThrough = resolve));
    let completionsHeld = 0;
    unblock = () => {
      answer();
      letThrough();
    };
    // The first completion statement is held back before it runs: the first lane's run waits for its release.
    const db = beforeEachStatement(t.db, (name) => {
      if (name !== 'record-completions') return undefined;
      const held = gate;
      gate = undefined;
      if (held) completionsHeld++;
      return held;
    });
    scene.startWorker({
      db,
      maxPerConnector: 1,
      deliver: async (row) => {
        inFlight++;
        mostInFlight = Math.max(mostInFlight, inFlight);
        try {
          if (textOf(row) === 'b1') await answered;
          delivered.push(textOf(row));
        } finally {
          inFlight--;
        }
      },
    });
    const [a1] = await writeUserMessages(t.db, [userMessage(tenantId, handovers[0]!, 'a1')], 3, handoff);
    expect(a1).toMatchObject({ handed: true });
    await eventually(async () => (delivered.includes('a1') && completionsHeld === 1) || undefined, 'a1 delivered, its lane waiting for its release');
    // A second message to the same lane, not handed to the worker: the release will find it pending and keep the lane.
    const [a2] = await writeUserMessages(t.db, [userMessage(tenantId, handovers[0]!, 'a2')], 3, null);
    expect(a2).toMatchObject({ handed: false });
    // The other lane takes the slot the first gave up, and its call stays in flight.
    const [b1] = await writeUserMessages(t.db, [userMessage(tenantId, handovers[1]!, 'b1')], 3, handoff);
    expect(b1).toMatchObject({ handed: true });
    await eventually(async () => inFlight === 1 || undefined, 'b1 calling the helpdesk');
    letThrough();
    // The first lane is kept (a2 pending) while the bulkhead is full: it is given back, not delivered past the bound.
    await eventually(async () => {
      const { rows } = await t.db.query<{ locked_by: string | null; pending: number }>('select locked_by, pending from outbox_lanes where lane = $1', [
        `${handovers[0]}:agent`,
      ]);
      return (rows[0]?.locked_by === null && rows[0]?.pending === 1) || undefined;
    }, 'the first lane given back with a2 pending');
    t.service.deps.bus.publish('outbox', { tenantId });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(delivered).toEqual(['a1']);
    answer();
    await eventually(async () => delivered.length === 3 || undefined, 'b1 answered, then a2 claimed once the slot came free');
    expect(delivered).toEqual(['a1', 'b1', 'a2']);
    expect(mostInFlight).toBe(1);
  });
});
