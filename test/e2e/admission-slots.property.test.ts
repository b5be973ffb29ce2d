import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admissionCounts } from '../support/admission-probe.js';
import { openRawRequest, slowJsonUpload, type RawRequest, type RawRequestOptions } from '../support/raw-http.js';
import { holdHandover } from '../support/row-lock.js';
import { eventually, setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

const RUNS = 12;

/**
 * What a client does: `hold` takes a slot and keeps it while the test holds a row lock (ending an
 * ended handover locks its row), `get` is quick once admitted, `bad` is refused by validation after
 * admission, `slow` sends part of a body and no more.
 */
const kinds = ['hold', 'get', 'bad', 'slow'] as const;
type Kind = (typeof kinds)[number];

const client = fc.record({
  kind: fc.constantFrom<Kind>(...kinds),
  startMs: fc.integer({ min: 0, max: 300 }),
  // When it hangs up; none: it stays for its answer.
  hangUpMs: fc.option(fc.integer({ min: 0, max: 900 }), { nil: undefined }),
});

const scenario = fc.record({
  clients: fc.array(client, { minLength: 1, maxLength: 8 }),
  // When the row lock is let go: past the 1.5 s deadline, the holders are cut by it.
  lockMs: fc.integer({ min: 0, max: 2_000 }),
});

/**
 * Random interleavings of a request's fates — waiting, admitted, hanging up before or after admission
 * or in the middle of its body, timing out in the queue or at its deadline, answered — through the
 * real HTTP stack, with two slots. Whatever happened, every slot comes back and nothing waits.
 */
describe('admission slots come back whatever clients do (property, pg)', () => {
  let t: TestService;
  let desk: DeskSetup;
  let endedId: string;
  beforeAll(async () => {
    t = await startTestService('pg', {
      'admission.adaptive': false,
      'admission.initialLimit': 2,
      'admission.queueTimeoutMs': 600,
      'admission.codelIntervalMs': 60_000,
      'admission.handlerTimeoutMs': 1_500,
      'http.uploads.windowMs': 300,
    });
    desk = await setUpDesk(t);
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    endedId = created.body.id;
    expect((await t.api('POST', `/v1/handovers/${endedId}/end`, { token: desk.apiKey, body: {} })).status).toBe(200);
  });
  afterAll(async () => t?.close());

  function request(kind: Kind): RawRequestOptions {
    const auth = { authorization: `Bearer ${desk.apiKey}`, 'content-type': 'application/json' };
    if (kind === 'hold') return { method: 'POST', path: `/v1/handovers/${endedId}/end`, headers: { ...auth, 'content-length': '2' }, body: '{}' };
    if (kind === 'get') return { method: 'GET', path: '/v1/availability?queue=support', headers: { authorization: auth.authorization } };
    if (kind === 'bad') return { method: 'POST', path: '/v1/handovers', headers: { ...auth, 'content-length': '2' }, body: '{}' };
    return slowJsonUpload('/v1/desk/login', 200);
  }

  it(`every slot comes back and nothing is left waiting (${RUNS} scenarios)`, async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async ({ clients, lockMs }) => {
        const lock = await holdHandover(t, endedId);
        const letGo = new Promise<void>((resolve) => setTimeout(() => void lock.release().then(resolve), lockMs));
        const statuses: Array<number | undefined> = [];
        try {
          await Promise.all(
            clients.map(async ({ kind, startMs, hangUpMs }) => {
              await new Promise((r) => setTimeout(r, startMs));
              const raw: RawRequest = await openRawRequest(t.url, request(kind));
              try {
                if (hangUpMs === undefined) statuses.push(await raw.answered(5_000));
                else await new Promise((r) => setTimeout(r, hangUpMs));
              } finally {
                raw.destroy();
              }
            }),
          );
        } finally {
          await letGo;
        }
        // Everyone who stayed was answered, never with a 500.
        expect(statuses.every((s) => s !== undefined && s !== 500)).toBe(true);
        await eventually(
          async () => {
            const counts = await admissionCounts(t);
            return counts.inflight === 0 && counts.waiting === 0;
          },
          `every slot to come back after ${JSON.stringify({ clients, lockMs })}`,
          4_000,
        );
        runs++;
      }),
      // One service for every run: once a run has lost a slot, every later one fails too, so shrinking
      // would only find the smallest scenario run after the loss. The first failure is the one to read.
      { numRuns: RUNS, interruptAfterTimeLimit: 90_000, endOnFailure: true },
    );
    expect(runs).toBe(RUNS);
    expect((await t.api('GET', '/readyz')).status).toBe(200);
    expect((await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey })).status).toBe(200);
  }, 120_000);
});
