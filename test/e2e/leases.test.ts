import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../support/test-db.js';
import { eventually, setUpDesk, startTestService, type TestService } from '../support/test-service.js';

/** Work one instance at a time should do is held by a lease, and taken over when its holder dies. */
describe('the no-answer timer runs on one instance and moves when that one dies (pg)', () => {
  let db: TestDb | undefined;
  const instances: TestService[] = [];
  afterEach(async () => {
    for (const t of instances.splice(0)) await t.close();
    await db?.dropAndClose();
  });

  it('is held by exactly one instance, taken over after a crash, and handed over at once on a clean stop', async () => {
    db = await createTestDb('pg');
    const a = await startTestService('pg', {}, { db });
    instances.push(a);
    const b = await startTestService('pg', {}, { db });
    instances.push(b);
    const holder = async () =>
      (await db!.query<{ holder: string }>(`select holder from leases where name = 'answer-timer' and expires_at > now()`)).rows[0]?.holder;
    const first = await eventually(holder, 'a holder of the timer lease', 10_000);
    expect([a.service.instanceId, b.service.instanceId]).toContain(first);
    const [owner, other] = first === a.service.instanceId ? [a, b] : [b, a];

    // The holder dies without a word: its lease runs out and the other instance takes the timer over.
    await owner.service.stopBackground(0, { keepLeases: true });
    await eventually(async () => (await holder()) === other.service.instanceId, 'the other instance to take the timer over', 15_000);
    const desk = await setUpDesk(other, { queue: { noAnswerTimeoutSeconds: 1 } });
    const created = await other.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    expect(created.status).toBe(201);
    await eventually(
      async () => (await other.api('GET', `/v1/handovers/${created.body.id}`, { token: desk.apiKey })).body.state === 'ended',
      'the unanswered handover to be ended',
      15_000,
    );

    // A clean stop gives the lease back at once.
    await other.service.stopBackground(0);
    expect(await holder()).toBeUndefined();
  });
});
