import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCatalogue } from '../../src/resilience/errors.js';
import { setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * Hostile input for every operation in the service's own OpenAPI document: malformed and hostile
 * bodies, headers, ids and query strings, with and without valid credentials. Whatever comes in, the
 * answer is a 4xx with a stable code from the catalogue (or a 503 naming load), never a 500, and the
 * service keeps answering. fast-check prints the seed and the smallest failing request on failure.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);

interface Operation {
  method: string;
  template: string;
}

const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '..', '../../etc/passwd', '%00', '\u0000', "' or 1=1 --", '"; drop table handovers; --', '<script>alert(1)</script>', '${jndi:ldap://x}', '\\', '%', '%zz', '😀', 'null', 'undefined', '-1', '1e309', 'NaN'),
  fc.string({ minLength: 300, maxLength: 5000 }),
);

const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    hostileString,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.oneof(hostileString, fc.constantFrom('id', 'text', 'queue', 'user', 'conversationId', 'typing', 'reason', 'name', 'webhookUrl', 'config', '__proto__', 'constructor')), tie('value'), { maxKeys: 6 }),
  ),
})).value;

const body = fc.oneof(
  jsonValue.map((v) => ({ raw: JSON.stringify(v) ?? 'null', type: 'application/json' })),
  hostileString.map((s) => ({ raw: s, type: 'application/json' })),
  fc.record({ raw: hostileString, type: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/json; charset=latin1', '') }),
  fc.constant({ raw: '{"a":' + '['.repeat(2000) + ']'.repeat(2000) + '}', type: 'application/json' }),
  fc.constant(undefined),
);

describe('hostile input to every operation (pg)', () => {
  let t: TestService;
  let desk: DeskSetup;
  let operations: Operation[];
  let handoverId: string;

  beforeAll(async () => {
    t = await startTestService('pg');
    desk = await setUpDesk(t);
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    handoverId = created.body.id;
    const spec = (await t.api('GET', '/openapi.json')).body as { paths: Record<string, Record<string, { summary?: string; description?: string }>> };
    operations = Object.entries(spec.paths).flatMap(([template, methods]) =>
      Object.keys(methods)
        .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
        .map((method) => ({ method: method.toUpperCase(), template })),
    );
  });

  afterAll(async () => {
    await t?.close();
  });

  it('answers every request with a 4xx and a catalogued code, or a 503 naming load — never a 500', async () => {
    // Streams stay open by design; their input is checked on opening, which a short timeout still sees.
    const streams = new Set(['/v1/events', '/v1/desk/events']);
    expect(operations.length).toBeGreaterThan(25);
    const seen = new Map<string, number>();
    const credential = fc.constantFrom<'none' | 'bot' | 'agent' | 'admin' | 'garbage'>('none', 'bot', 'agent', 'admin', 'garbage', 'bot', 'admin');
    const param = fc.oneof(hostileString, fc.constant(handoverId), fc.constant(desk.tenantId));
    const query = fc.dictionary(fc.constantFrom('queue', 'after', 'limit', 'x', 'state'), hostileString, { maxKeys: 3 });

    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...operations), fc.array(param, { minLength: 3, maxLength: 3 }), query, body, credential, hostileString, async (op, params, q, b, who, garbage) => {
        let i = 0;
        const path = op.template.replace(/\{[^}]+\}/g, () => encodeURIComponent(params[i++ % params.length]!));
        const search = new URLSearchParams(q).toString();
        const headers: Record<string, string> = {};
        const token = { none: undefined, bot: desk.apiKey, agent: desk.agentToken, admin: t.adminToken, garbage: garbage.replace(/[^\x21-\x7e]/g, 'x') || 'x' }[who];
        if (token) headers.authorization = `Bearer ${token}`;
        if (b && op.method !== 'GET' && op.method !== 'DELETE') headers['content-type'] = b.type;
        const res = await fetch(`${t.url}${path}${search ? `?${search}` : ''}`, {
          method: op.method,
          headers,
          body: b && op.method !== 'GET' && op.method !== 'DELETE' ? b.raw : null,
          signal: AbortSignal.timeout(streams.has(op.template) ? 500 : 10_000),
        }).catch((err: Error) => (err.name === 'TimeoutError' && streams.has(op.template) ? null : Promise.reject(err)));
        if (!res) return; // an open stream: it was accepted
        const text = await res.text().catch(() => '');
        seen.set(`${op.method} ${op.template}`, (seen.get(`${op.method} ${op.template}`) ?? 0) + 1);
        expect(res.status, `${op.method} ${path} → ${res.status} ${text.slice(0, 300)}`).not.toBe(500);
        expect(res.status, `${op.method} ${path} → ${res.status} ${text.slice(0, 300)}`).toBeLessThan(600);
        if (res.status >= 400 && (res.headers.get('content-type') ?? '').includes('json')) {
          const code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
          expect(code && code in errorCatalogue, `${op.method} ${path} → ${res.status} with code ${code}`).toBe(true);
          if (res.status >= 500) expect(res.status, `${op.method} ${path} → ${code}`).toBe(503);
        }
      }),
      { numRuns: RUNS },
    );
    // Every operation was tried, and the service still answers.
    expect(seen.size).toBeGreaterThan(operations.length * 0.8);
    expect((await t.api('GET', '/healthz')).status).toBe(200);
    expect((await t.api('GET', `/v1/handovers/${handoverId}`, { token: desk.apiKey })).status).toBe(200);
  });
});
