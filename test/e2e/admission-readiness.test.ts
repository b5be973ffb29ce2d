import { afterEach, describe, expect, it } from 'vitest';
import type { Permit } from '../../src/resilience/admission.js';
import { parsePromText, valueOf } from '../support/prom-text.js';
import { eventually, startTestService, type TestService } from '../support/test-service.js';

/**
 * Readiness reports the admission controller's own health, so an instance whose slots do not come back
 * leaves rotation instead of refusing every call while `/readyz` says all is well. The request path
 * cannot lose a slot any more (admission-slots.test.ts), so the faults are injected into the
 * controller: a slot held for a client that has gone, and a full house that gives nothing back.
 */
describe('readiness fails while admission slots do not come back (pg)', () => {
  let t: TestService | undefined;
  const permits: Permit[] = [];
  afterEach(async () => {
    for (const p of permits.splice(0)) p.release();
    await t?.close();
    t = undefined;
  });

  const readyz = async () => t!.api('GET', '/readyz');

  it('a slot held for a request whose client has gone', async () => {
    t = await startTestService('pg', { 'admission.adaptive': false, 'admission.initialLimit': 4 });
    expect((await readyz()).status).toBe(200);
    permits.push(await t.service.app.admission.acquire('fault', true, { live: () => false }));
    const stuck = await eventually(
      async () => {
        const res = await readyz();
        return res.status === 503 ? res : null;
      },
      'readiness to fail',
      5_000,
    );
    expect(stuck.body.error.code).toBe('admission_stuck');
    expect(stuck.body.error.message).toMatch(/1 admission slot\(s\) are held for requests whose client has gone/);
    expect(stuck.body.error.details).toMatchObject({ orphaned: 1, inflight: 1, limit: 4 });
    // What the HandoverAdmissionStuck alert reads.
    const during = parsePromText((await t.api('GET', '/metrics')).body as string);
    expect(valueOf(during, 'handover_admission_stuck')).toBe(1);
    expect(valueOf(during, 'handover_admission_orphaned_slots')).toBe(1);
    permits.pop()!.release();
    expect((await readyz()).status).toBe(200);
    expect(valueOf(parsePromText((await t.api('GET', '/metrics')).body as string), 'handover_admission_stuck')).toBe(0);
  });

  it('every slot in use, the limit at its floor, and none given back', async () => {
    t = await startTestService('pg', {
      'admission.adaptive': false,
      'admission.initialLimit': 2,
      'admission.handlerTimeoutMs': 1000,
      'admission.stuckMs': 1500,
    });
    for (let i = 0; i < 2; i++) permits.push(await t.service.app.admission.acquire('fault', true, { live: () => true }));
    // Full but young: busy, not stuck.
    expect((await readyz()).status).toBe(200);
    const refused = await t.api('GET', '/v1/availability?queue=support', { token: 'handover_sk_x' });
    expect(refused.body.error.code).toBe('overloaded_queue_wait');
    const stuck = await eventually(
      async () => {
        const res = await readyz();
        return res.status === 503 ? res : null;
      },
      'readiness to fail',
      5_000,
    );
    expect(stuck.body.error.code).toBe('admission_stuck');
    expect(stuck.body.error.message).toMatch(/All 2 admission slots \(the limit is at its floor of 2\) have been in use for \d+ s with none given back/);
    expect(stuck.body.error.details).toMatchObject({ orphaned: 0, inflight: 2, limit: 2, floor: 2 });
    // One slot back is progress: ready again at once.
    permits.pop()!.release();
    expect((await readyz()).status).toBe(200);
  });
});
