import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCatalogue } from '../../src/resilience/errors.js';
import { FUZZ_CASES, fuzzTimeLimits, hostileBody, hostileString, wellFormed, type RawBody } from '../support/hostile-input.js';
import { openDeskConsole, setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * Hostile input for every operation in the service's own OpenAPI document: malformed and hostile
 * bodies, headers, ids and query strings, with and without valid credentials, and with another
 * tenant's ids among the parameters. Whatever comes in:
 * - the answer is a 4xx with a stable code from the catalogue (or a 503 naming load), never a 500,
 *   and the service keeps answering;
 * - nothing of tenant B reaches a caller holding tenant A's credentials, and B's data is unchanged;
 * - every message an operation answered 202 is in its handover's transcript, exactly once.
 * fast-check prints the seed and the smallest failing request on failure. This property takes 70% of
 * the fuzz budget; the connectors' inbound webhooks (hostile-webhooks.test.ts) take the rest.
 */
const RUNS = Math.ceil(FUZZ_CASES * 0.7);
const LIMITS = fuzzTimeLimits(RUNS);

interface Operation {
  method: string;
  template: string;
}

/** Ids resolved when a case runs: the fuzz itself may end, transfer or accept tenant A's handovers. */
type Ref = { ref: 'aLive' | 'aWaiting' | 'aTenant' | 'aAgent' | 'bWaiting' | 'bAccepted' | 'bTenant' | 'bUser' | 'bAgent' };
type Credential = 'none' | 'bot' | 'agent' | 'admin' | 'garbage';

const messageOps = ['POST /v1/handovers/{id}/messages', 'POST /v1/desk/handovers/{id}/messages'];
/** Operations that cannot end, move or take a handover, nor change an agent's session or presence. */
const keepsFixtures = new Set([...messageOps, 'POST /v1/handovers/{id}/typing', 'POST /v1/desk/handovers/{id}/typing']);

/** A message body that passes the schema more often than not, with hostile text and ids. */
const messageBody: fc.Arbitrary<RawBody> = fc
  .record(
    {
      id: fc.oneof(fc.string({ minLength: 1, maxLength: 8 }), hostileString),
      text: hostileString,
      attachments: fc.array(fc.record({ url: fc.oneof(fc.webUrl(), hostileString) }), { maxLength: 2 }),
    },
    { requiredKeys: ['text'] },
  )
  .map((m) => ({ raw: JSON.stringify(m), type: 'application/json' }));

describe('hostile input to every operation (pg)', () => {
  let t: TestService;
  let a: DeskSetup;
  let b: DeskSetup;
  let operations: Operation[];
  const ids = new Map<Ref['ref'], string>();
  /** Unique strings only tenant B's data holds: none may appear in an answer to tenant A. */
  const bMarkers: string[] = [];
  const bText = `b private text ${randomUUID()}`;
  const aUser = `a-user-${randomUUID()}`;
  let aConversations = 0;

  /** A new handover of tenant A; accepted by A's agent when `accept`. */
  async function newAHandover(accept: boolean): Promise<string> {
    const created = await t.api('POST', '/v1/handovers', {
      token: a.apiKey,
      body: { conversationId: `a-${++aConversations}`, queue: 'support', user: { id: aUser } },
    });
    if (created.status !== 201) throw new Error(`handover for A: ${created.status} ${JSON.stringify(created.body)}`);
    if (accept) {
      const accepted = await t.api('POST', `/v1/desk/handovers/${created.body.id}/accept`, { token: a.agentToken });
      if (accepted.status !== 200) throw new Error(`accept for A: ${accepted.status} ${JSON.stringify(accepted.body)}`);
    }
    return created.body.id;
  }

  /**
   * Puts tenant A's fixtures back after a case may have changed them: a signed-in, available agent, one
   * handover it holds and one waiting. Handovers the fuzz moved are ended (they stay readable).
   */
  async function restoreFixtures(): Promise<void> {
    if ((await t.api('GET', '/v1/desk/me', { token: a.agentToken })).status === 401) {
      const session = await t.api('POST', '/v1/desk/login', { body: { email: a.agentEmail, password: 'correct horse battery' } });
      if (session.status !== 200) throw new Error(`login for A: ${session.status} ${JSON.stringify(session.body)}`);
      a.agentToken = session.body.token;
    }
    // At a desk again (a case may have ended the session its console ran on): online only with one open.
    if (!a.console || a.console.ended) a.console = await openDeskConsole(t, a.agentToken);
    await t.api('PUT', '/v1/desk/presence', { token: a.agentToken, body: { presence: 'available' } });
    for (const [ref, want] of [
      ['aLive', 'active'],
      ['aWaiting', 'queued'],
    ] as const) {
      const current = await t.api('GET', `/v1/handovers/${ids.get(ref)}`, { token: a.apiKey });
      const fine = current.body.state === want && (want === 'queued' || current.body.agent?.id === a.agentId);
      if (fine) continue;
      if (current.body.state !== 'ended') await t.api('POST', `/v1/handovers/${ids.get(ref)}/end`, { token: a.apiKey, body: {} });
      ids.set(ref, await newAHandover(want === 'active'));
    }
  }

  beforeAll(async () => {
    t = await startTestService('pg');
    a = await setUpDesk(t);
    const bAgentEmail = `b-agent-${randomUUID()}@example.com`;
    const bAgentName = `B agent ${randomUUID()}`;
    b = await setUpDesk(t, { agent: { email: bAgentEmail, name: bAgentName } });
    // Tenant B: a waiting handover and an accepted one with a message in it, all marked.
    const bUser = `b-user-${randomUUID()}`;
    const marks = {
      email: `b-${randomUUID()}@example.com`,
      name: `B user ${randomUUID()}`,
      conversation: `b-conv-${randomUUID()}`,
      text: bText,
      meta: `b-meta-${randomUUID()}`,
    };
    const user = { id: bUser, email: marks.email, name: marks.name };
    const waiting = await t.api('POST', '/v1/handovers', {
      token: b.apiKey,
      body: { conversationId: marks.conversation, queue: 'support', user, metadata: { note: marks.meta } },
    });
    expect(waiting.status).toBe(201);
    const accepted = await t.api('POST', '/v1/handovers', { token: b.apiKey, body: { conversationId: `${marks.conversation}-2`, queue: 'support', user } });
    expect((await t.api('POST', `/v1/desk/handovers/${accepted.body.id}/accept`, { token: b.agentToken })).status).toBe(200);
    expect((await t.api('POST', `/v1/handovers/${accepted.body.id}/messages`, { token: b.apiKey, body: { id: 'b-m', text: marks.text } })).status).toBe(202);
    // A colleague of B's agent at a desk, out of the fuzz's reach: whatever a case does to B's agent
    // (an admin may sign it out), B's waiting user still has someone online and keeps waiting.
    const colleague = { email: `b-colleague-${randomUUID()}@example.com`, name: `B colleague ${randomUUID()}`, password: 'correct horse battery' };
    expect((await t.admin('POST', `/v1/admin/tenants/${b.tenantId}/agents`, colleague)).status).toBe(201);
    const colleagueToken = (await t.api('POST', '/v1/desk/login', { body: { email: colleague.email, password: colleague.password } })).body.token as string;
    expect((await t.api('PUT', '/v1/desk/presence', { token: colleagueToken, body: { presence: 'available' } })).status).toBe(200);
    await openDeskConsole(t, colleagueToken);
    bMarkers.push(...Object.values(marks), bAgentEmail, bAgentName, colleague.email, colleague.name);
    for (const [ref, id] of [
      ['bWaiting', waiting.body.id],
      ['bAccepted', accepted.body.id],
      ['bTenant', b.tenantId],
      ['bUser', bUser],
      ['bAgent', b.agentId],
      ['aTenant', a.tenantId],
      ['aAgent', a.agentId],
    ] as const)
      ids.set(ref, id);
    ids.set('aLive', await newAHandover(true));
    ids.set('aWaiting', await newAHandover(false));

    const spec = (await t.api('GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    operations = Object.entries(spec.paths).flatMap(([template, methods]) =>
      Object.keys(methods)
        .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
        .map((method) => ({ method: method.toUpperCase(), template })),
    );
  });

  afterAll(async () => {
    await t?.close();
  });

  it(
    `answers ${RUNS} hostile requests with a catalogued 4xx (or a 503 naming load), leaks nothing of another tenant, loses no accepted message`,
    async ({ task }) => {
      expect(operations.length).toBeGreaterThan(25);
      for (const op of messageOps) expect(operations.map((o) => `${o.method} ${o.template}`)).toContain(op);
      const seen = new Map<string, number>();
      /** Messages answered 202: our id → the handover and the text first sent under it. */
      const accepted = new Map<string, { handoverId: string; text: string; op: string }>();
      let crossTenantCases = 0;
      let cases = 0;

      const credential = fc.constantFrom<Credential>('none', 'bot', 'agent', 'admin', 'garbage', 'bot', 'agent', 'admin');
      const ref = (r: Ref['ref']): fc.Arbitrary<Ref> => fc.constant({ ref: r });
      const param = fc.oneof(
        { arbitrary: hostileString, weight: 4 },
        { arbitrary: fc.oneof(ref('aLive'), ref('aWaiting'), ref('aTenant'), ref('aAgent')), weight: 3 },
        { arbitrary: fc.oneof(ref('bWaiting'), ref('bAccepted'), ref('bTenant'), ref('bUser'), ref('bAgent')), weight: 2 },
      );
      const query = fc.dictionary(fc.constantFrom('queue', 'after', 'limit', 'x', 'state', 'tenantId', 'before'), fc.oneof(hostileString, ref('bTenant')), {
        maxKeys: 3,
      });
      const anyCase = fc.record({
        op: fc.constantFrom(...operations),
        params: fc.array(param, { minLength: 3, maxLength: 3 }),
        query,
        body: hostileBody,
        who: credential,
        garbage: hostileString,
      });
      // Posting messages, aimed: mostly the right credential, a live handover and a body that may pass.
      const messageCase = fc.record({
        op: fc.constantFrom(...operations.filter((o) => messageOps.includes(`${o.method} ${o.template}`))),
        params: fc.array(fc.oneof({ arbitrary: fc.oneof(ref('aLive'), ref('aWaiting')), weight: 3 }, { arbitrary: param, weight: 1 }), {
          minLength: 1,
          maxLength: 1,
        }),
        query: fc.constant<Record<string, string | Ref>>({}),
        body: fc.oneof({ arbitrary: messageBody, weight: 3 }, { arbitrary: hostileBody, weight: 1 }),
        who: fc.oneof({ arbitrary: fc.constant<Credential | 'own'>('own'), weight: 3 }, { arbitrary: credential, weight: 1 }),
        garbage: hostileString,
      });
      const resolve = (p: string | Ref): string => (typeof p === 'string' ? p : ids.get(p.ref)!);

      await fc.assert(
        fc.asyncProperty(
          fc.oneof({ arbitrary: anyCase, weight: 4 }, { arbitrary: messageCase, weight: 1 }),
          async ({ op, params, query: q, body: b, who: claimed, garbage }) => {
            const name = `${op.method} ${op.template}`;
            const who = claimed === 'own' ? (op.template.startsWith('/v1/desk/') ? 'agent' : 'bot') : claimed;
            let i = 0;
            const used: Array<string | Ref> = [];
            const path = op.template.replace(/\{[^}]+\}/g, () => {
              const drawn = params[i++ % params.length]!;
              // Deleting a fixture's own tenant would end the run's invariants rather than probe hostile input
              // (test/e2e/tenant-deletion.test.ts covers the deletion): that operation gets only ids of its own.
              const p = name === 'DELETE /v1/admin/tenants/{tenantId}' && typeof drawn !== 'string' ? 'ten_not_a_fixture' : drawn;
              used.push(p);
              return encodeURIComponent(wellFormed(resolve(p)));
            });
            const search = new URLSearchParams(Object.entries(q).map(([k, v]): [string, string] => [k, resolve(v)])).toString();
            const headers: Record<string, string> = {};
            const token = { none: undefined, bot: a.apiKey, agent: a.agentToken, admin: t.adminToken, garbage: garbage.replace(/[^\x21-\x7e]/g, 'x') || 'x' }[
              who
            ];
            if (token) headers.authorization = `Bearer ${token}`;
            const sendsBody = b && op.method !== 'GET' && op.method !== 'DELETE';
            if (sendsBody) headers['content-type'] = b.type;
            const res = await fetch(`${t.url}${path}${search ? `?${search}` : ''}`, {
              method: op.method,
              headers,
              body: sendsBody ? b.raw : null,
              signal: AbortSignal.timeout(10_000),
            });
            // A stream that opened stays open by design; its input was checked on opening. (A path with
            // `..` in it may reach a stream from another operation's template.)
            const opened = res.status === 200 && (res.headers.get('content-type') ?? '').startsWith('text/event-stream');
            const text = opened ? (await res.body?.cancel(), '') : await res.text();
            const what = `${op.method} ${path} as ${who} → ${res.status} ${text.slice(0, 300)}`;
            seen.set(name, (seen.get(name) ?? 0) + 1);
            expect(res.status, what).not.toBe(500);
            expect(res.status, what).toBeLessThan(600);
            if (res.status >= 400 && (res.headers.get('content-type') ?? '').includes('json')) {
              const code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
              expect(code && code in errorCatalogue, `${what}: code ${code}`).toBe(true);
              if (res.status >= 500) expect(res.status, what).toBe(503);
            }
            // The admin sees every tenant by design; anyone else must see nothing of B.
            if (who !== 'admin') {
              for (const marker of bMarkers) expect(text.includes(marker), `${what} holds tenant B's ${marker}`).toBe(false);
              if (used.some((p) => typeof p !== 'string' && p.ref.startsWith('b')) || Object.values(q).some((v) => typeof v !== 'string')) crossTenantCases++;
            }
            if (messageOps.includes(name) && res.status === 202) {
              const id = (JSON.parse(text) as { id: string }).id;
              const sent = JSON.parse(b!.raw) as { text: string };
              if (!accepted.has(id)) accepted.set(id, { handoverId: resolve(used[0]!), text: sent.text, op: name });
            }
            cases++;
            if (res.status < 300 && op.method !== 'GET' && !keepsFixtures.has(name)) await restoreFixtures();
          },
        ),
        { numRuns: RUNS, interruptAfterTimeLimit: LIMITS.interruptAfterTimeLimit },
      );
      // Every operation was tried, enough of them with B's ids, and the service still answers.
      expect(cases).toBe(RUNS);
      task.meta.fuzzCases = cases;
      expect(seen.size).toBeGreaterThan(operations.length * 0.8);
      expect(crossTenantCases).toBeGreaterThan(RUNS / 10);
      expect((await t.api('GET', '/healthz')).status).toBe(200);

      // No accepted message lost: each is in its handover's transcript (read as A's agent), once, as sent.
      expect(accepted.size, 'messages answered 202').toBeGreaterThan(RUNS / 200);
      await restoreFixtures();
      const byHandover = new Map<string, Array<{ id: string; text: string }>>();
      for (const handoverId of new Set([...accepted.values()].map((m) => m.handoverId))) {
        const messages: Array<{ id: string; seq: number; text: string }> = [];
        for (let page = 0; page < 100; page++) {
          const transcript = await t.api('GET', `/v1/desk/handovers/${handoverId}/messages?after=${messages.at(-1)?.seq ?? 0}`, { token: a.agentToken });
          expect(transcript.status, `transcript of ${handoverId}`).toBe(200);
          messages.push(...transcript.body.messages);
          if (transcript.body.messages.length === 0) break;
        }
        byHandover.set(handoverId, messages);
      }
      for (const [id, m] of accepted) {
        const found = byHandover.get(m.handoverId)!.filter((x) => x.id === id);
        expect(found.length, `${m.op}: message ${id} in the transcript of ${m.handoverId}`).toBe(1);
        expect(found[0]!.text, `${m.op}: text of ${id}`).toBe(m.text);
      }

      // Tenant B, read with its own credentials, is as it was set up.
      expect((await t.api('GET', `/v1/handovers/${ids.get('bWaiting')}`, { token: b.apiKey })).body).toMatchObject({ state: 'queued' });
      expect((await t.api('GET', `/v1/handovers/${ids.get('bAccepted')}`, { token: b.apiKey })).body).toMatchObject({
        state: 'active',
        agent: { id: b.agentId },
      });
      // (An admin case may have signed B's agent out, as admins may: it signs in again to read.)
      if ((await t.api('GET', '/v1/desk/me', { token: b.agentToken })).status === 401) {
        b.agentToken = (await t.api('POST', '/v1/desk/login', { body: { email: b.agentEmail, password: 'correct horse battery' } })).body.token;
      }
      const bTranscript = await t.api('GET', `/v1/desk/handovers/${ids.get('bAccepted')}/messages`, { token: b.agentToken });
      expect(bTranscript.body.messages.map((m: { text: string }) => m.text)).toEqual([bText]);
    },
    LIMITS.testTimeoutMs,
  );
});
