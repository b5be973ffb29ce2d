import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { SecretBox, isSealed, parseSecretKeys } from '../../src/config/secret-box.js';
import { createService } from '../../src/service.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { createTestDb, type TestDb } from '../support/test-db.js';
import { ADMIN_TOKEN, TEST_SECRET_KEY, eventually, startTestService, type TestService } from '../support/test-service.js';
import { dumpSchema } from '../support/dump-schema.js';

const HELPDESK_SECRET = 'whsec_' + Buffer.from('a-helpdesk-secret-nobody-may-read!!').toString('base64');
const NEW_KEY = { id: 'test-2', key: Buffer.alloc(32, 9).toString('base64') };

async function addWebhookConnector(t: TestService, helpdesk: GenericHelpdesk) {
  const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Initech' });
  const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
    type: 'webhook',
    name: 'desk',
    config: { url: helpdesk.url, secret: helpdesk.secret },
  });
  expect(connector.status).toBe(201);
  helpdesk.inboundUrl = connector.body.inboundUrl;
  const queue = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'hd', connectorId: connector.body.id });
  expect(queue.status).toBe(201);
  return { tenantId: tenant.body.id as string, apiKey: tenant.body.apiKey as string, connectorId: connector.body.id as string };
}

/** A handover reaches the helpdesk signed with the stored secret: the fake rejects anything else. */
async function handOver(t: TestService, helpdesk: GenericHelpdesk, apiKey: string, conversationId: string) {
  const created = await t.api('POST', '/v1/handovers', { token: apiKey, body: { conversationId, queue: 'hd', user: { id: 'u-1' } } });
  expect(created.status).toBe(201);
  await helpdesk.waitFor((r) => r.some((w) => w.body.conversationId === conversationId), 15_000, `handover ${conversationId} at the helpdesk`);
  expect(helpdesk.rejected).toEqual([]);
}

describe('secret box', () => {
  it('round-trips, binds a value to its connector and field, and refuses tampering and unknown keys', () => {
    const box = new SecretBox([TEST_SECRET_KEY]);
    const sealed = box.seal('s3cret', 'connector:c1:secret');
    expect(isSealed(sealed)).toBe(true);
    expect(JSON.stringify(sealed)).not.toContain('s3cret');
    expect(box.open(sealed, 'connector:c1:secret')).toBe('s3cret');
    expect(() => box.open(sealed, 'connector:c2:secret')).toThrow();
    expect(() => box.open({ ...sealed, ct: Buffer.from('x').toString('base64') }, 'connector:c1:secret')).toThrow();
    expect(() => new SecretBox([NEW_KEY]).open(sealed, 'connector:c1:secret')).toThrow(/test-1/);
    expect(parseSecretKeys(`a:${TEST_SECRET_KEY.key}, b:${NEW_KEY.key}`).map((k) => k.id)).toEqual(['a', 'b']);
    expect(() => parseSecretKeys('a:dG9vLXNob3J0')).toThrow(/32-byte/);
    expect(() => parseSecretKeys(`${TEST_SECRET_KEY.key}`)).toThrow(/keyId/);
  });

  it('the service refuses to start on PostgreSQL without a key, naming the setting', async () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test', HANDOVER_ADMIN_TOKEN: ADMIN_TOKEN });
    await expect(createService(config)).rejects.toThrow(ConfigError);
    await expect(createService(config)).rejects.toThrow(/HANDOVER_SECRET_KEYS/);
    expect(() => loadConfig({ HANDOVER_SECRET_KEYS: 'k:not-base64-32-bytes' })).toThrow(/HANDOVER_SECRET_KEYS/);
  });
});

describe('the embedded store generates its key (pglite)', () => {
  it('on first start, keeps it private in the data directory, and reads the same key on the next start', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'handover-keys-'));
    const db = await createTestDb('pglite');
    try {
      const config = () =>
        loadConfig({}, { port: 0, host: '127.0.0.1', adminToken: ADMIN_TOKEN, logLevel: 'silent', 'database.dataDir': dataDir, 'demo.enabled': false });
      const first = await createService(config(), { db });
      const tenant = await first.app.inject({
        method: 'POST',
        url: '/v1/admin/tenants',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        payload: { name: 'Local' },
      });
      const record = await first.connectors.add({
        tenantId: tenant.json().id,
        type: 'webhook',
        name: 'desk',
        config: { url: 'http://127.0.0.1:9/x', secret: HELPDESK_SECRET },
      });
      await first.stop();
      const file = await stat(join(dataDir, 'secret-keys'));
      expect(file.mode & 0o777).toBe(0o600);

      const second = await createService(config(), { db });
      await expect(second.connectors.get(record.id)).resolves.toMatchObject({ record: { name: 'desk' } });
      const { rows } = await db.query<{ config: string }>('select config::text as config from connectors');
      expect(rows[0]!.config).not.toContain(HELPDESK_SECRET.slice(6));
      await second.stop();
    } finally {
      await db.dropAndClose();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('connector credentials at rest (pg)', () => {
  let t: TestService | undefined;
  let helpdesk: GenericHelpdesk | undefined;
  let db: TestDb | undefined;
  afterEach(async () => {
    await t?.close();
    await helpdesk?.close();
    await db?.dropAndClose();
    t = helpdesk = db = undefined;
  });

  it('stores secrets encrypted, never returns or logs them, and still uses them', async () => {
    db = await createTestDb('pg');
    let logged = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logged += chunk.toString();
        done();
      },
    });
    const config = loadConfig(
      {},
      { port: 0, host: '127.0.0.1', adminToken: ADMIN_TOKEN, logLevel: 'trace', 'secrets.keys': [TEST_SECRET_KEY], 'delivery.pollIntervalMs': 50 },
    );
    const service = await createService(config, { db, log: createLogger('trace', sink) });
    const address = await service.listen();
    service.deps.config.publicUrl = address;
    t = { service, db, url: address, adminToken: ADMIN_TOKEN, api: undefined as never, admin: undefined as never, close: () => service.stop() };
    const base = await startTestService('pg', {}, { db }); // a second instance on the same schema drives the API
    try {
      helpdesk = await startGenericHelpdesk(HELPDESK_SECRET);
      const setup = await addWebhookConnector(base, helpdesk);
      const listed = await base.admin('GET', `/v1/admin/tenants/${setup.tenantId}/connectors`);
      expect(listed.status).toBe(200);
      expect(JSON.stringify(listed.body)).not.toContain(helpdesk.secret);
      await handOver(base, helpdesk, setup.apiKey, 'c-secret');

      // The instance with the capturing logger decrypts and uses the secret too.
      helpdesk.inboundUrl = `${address}/v1/connectors/${setup.connectorId}/events`;
      const created = await base.api('POST', '/v1/handovers', { token: setup.apiKey, body: { conversationId: 'c-2', queue: 'hd', user: { id: 'u-2' } } });
      const joined = await helpdesk.send({ type: 'agent.joined', handoverId: created.body.id, data: { agent: { id: 'a1' } } });
      expect(joined.status).toBe(200);
      await eventually(
        async () => (await base.db.query<{ state: string }>('select state from handovers where id = $1', [created.body.id])).rows[0]?.state === 'active',
        'the agent joined',
      );
      expect(logged).toContain(setup.connectorId);

      const dump = await dumpSchema(db);
      expect(dump).toContain('"$enc":"v1"');
      expect(dump).not.toContain(helpdesk.secret);
      expect(dump).not.toContain(helpdesk.secret.slice(6));
      expect(logged).not.toContain(helpdesk.secret.slice(6));
      expect(logged).not.toContain(TEST_SECRET_KEY.key);
    } finally {
      await base.service.stop();
    }
  });

  it('encrypts rows stored in clear by earlier versions, and re-encrypts under a new current key, at start', async () => {
    t = await startTestService('pg');
    helpdesk = await startGenericHelpdesk(HELPDESK_SECRET);
    const setup = await addWebhookConnector(t, helpdesk);
    // As an earlier version wrote it: the secret in clear.
    await t.db.query('update connectors set config = $2::jsonb where id = $1', [
      setup.connectorId,
      JSON.stringify({ url: helpdesk.url, secret: helpdesk.secret }),
    ]);
    await t.service.stop();

    const restarted = await startTestService('pg', {}, { db: t.db });
    t = {
      ...restarted,
      close: async () => {
        await restarted.service.stop();
        await restarted.db.dropAndClose();
      },
    };
    const stored = async () =>
      (await t!.db.query<{ config: { secret: unknown } }>('select config from connectors where id = $1', [setup.connectorId])).rows[0]!.config.secret;
    await expect(stored()).resolves.toMatchObject({ $enc: 'v1', kid: TEST_SECRET_KEY.id });
    await handOver(t, helpdesk, setup.apiKey, 'c-after-upgrade');
    await t.service.stop();

    // Rotation: the new key first, the old one still listed.
    const rotated = await startTestService('pg', { 'secrets.keys': [NEW_KEY, TEST_SECRET_KEY] }, { db: t.db });
    t = {
      ...rotated,
      close: async () => {
        await rotated.service.stop();
        await rotated.db.dropAndClose();
      },
    };
    await expect(stored()).resolves.toMatchObject({ $enc: 'v1', kid: NEW_KEY.id });
    await handOver(t, helpdesk, setup.apiKey, 'c-after-rotation');
    expect(await dumpSchema(t.db)).not.toContain(helpdesk.secret.slice(6));
    await t.service.stop();

    // The key that sealed them removed: the start stops, naming the missing key.
    const db = t.db;
    t = { ...t, close: () => db.dropAndClose() };
    await expect(startTestService('pg', { 'secrets.keys': [{ id: 'other', key: Buffer.alloc(32, 3).toString('base64') }] }, { db })).rejects.toThrow(
      /"test-2"/,
    );
  });

  it('handover keys rotate: re-encrypts what is still under an older key, conversation tokens included', async () => {
    t = await startTestService('pg', { 'secrets.keys': [NEW_KEY, TEST_SECRET_KEY] });
    helpdesk = await startGenericHelpdesk(HELPDESK_SECRET);
    const setup = await addWebhookConnector(t, helpdesk);
    const created = await t.api('POST', '/v1/handovers', { token: setup.apiKey, body: { conversationId: 'c-keys', queue: 'hd', user: { id: 'u' } } });
    expect(created.status).toBe(201);
    // A conversation token sealed under the older key (as a session opened before the rotation holds it).
    const old = new SecretBox([TEST_SECRET_KEY]);
    const sealed = JSON.stringify(old.seal('conversation-token-0123', `connector-session:${setup.connectorId}:${created.body.id}:credential`));
    await t.db.query(`insert into connector_sessions (handover_id, tenant_id, connector_id, external_id, credential) values ($1, $2, $3, 'ext-1', $4)`, [
      created.body.id,
      setup.tenantId,
      setup.connectorId,
      sealed,
    ]);

    const rotated = await t.admin('POST', '/v1/admin/keys/rotate');
    expect(rotated.status).toBe(200);
    expect(rotated.body).toEqual({ reencrypted: 1, keyId: NEW_KEY.id });
    const { rows } = await t.db.query<{ credential: string }>('select credential from connector_sessions where handover_id = $1', [created.body.id]);
    expect(JSON.parse(rows[0]!.credential)).toMatchObject({ $enc: 'v1', kid: NEW_KEY.id });
    // Still the same token once opened, under the new key only.
    expect(new SecretBox([NEW_KEY]).open(JSON.parse(rows[0]!.credential), `connector-session:${setup.connectorId}:${created.body.id}:credential`)).toBe(
      'conversation-token-0123',
    );
    // Nothing left to do the second time.
    expect((await t.admin('POST', '/v1/admin/keys/rotate')).body.reencrypted).toBe(0);
  });
});
