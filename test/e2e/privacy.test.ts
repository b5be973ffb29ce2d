import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { openSseClient } from '../support/sse-client.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { captureLogs } from '../support/log-capture.js';
import { createTestDb } from '../support/test-db.js';
import { eventually, setUpDesk, startTestService, TEST_SECRET_KEY, type TestService } from '../support/test-service.js';
import { dumpSchema } from '../support/dump-schema.js';

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

describe("one end user's data: export and erasure (pg)", () => {
  let t: TestService | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('exports everything of a user, erases it all once no handover is live, and leaves others alone', async () => {
    t = await startTestService('pg');
    const desk = await setUpDesk(t);
    const other = await setUpDesk(t);
    const bot = { token: desk.apiKey };
    const start = async (conversationId: string, userId: string) => {
      const res = await t!.api('POST', '/v1/handovers', {
        ...bot,
        body: {
          conversationId,
          queue: 'support',
          user: { id: userId, email: `${userId}@example.com` },
          transcript: [{ role: 'user', text: `transcript of ${userId}` }],
        },
      });
      expect(res.status).toBe(201);
      expect((await t!.api('POST', `/v1/desk/handovers/${res.body.id}/accept`, { token: desk.agentToken })).status).toBe(200);
      return res.body.id as string;
    };
    const first = await start('conv-1', 'u-1');
    expect((await t.api('POST', `/v1/handovers/${first}/messages`, { ...bot, body: { id: 'm1', text: 'my account number is 12345' } })).status).toBe(202);
    expect((await t.api('POST', `/v1/desk/handovers/${first}/messages`, { token: desk.agentToken, body: { text: 'thanks, looking' } })).status).toBe(202);
    expect((await t.api('POST', `/v1/handovers/${first}/end`, { ...bot, body: { reason: 'user_ended' } })).status).toBe(200);
    const second = await start('conv-2', 'u-1');
    const bystander = await start('conv-3', 'u-2');
    expect((await t.api('POST', `/v1/handovers/${bystander}/messages`, { ...bot, body: { id: 'b1', text: 'not mine to erase' } })).status).toBe(202);

    const exported = await t.api('GET', '/v1/users/u-1/export', bot);
    expect(exported.status).toBe(200);
    expect(exported.body.handovers.map((h: { id: string }) => h.id)).toEqual([first, second]);
    expect(exported.body.handovers[0].messages.map((m: { text: string }) => m.text)).toEqual(['my account number is 12345', 'thanks, looking']);
    expect(exported.body.handovers[0].events.map((e: { type: string }) => e.type)).toContain('handover.ended');
    expect(exported.body.handovers[0].transcript).toEqual([{ role: 'user', text: 'transcript of u-1' }]);
    // Another tenant's key sees nothing of it and erases nothing.
    expect((await t.api('GET', '/v1/users/u-1/export', { token: other.apiKey })).body.handovers).toEqual([]);
    expect((await t.api('DELETE', '/v1/users/u-1', { token: other.apiKey })).body.erased).toEqual({ handovers: 0, messages: 0, events: 0 });

    // A live handover first has to end.
    const refused = await t.api('DELETE', '/v1/users/u-1', bot);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('user_has_live_handover');
    expect((await t.api('POST', `/v1/handovers/${second}/end`, { ...bot, body: {} })).status).toBe(200);
    const erased = await t.api('DELETE', '/v1/users/u-1', bot);
    expect(erased.status).toBe(200);
    expect(erased.body.erased).toMatchObject({ handovers: 2, messages: 2 });
    expect(erased.body.erased.events).toBeGreaterThan(2);

    // Nothing of the user is left anywhere in the database; the bystander is untouched.
    expect((await t.api('GET', '/v1/users/u-1/export', bot)).body.handovers).toEqual([]);
    expect((await t.api('GET', `/v1/handovers/${first}`, bot)).status).toBe(404);
    const dump = await dumpSchema(t.db);
    for (const trace of [first, second, 'u-1@example.com', 'my account number is 12345', 'transcript of u-1', 'thanks, looking'])
      expect(dump).not.toContain(trace);
    expect(dump).toContain('not mine to erase');
    expect((await t.api('GET', '/v1/users/u-2/export', bot)).body.handovers).toHaveLength(1);
    // The audit log says a user was erased, by a keyed digest: not who, and not a plain hash anyone
    // could compute from a guess.
    const audit = await t.admin('GET', `/v1/admin/audit-log?tenantId=${desk.tenantId}&limit=5`);
    const entry = audit.body.entries.find((e: { action: string; details: { handovers?: number } }) => e.action === 'user.erased' && e.details.handovers === 2);
    expect(entry.details).toMatchObject({ keyId: TEST_SECRET_KEY.id, userIdHmac: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(entry.details.userIdHmac).not.toBe(sha256(`${desk.tenantId}:u-1`));
    expect(JSON.stringify(audit.body)).not.toContain('u-1');
    expect(JSON.stringify(audit.body)).not.toContain(sha256(`${desk.tenantId}:u-1`));

    // "Was this user erased?": the admin API recomputes the digest and finds the erasure; a user that
    // was not erased finds nothing. The same id in another tenant is another user: there it finds only
    // that tenant's own (empty) erasure from above, under a different digest.
    const found = await t.admin('GET', `/v1/admin/audit-log?tenantId=${desk.tenantId}&erasedUserId=u-1`);
    expect(found.status).toBe(200);
    expect(found.body.entries).toEqual([entry]);
    expect((await t.admin('GET', `/v1/admin/audit-log?tenantId=${desk.tenantId}&erasedUserId=u-2`)).body.entries).toEqual([]);
    const elsewhere = (await t.admin('GET', `/v1/admin/audit-log?tenantId=${other.tenantId}&erasedUserId=u-1`)).body.entries;
    expect(elsewhere.map((e: { details: { handovers: number } }) => e.details.handovers)).toEqual([0]);
    expect(elsewhere[0].details.userIdHmac).not.toBe(entry.details.userIdHmac);
    const noTenant = await t.admin('GET', '/v1/admin/audit-log?erasedUserId=u-1');
    expect(noTenant.status).toBe(400);
    expect(noTenant.body.error.code).toBe('invalid_request');
  });

  it("resumes the event stream from an event erased with its user's data, instead of refusing the bot's stored position", async () => {
    t = await startTestService('pg');
    const desk = await setUpDesk(t);
    const bot = { token: desk.apiKey };
    const created = await t.api('POST', '/v1/handovers', { ...bot, body: { conversationId: 'c-gone', queue: 'support', user: { id: 'u-gone' } } });
    expect(created.status).toBe(201);
    expect((await t.api('POST', `/v1/handovers/${created.body.id}/end`, { ...bot, body: { reason: 'user_ended' } })).status).toBe(200);
    const events = (await t.api('GET', `/v1/handovers/${created.body.id}/events`, bot)).body.events as Array<{ id: string; type: string }>;
    const last = events.at(-1)!;
    expect(last.type).toBe('handover.ended');
    expect((await t.api('DELETE', '/v1/users/u-gone', bot)).status).toBe(200);
    // The bot comes back with the last event it processed, which is gone: the stream resumes.
    const stream = openSseClient(`${t.url}/v1/events`, { authorization: `Bearer ${desk.apiKey}`, 'last-event-id': last.id });
    try {
      expect(await stream.opened).toBe(200);
      const next = await t.api('POST', '/v1/handovers', { ...bot, body: { conversationId: 'c-next', queue: 'support', user: { id: 'u-next' } } });
      await stream.waitFor((received) => received.some((e) => e.data?.handoverId === next.body.id), 5_000, 'the next handover on the resumed stream');
    } finally {
      stream.close();
    }
    // An id that is no event of ours is still refused.
    const refused = await t.api('GET', '/v1/events', { ...bot, headers: { 'last-event-id': 'evt_nope' } });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('invalid_cursor');
  });

  it('finds erasures recorded under an older key after a rotation, and those recorded as a plain hash before keyed digests', async () => {
    const logs = captureLogs();
    const db = await createTestDb('pg');
    const user = 'erased.person@example.com';
    try {
      t = await startTestService('pg', { logLevel: 'debug' }, { db, log: createLogger('debug', logs.stream) });
      const desk = await setUpDesk(t);
      const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c-old-key', queue: 'support', user: { id: user } } });
      expect((await t.api('POST', `/v1/handovers/${created.body.id}/end`, { token: desk.apiKey, body: {} })).status).toBe(200);
      expect((await t.api('DELETE', `/v1/users/${encodeURIComponent(user)}`, { token: desk.apiKey })).status).toBe(200);
      // An erasure recorded by an earlier version, as sha256(tenant:user).
      await db.query(`insert into audit_log (actor, action, tenant_id, outcome, details) values ('bot-api-key', 'user.erased', $1, 200, $2::jsonb)`, [
        desk.tenantId,
        JSON.stringify({ userIdSha256: sha256(`${desk.tenantId}:${user}`), handovers: 1, messages: 0, events: 1 }),
      ]);
      await t.close();

      // A new key becomes current; the old one stays listed (as a rotation leaves it until re-encryption is done).
      const newKey = { id: 'test-2', key: Buffer.alloc(32, 9).toString('base64') };
      t = await startTestService(
        'pg',
        { logLevel: 'debug', 'secrets.keys': [newKey, TEST_SECRET_KEY], 'secrets.currentKeyId': newKey.id },
        { db, log: createLogger('debug', logs.stream) },
      );
      const found = await t.admin('GET', `/v1/admin/audit-log?tenantId=${desk.tenantId}&erasedUserId=${encodeURIComponent(user)}`);
      expect(found.body.entries.map((e: { details: Record<string, unknown> }) => e.details.keyId ?? 'sha256')).toEqual(['sha256', TEST_SECRET_KEY.id]);

      // A new erasure is recorded under the new key.
      const again = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c-new-key', queue: 'support', user: { id: user } } });
      expect((await t.api('POST', `/v1/handovers/${again.body.id}/end`, { token: desk.apiKey, body: {} })).status).toBe(200);
      expect((await t.api('DELETE', `/v1/users/${encodeURIComponent(user)}`, { token: desk.apiKey })).status).toBe(200);
      const all = await t.admin('GET', `/v1/admin/audit-log?tenantId=${desk.tenantId}&erasedUserId=${encodeURIComponent(user)}`);
      expect(all.body.entries.map((e: { details: Record<string, unknown> }) => e.details.keyId ?? 'sha256')).toEqual([newKey.id, 'sha256', TEST_SECRET_KEY.id]);
      expect(all.body.uncheckedKeyIds).toBeUndefined();
      await t.close();

      // The old key removed (rotation finished): erasures under it can no longer be found, and the
      // lookup says so instead of answering as if there were none.
      t = await startTestService(
        'pg',
        { logLevel: 'debug', 'secrets.keys': [newKey], 'secrets.currentKeyId': newKey.id },
        { db, log: createLogger('debug', logs.stream) },
      );
      const later = await t.admin('GET', `/v1/admin/audit-log?tenantId=${desk.tenantId}&erasedUserId=${encodeURIComponent(user)}`);
      expect(later.body.entries.map((e: { details: Record<string, unknown> }) => e.details.keyId ?? 'sha256')).toEqual([newKey.id, 'sha256']);
      expect(later.body.uncheckedKeyIds).toEqual([TEST_SECRET_KEY.id]);
      expect((await t.admin('GET', `/v1/admin/audit-log?tenantId=&erasedUserId=x`)).status).toBe(400);
      await t.close();
      t = undefined;
      // The requests that named the user (erasure, lookup) left no trace of the id in the logs.
      expect(logs.lines().some((l) => l.msg === 'request' && l.url === '/v1/users/:userId')).toBe(true);
      expect(logs.text()).not.toContain(user);
      expect(logs.text()).not.toContain(encodeURIComponent(user));
    } finally {
      await t?.close();
      t = undefined;
      await db.dropAndClose();
    }
  });

  it("deletes conversations past the tenant's retention period, and only those", async () => {
    t = await startTestService('pg', { 'desk.retentionIntervalMs': 1000 });
    const desk = await setUpDesk(t);
    const keeper = await setUpDesk(t);
    const patched = await t.admin('PATCH', `/v1/admin/tenants/${desk.tenantId}`, { retentionDays: 1 });
    expect(patched.body.retentionDays).toBe(1);
    expect((await t.admin('PATCH', `/v1/admin/tenants/${desk.tenantId}`, { retentionDays: 0 })).status).toBe(400);
    const ended = async (d: typeof desk, conversationId: string, daysAgo: number) => {
      const created = await t!.api('POST', '/v1/handovers', {
        token: d.apiKey,
        body: { conversationId, queue: 'support', user: { id: `user-${conversationId}` } },
      });
      expect(
        (await t!.api('POST', `/v1/handovers/${created.body.id}/messages`, { token: d.apiKey, body: { id: 'm', text: `said in ${conversationId}` } })).status,
      ).toBe(202);
      expect((await t!.api('POST', `/v1/handovers/${created.body.id}/end`, { token: d.apiKey, body: {} })).status).toBe(200);
      await t!.db.query(`update handovers set ended_at = now() - $2 * interval '1 day' where id = $1`, [created.body.id, daysAgo]);
      return created.body.id as string;
    };
    const old = await ended(desk, 'old', 2);
    const recent = await ended(desk, 'recent', 0);
    const live = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'live', queue: 'support', user: { id: 'live-user' } } });
    const othersOld = await ended(keeper, 'kept', 30);
    // A desk session gone idle: the same job removes it (the live ones stay).
    await t.db.query(`update agent_sessions set idle_expires_at = now() - interval '1 minute' where agent_id = $1`, [keeper.agentId]);

    await eventually(
      async () => (await t!.api('GET', `/v1/handovers/${old}`, { token: desk.apiKey })).status === 404,
      'the old conversation to be deleted',
      15_000,
    );
    const { rows } = await t.db.query<{ n: number }>('select count(*)::int as n from messages where handover_id = $1', [old]);
    expect(rows[0]!.n).toBe(0);
    expect((await t.api('GET', `/v1/handovers/${recent}`, { token: desk.apiKey })).status).toBe(200);
    expect((await t.api('GET', `/v1/handovers/${live.body.id}`, { token: desk.apiKey })).status).toBe(200);
    // A tenant without a retention period keeps everything.
    expect((await t.api('GET', `/v1/handovers/${othersOld}`, { token: keeper.apiKey })).status).toBe(200);
    const audit = await t.admin('GET', `/v1/admin/audit-log?tenantId=${desk.tenantId}&limit=10`);
    expect(audit.body.entries.find((e: { action: string }) => e.action === 'retention.deleted')).toMatchObject({
      actor: 'system',
      details: { handovers: 1, retentionDays: 1 },
    });
    await eventually(
      async () => (await t!.db.query('select 1 from agent_sessions where agent_id = $1', [keeper.agentId])).rows.length === 0,
      'the idle session to be removed',
      15_000,
    );
    expect((await t.db.query<{ agent_id: string }>('select agent_id from agent_sessions')).rows.map((r) => r.agent_id)).toEqual([desk.agentId]);
  });
});
