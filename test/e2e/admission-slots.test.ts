import { afterEach, describe, expect, it } from 'vitest';
import { admissionCounts, answeredCalls } from '../support/admission-probe.js';
import { openRawRequest, slowJsonUpload, type RawRequest } from '../support/raw-http.js';
import { holdHandover } from '../support/row-lock.js';
import { eventually, setUpDesk, startTestService, type TestService } from '../support/test-service.js';

/**
 * The admission slots of the real HTTP stack come back whatever clients do: hang up while waiting for a
 * slot, while holding one, in the middle of a body. Clients here are raw sockets, so a hang-up is a
 * real one. (A property test drives random mixes of the same: admission-slots.property.test.ts.)
 */
describe('admission slots always come back (pg)', () => {
  let t: TestService | undefined;
  const sockets: RawRequest[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await t?.close();
    t = undefined;
  });

  /** A small fixed limit and a long queue wait: waiters are still waiting when their clients hang up. */
  const settings = { 'admission.adaptive': false, 'admission.initialLimit': 4, 'admission.queueTimeoutMs': 5_000, 'admission.codelIntervalMs': 60_000 };

  async function open(options: Parameters<typeof openRawRequest>[1]): Promise<RawRequest> {
    const request = await openRawRequest(t!.url, options);
    sockets.push(request);
    return request;
  }

  it('the attack: slow uploads, GETs queued behind them that hang up, then the uploads hang up', async () => {
    t = await startTestService('pg', settings);
    const desk = await setUpDesk(t);
    expect(await answeredCalls(t, desk.apiKey)).toBe(10);

    const uploads = await Promise.all(Array.from({ length: 4 }, () => open(slowJsonUpload('/v1/desk/login', 100_000))));
    // A later request answered: the uploads' heads have been read by now.
    expect((await t.api('GET', '/healthz')).status).toBe(200);
    const gets = await Promise.all(
      Array.from({ length: 8 }, () => open({ method: 'GET', path: '/v1/availability?queue=support', headers: { authorization: `Bearer ${desk.apiKey}` } })),
    );
    // Each GET is either waiting for a slot or already answered (when uploads hold none).
    await eventually(
      async () => (await admissionCounts(t!)).waiting + gets.filter((g) => g.status !== undefined).length === gets.length,
      'every GET to wait or be answered',
      5_000,
    );
    for (const get of gets) get.destroy();
    for (const upload of uploads) upload.destroy();

    await eventually(
      async () => {
        const counts = await admissionCounts(t!);
        return counts.inflight === 0 && counts.waiting === 0;
      },
      'every slot to come back',
      5_000,
    );
    expect(await answeredCalls(t, desk.apiKey)).toBe(10);
  });

  it('requests that hang up while waiting never keep the slot they are later handed', async () => {
    t = await startTestService('pg', settings);
    const desk = await setUpDesk(t);
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    const lock = await holdHandover(t, created.body.id);
    const auth = { authorization: `Bearer ${desk.apiKey}`, 'content-type': 'application/json' };
    try {
      // Ending locks the handover's row: these hold every slot until the lock is let go.
      const holders = await Promise.all(
        Array.from({ length: 4 }, () =>
          open({ method: 'POST', path: `/v1/handovers/${created.body.id}/end`, headers: { ...auth, 'content-length': '2' }, body: '{}' }),
        ),
      );
      await eventually(async () => (await admissionCounts(t!)).inflight === 4, 'the holders to take every slot', 5_000);
      const waiters = await Promise.all(Array.from({ length: 6 }, () => open({ method: 'GET', path: '/v1/availability?queue=support', headers: auth })));
      await eventually(async () => (await admissionCounts(t!)).waiting === 6, 'the waiters to queue', 5_000);
      for (const waiter of waiters) waiter.destroy();
      // One holder hangs up too, while its handler still waits on the lock.
      holders[0]!.destroy();
      await lock.release();
      for (const holder of holders.slice(1)) expect(await holder.answered()).toBe(200);
    } finally {
      await lock.release();
    }
    await eventually(
      async () => {
        const counts = await admissionCounts(t!);
        return counts.inflight === 0 && counts.waiting === 0;
      },
      'every slot to come back',
      5_000,
    );
    expect(await answeredCalls(t, desk.apiKey)).toBe(10);
  });
});
