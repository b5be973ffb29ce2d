import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import type { Deps } from '../../src/deps.js';
import { loadConfig } from '../../src/config/config.js';
import { SecretBox } from '../../src/config/secret-box.js';
import { Connectors } from '../../src/connectors/connector-store.js';
import { connectorDefinitions } from '../../src/connectors/registry.js';
import type { Queryable, Sql } from '../../src/store/db.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createApiKeyAuthenticator, createTenant, CREDENTIALS_CHANNEL } from '../../src/tenants/tenants.js';
import { createLocalBus } from '../../src/bus/local-bus.js';
import { RESYNC } from '../../src/bus/bus.js';
import { createTestDb, type TestDb } from '../support/test-db.js';
import { TEST_SECRET_KEY, testSettings } from '../support/test-service.js';

/**
 * The hot path's lookups on a cold cache (a new instance's first second, an entry expiring under load):
 * requests that miss together share one statement instead of each sending its own. The API key's
 * lookup updates the key's row, so there the requests' statements used to wait for each other's
 * commits on that row's lock.
 */
describe('lookups on a cold cache, asked by many requests at once', () => {
  let db: TestDb | undefined;
  afterEach(async () => {
    await db?.dropAndClose();
    db = undefined;
  });

  /** The real database, with each statement sent through it counted by its text. */
  function counted(inner: Queryable, matching: string) {
    const seen = { count: 0 };
    const q: Queryable = {
      query(sql: Sql, params?: readonly unknown[]) {
        if ((typeof sql === 'string' ? sql : sql.text).includes(matching)) seen.count++;
        return inner.query(sql, params);
      },
    };
    return { q, seen };
  }

  async function tenant(): Promise<{ id: string; apiKey: string }> {
    db = await createTestDb('pg');
    const config = loadConfig({}, testSettings);
    return createTenant({ db, config } as unknown as Deps, { name: 'Coldco' });
  }

  it('checks an API key once for all the requests that bring it before its check is cached', async () => {
    const { id, apiKey } = await tenant();
    const { q, seen } = counted(db!, 'update api_keys set last_used_at');
    const authenticate = createApiKeyAuthenticator(q);
    const identities = await Promise.all(Array.from({ length: 40 }, () => authenticate(apiKey)));
    expect(identities.every((i) => i.tenantId === id && i.scope === 'bot')).toBe(true);
    expect(seen.count).toBe(1);
    // And a made-up key, asked by many at once: one lookup, every request refused.
    const made = `${apiKey.slice(0, -4)}zzzz`;
    const refusals = await Promise.allSettled(Array.from({ length: 20 }, () => authenticate(made)));
    expect(refusals.map((r) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : 'accepted'))).toEqual(Array(20).fill('unauthorized'));
    expect(seen.count).toBe(2);
  });

  it('checks every key again once the bus says signals may have been lost (a revocation it missed applies then)', async () => {
    const { id, apiKey } = await tenant();
    const { q, seen } = counted(db!, 'update api_keys set last_used_at');
    const bus = createLocalBus();
    try {
      const authenticate = createApiKeyAuthenticator(q, { ttlMs: 60_000, maxEntries: 100 }, bus);
      expect((await authenticate(apiKey)).tenantId).toBe(id);
      expect((await authenticate(apiKey)).tenantId).toBe(id);
      expect(seen.count).toBe(1);
      // Revoked where no signal reached this instance (the bus was cut off), then the bus comes back.
      await db!.query('update api_keys set revoked_at = now() where tenant_id = $1', [id]);
      expect((await authenticate(apiKey)).tenantId).toBe(id);
      bus.publish(CREDENTIALS_CHANNEL, RESYNC);
      await new Promise((resolve) => setImmediate(resolve)); // handlers run on a later tick
      await expect(authenticate(apiKey)).rejects.toMatchObject({ code: 'unauthorized' });
      expect(seen.count).toBe(2);
    } finally {
      await bus.close();
    }
  });

  it('reads a connector once for all the deliveries that need it before its live instance exists', async () => {
    const { id: tenantId } = await tenant();
    const secrets = new SecretBox([TEST_SECRET_KEY]);
    const dispatcher = new Agent();
    const log = createLogger('silent');
    const policy = loadConfig({}, testSettings).outbound;
    try {
      const record = await new Connectors(db!, connectorDefinitions(dispatcher, policy), log, 2000, secrets).add({
        tenantId,
        type: 'webhook',
        name: 'hd',
        config: { url: 'http://127.0.0.1:9/hd', secret: 'whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=' },
      });
      const { q, seen } = counted(db!, 'select * from connectors where id');
      // A new instance's store: nothing live yet.
      const connectors = new Connectors(q, connectorDefinitions(dispatcher, policy), log, 2000, secrets);
      const got = await Promise.all(Array.from({ length: 40 }, () => connectors.get(record.id)));
      expect(seen.count).toBe(1);
      expect(new Set(got.map((g) => g.connector)).size).toBe(1);
      expect(got[0]!.record.id).toBe(record.id);

      // Forgotten while a read is under way (changed here): that read's waiters get it, but it is not
      // kept; the next use reads the row again.
      connectors.forget(record.id);
      const during = connectors.get(record.id);
      connectors.forget(record.id);
      await during;
      await connectors.get(record.id);
      expect(seen.count).toBe(3);
      await connectors.get(record.id);
      expect(seen.count).toBe(3);
    } finally {
      await dispatcher.close();
    }
  });
});
