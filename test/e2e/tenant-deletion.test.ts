import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbKinds, type DbKind } from '../support/test-db.js';
import { setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';
import { diskStoreSettings, files, upload } from '../support/attachment-files.js';

/**
 * Deleting a tenant (DELETE /v1/admin/tenants/{id}) on both stores: every row the tenant owned, in
 * every table that names a tenant (read from the schema, so a table added later is checked too), and
 * its files' bytes; its API key refused at once; another tenant untouched; the deletion audited.
 */
describe.each<DbKind>(dbKinds)('tenant deletion (%s)', (kind) => {
  let t: TestService;
  let dir: string;
  let doomed: DeskSetup;
  let kept: DeskSetup;

  async function fillTenant(desk: DeskSetup, label: string): Promise<void> {
    const live = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: `${label}-live`, queue: 'support', user: { id: 'u-1' } } });
    expect(live.status).toBe(201);
    expect((await t.api('POST', `/v1/desk/handovers/${live.body.id}/accept`, { token: desk.agentToken })).status).toBe(200);
    const photo = await upload(t, `/v1/handovers/${live.body.id}/attachments`, { token: desk.apiKey, bytes: files.png, type: 'image/png', name: 'p.png' });
    expect(photo.status).toBe(201);
    const sent = await t.api('POST', `/v1/handovers/${live.body.id}/messages`, {
      token: desk.apiKey,
      body: { text: 'hello', attachments: [{ id: photo.body.id }] },
    });
    expect(sent.status).toBe(202);
    // A file uploaded and never sent, and an ended conversation.
    expect((await upload(t, `/v1/handovers/${live.body.id}/attachments`, { token: desk.apiKey, bytes: files.pdf, type: 'application/pdf' })).status).toBe(201);
    const ended = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId: `${label}-ended`, queue: 'support', user: { id: 'u-2' } },
    });
    expect((await t.api('POST', `/v1/handovers/${ended.body.id}/end`, { token: desk.apiKey, body: {} })).status).toBe(200);
    expect((await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/api-keys`, { scope: 'read' })).status).toBe(201);
  }

  /** Rows naming the tenant, per table, for every table with a tenant_id column (the audit log aside). */
  async function rowsOf(tenantId: string): Promise<Record<string, number>> {
    const { rows: tables } = await t.db.query<{ table_name: string }>(
      `select c.table_name from information_schema.columns c join information_schema.tables tb on tb.table_name = c.table_name and tb.table_schema = c.table_schema
       where c.column_name = 'tenant_id' and c.table_schema = current_schema() and tb.table_type = 'BASE TABLE' and c.table_name <> 'audit_log'`,
    );
    const counts: Record<string, number> = {};
    for (const { table_name } of tables) {
      const { rows } = await t.db.query<{ n: number }>(`select count(*)::int as n from ${table_name} where tenant_id = $1`, [tenantId]);
      counts[table_name] = rows[0]!.n;
    }
    const { rows: tenants } = await t.db.query<{ n: number }>('select count(*)::int as n from tenants where id = $1', [tenantId]);
    counts.tenants = tenants[0]!.n;
    return counts;
  }

  const filesOf = async (tenantId: string) => readdir(join(dir, tenantId)).catch(() => [] as string[]);

  beforeAll(async () => {
    const settings = await diskStoreSettings();
    dir = settings['attachments.dir'] as string;
    t = await startTestService(kind, settings);
    doomed = await setUpDesk(t);
    kept = await setUpDesk(t);
    await fillTenant(doomed, 'doomed');
    await fillTenant(kept, 'kept');
  }, 60_000);

  afterAll(async () => {
    doomed?.console?.close();
    kept?.console?.close();
    await t?.close();
  }, 30_000);

  it('deletes every row and file the tenant owned, refuses its key at once, and leaves the other tenant whole', async () => {
    const before = await rowsOf(doomed.tenantId);
    // The fixture filled the tables that matter, so "all zero" after means something.
    for (const table of ['tenants', 'handovers', 'messages', 'events', 'attachments', 'api_keys', 'queues', 'agents']) expect(before[table]).toBeGreaterThan(0);
    expect(await filesOf(doomed.tenantId)).toHaveLength(2);
    const keptBefore = await rowsOf(kept.tenantId);

    const answer = await t.admin('DELETE', `/v1/admin/tenants/${doomed.tenantId}`);
    expect(answer.status).toBe(204);

    const after = await rowsOf(doomed.tenantId);
    expect(Object.entries(after).filter(([, n]) => n > 0)).toEqual([]);
    expect(await filesOf(doomed.tenantId)).toEqual([]);
    const { rows: lanes } = await t.db.query(`select lane from outbox_lanes where lane like any (select id || ':%' from handovers where tenant_id = $1)`, [
      doomed.tenantId,
    ]);
    expect(lanes).toEqual([]);

    const refused = await t.api('POST', '/v1/handovers', { token: doomed.apiKey, body: { conversationId: 'after', queue: 'support', user: { id: 'u-9' } } });
    expect(refused.status).toBe(401);
    // The tenant itself is gone: a change to it is refused as for any unknown tenant.
    const changed = await t.admin('PATCH', `/v1/admin/tenants/${doomed.tenantId}`, { name: 'back' });
    expect(changed.status).toBe(404);
    expect(changed.body.error.code).toBe('tenant_not_found');

    expect(await rowsOf(kept.tenantId)).toEqual(keptBefore);
    expect(await filesOf(kept.tenantId)).toHaveLength(2);
    expect(
      (await t.api('POST', '/v1/handovers', { token: kept.apiKey, body: { conversationId: 'kept-new', queue: 'support', user: { id: 'u-3' } } })).status,
    ).toBe(201);

    const audit = await t.admin('GET', `/v1/admin/audit-log?tenantId=${doomed.tenantId}`);
    const entry = audit.body.entries.find((e: { action: string }) => e.action === 'tenant.deleted');
    expect(entry).toMatchObject({ actor: 'admin', outcome: 204, details: { handovers: 2, files: 2 } });
  });

  it('answers 404 for a tenant that is not there, and deletes nothing', async () => {
    const answer = await t.admin('DELETE', '/v1/admin/tenants/ten_nothing');
    expect(answer.status).toBe(404);
    expect(answer.body.error.code).toBe('tenant_not_found');
  });
});
