import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePromText } from '../support/prom-text.js';
import { startPrivateRedis, type PrivateRedis } from '../support/redis-server.js';
import { createTestDb, type TestDb } from '../support/test-db.js';
import { openSseClient, type SseClient } from '../support/sse-client.js';
import { setUpCaseDesk, sharedServices } from '../support/shared-services.js';
import { eventually, setUpDesk, startTestService, type TestService } from '../support/test-service.js';

/** Event streams end with their credential, and one credential holds only so many. */
describe('event streams end with their credential (pglite)', () => {
  // The cases with the same settings share a service; each has a tenant, keys and sessions of its own
  // (setUpCaseDesk), and a stream's bounds and signals are its credential's.
  const service = sharedServices('pglite');
  let t: TestService | undefined;
  const streams: SseClient[] = [];
  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    t = undefined;
  });
  const open = (path: string, token: string) => {
    const stream = openSseClient(`${t!.url}${path}`, { authorization: `Bearer ${token}` });
    streams.push(stream);
    return stream;
  };

  it('ends a bot stream with a coded event at once when its key is revoked, and refuses the key at once', async () => {
    // A long recheck: the revocation signal alone must end the first stream quickly.
    t = await service({ 'http.streams.recheckMs': 60_000 });
    const desk = await setUpCaseDesk(t);
    const key = (await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/api-keys`, { scope: 'read' })).body;
    const revoked = open('/v1/events', key.apiKey);
    const other = open('/v1/events', desk.apiKey);
    expect(await revoked.opened).toBe(200);
    expect(await other.opened).toBe(200);

    const started = Date.now();
    expect((await t.admin('DELETE', `/v1/admin/tenants/${desk.tenantId}/api-keys/${key.id}`)).status).toBe(204);
    await revoked.waitFor((events) => events.some((e) => e.event === 'error'), 5_000, 'the final event');
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(revoked.events.at(-1)).toEqual({ event: 'error', data: { error: { code: 'credential_revoked', message: expect.any(String) } } });
    await eventually(async () => revoked.ended, 'the server to close the stream', 5_000);
    // Another key's stream goes on, and still delivers.
    expect(other.ended).toBe(false);
    await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c1', queue: 'support', user: { id: 'u1' } } });
    await other.waitFor((events) => events.length > 0, 5_000, 'an event on the other stream');
    // Reconnecting with the revoked key is refused at once: the revocation took it out of the key cache.
    expect((await t.api('GET', '/v1/events', { token: key.apiKey })).status).toBe(401);
  });

  it('finds a key revoked where no signal reaches (another instance, no Redis) within the recheck period', async () => {
    t = await service({ 'http.streams.recheckMs': 300 });
    const desk = await setUpCaseDesk(t);
    const key = (await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/api-keys`)).body;
    const stream = open('/v1/events', key.apiKey);
    expect(await stream.opened).toBe(200);
    await t.db.query('update api_keys set revoked_at = now() where id = $1', [key.id]);
    await stream.waitFor((events) => events.some((e) => e.data?.error?.code === 'credential_revoked'), 3_000, 'credential_revoked');
    await eventually(async () => stream.ended, 'the server to close the stream', 3_000);
  });

  it('holds at most HANDOVER_STREAMS_PER_CREDENTIAL streams per key, and counts a closed one back', async () => {
    t = await service({ 'http.streams.maxPerCredential': 3 });
    // No console of its own, so the desk session's bound below is counted from zero.
    const desk = await setUpCaseDesk(t, { console: false });
    const held = [open('/v1/events', desk.apiKey), open('/v1/events', desk.apiKey), open('/v1/events', desk.apiKey)];
    for (const s of held) expect(await s.opened).toBe(200);
    const refused = await t.api('GET', '/v1/events', { token: desk.apiKey });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('too_many_streams');
    expect(refused.headers.get('retry-after')).toBeTruthy();
    // Another key of the same tenant has a bound of its own.
    const second = (await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/api-keys`, { scope: 'read' })).body;
    expect(await open('/v1/events', second.apiKey).opened).toBe(200);
    // A desk session is bounded the same way.
    for (let i = 0; i < 3; i++) expect(await open('/v1/desk/events', desk.agentToken).opened).toBe(200);
    expect((await t.api('GET', '/v1/desk/events', { token: desk.agentToken })).body.error.code).toBe('too_many_streams');

    held[0]!.close();
    const again = await eventually(
      async () => {
        const s = open('/v1/events', desk.apiKey);
        if ((await s.opened) === 200) return s;
        s.close();
        return undefined;
      },
      'a stream to open once one is closed',
      5_000,
    );
    expect(again.ended).toBe(false);
  });

  it('answers a HEAD of either stream at once (405, GET only), without holding a stream or counting an agent at the desk', async () => {
    t = await service({ 'http.streams.maxPerCredential': 3 });
    const desk = await setUpCaseDesk(t, { console: false });
    for (let i = 0; i < 5; i++) {
      for (const [path, token] of [
        ['/v1/events', desk.apiKey],
        ['/v1/desk/events', desk.agentToken],
      ] as const) {
        const head = await fetch(`${t.url}${path}`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
        // The path answers GET only.
        expect(head.status).toBe(405);
        expect(head.headers.get('allow')).toBe('GET');
      }
    }
    expect((await t.api('GET', '/v1/availability?queue=support', { token: desk.apiKey })).body.agentsOnline).toBe(0);
    expect(await open('/v1/events', desk.apiKey).opened).toBe(200);
    expect(await open('/v1/desk/events', desk.agentToken).opened).toBe(200);
  });

  it('ends a desk stream at logout, and only the stream of the session that logged out', async () => {
    t = await service({ 'http.streams.recheckMs': 60_000 });
    const desk = await setUpCaseDesk(t);
    const otherSession = await t.api('POST', '/v1/desk/login', { body: { email: desk.agentEmail, password: 'correct horse battery' } });
    expect(otherSession.status).toBe(200);
    const leaving = open('/v1/desk/events', desk.agentToken);
    const staying = open('/v1/desk/events', otherSession.body.token);
    await leaving.waitFor((events) => events.some((e) => e.event === 'ready'), 5_000, 'ready');
    await staying.waitFor((events) => events.some((e) => e.event === 'ready'), 5_000, 'ready');

    const started = Date.now();
    expect((await t.api('POST', '/v1/desk/logout', { token: desk.agentToken })).status).toBe(204);
    await leaving.waitFor((events) => events.some((e) => e.event === 'session.ended'), 5_000, 'session.ended');
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(leaving.events.at(-1)).toEqual({
      event: 'session.ended',
      data: { agentId: desk.agentId, error: { code: 'session_ended', message: expect.any(String) } },
    });
    await eventually(async () => leaving.ended, 'the server to close the stream', 5_000);

    // The other console neither ends nor hears of it.
    await new Promise((r) => setTimeout(r, 300));
    expect(staying.ended).toBe(false);
    expect(staying.events.map((e) => e.event)).not.toContain('session.ended');
  });

  it('ends a desk stream whose session ended where no signal reaches, within the recheck period', async () => {
    t = await service({ 'http.streams.recheckMs': 300 });
    const desk = await setUpCaseDesk(t);
    const stream = open('/v1/desk/events', desk.agentToken);
    await stream.waitFor((events) => events.some((e) => e.event === 'ready'), 5_000, 'ready');
    await t.db.query('delete from agent_sessions where agent_id = $1', [desk.agentId]);
    await stream.waitFor((events) => events.some((e) => e.event === 'session.ended'), 3_000, 'session.ended');
    await eventually(async () => stream.ended, 'the server to close the stream', 3_000);
  });
});

/** Across instances: the revocation and logout signals travel over Redis, so another instance acts at once. */
describe('event streams end with their credential on every instance (pg, Redis)', () => {
  let db: TestDb | undefined;
  let redis: PrivateRedis | undefined;
  const instances: TestService[] = [];
  const streams: SseClient[] = [];
  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    for (const t of instances.splice(0)) await t.close();
    await db?.dropAndClose();
    await redis?.close();
  });

  it('a key revoked and a session signed out on one instance end the streams of another at once, and its cached key check', async () => {
    redis = await startPrivateRedis();
    db = await createTestDb('pg');
    // Long recheck and key cache: only the signal can make the other instance act within the test.
    const settings = {
      'redis.url': redis.url,
      'redis.prefix': `test-${randomBytes(4).toString('hex')}:`,
      'http.streams.recheckMs': 60_000,
      'http.apiKeyCacheMs': 600_000,
    };
    const a = await startTestService('pg', settings, { db });
    instances.push(a);
    const b = await startTestService('pg', settings, { db });
    instances.push(b);
    const connected = async (t: TestService) =>
      parsePromText((await t.api('GET', '/metrics')).body as string).find((x) => x.name === 'handover_bus_connected')?.value === 1;
    await eventually(async () => (await connected(a)) && (await connected(b)), 'both instances to reach Redis', 10_000);

    const desk = await setUpDesk(a);
    const key = (await a.admin('POST', `/v1/admin/tenants/${desk.tenantId}/api-keys`, { scope: 'read' })).body;
    expect((await b.api('GET', '/v1/availability?queue=support', { token: key.apiKey })).status).toBe(200); // cached on B now
    const botStream = openSseClient(`${b.url}/v1/events`, { authorization: `Bearer ${key.apiKey}` });
    const deskStream = openSseClient(`${b.url}/v1/desk/events`, { authorization: `Bearer ${desk.agentToken}` });
    streams.push(botStream, deskStream);
    expect(await botStream.opened).toBe(200);
    await deskStream.waitFor((events) => events.some((e) => e.event === 'ready'), 5_000, 'ready');

    expect((await a.admin('DELETE', `/v1/admin/tenants/${desk.tenantId}/api-keys/${key.id}`)).status).toBe(204);
    await botStream.waitFor((events) => events.some((e) => e.data?.error?.code === 'credential_revoked'), 3_000, 'credential_revoked on B');
    expect((await b.api('GET', '/v1/availability?queue=support', { token: key.apiKey })).status).toBe(401);

    expect((await a.api('POST', '/v1/desk/logout', { token: desk.agentToken })).status).toBe(204);
    await deskStream.waitFor((events) => events.some((e) => e.data?.error?.code === 'session_ended'), 3_000, 'session_ended on B');
  });
});
