import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.js';
import { createService } from '../../src/service.js';
import { withSearchPath } from '../../src/store/pg-db.js';
import { createTestDb, testDatabaseUrl, type TestDb } from '../support/test-db.js';
import { startPrivateRedis, type PrivateRedis } from '../support/redis-server.js';
import { testSettings } from '../support/test-service.js';
import { activeResources, describeHandles, moreActiveThan, watchHandles } from '../support/open-handles.js';

/**
 * The service is built from parts that each leave their release on a stack (src/service/parts.ts).
 * Here a start fails at each part in turn, through the test-only `parts` hook, and nothing it had
 * opened may stay open: no PostgreSQL or Redis connection, no timer, no listening socket, no thread.
 */

/** Every part, in the order the service starts them; a new part must be added here, and is then tested. */
const PARTS = [
  'tracing',
  'store',
  'migrations',
  'planner-settings',
  'durability-settings',
  'admin-token',
  'secret-keys',
  'outbound',
  'attachments',
  'credentials',
  'bus',
  'desk-consoles',
  'load-signals',
  'metrics',
  'availability',
  'app',
  'background',
  'delivery-worker',
  'backlog-sampler',
  'store-maintenance',
  'status',
  'connector-checks',
  'answer-timer',
  'retention',
  'streams',
  'http',
] as const;

class InjectedFailure extends Error {
  constructor(part: string) {
    super(`injected failure at ${part}`);
  }
}

interface Leftovers {
  postgres: number;
  redis: string[];
  handles: string;
  active: string[];
}

describe('a service built from parts, on PostgreSQL with Redis and tracing', () => {
  let redis: PrivateRedis;
  let db: TestDb;
  let pgProbe: pg.Client;
  let redisProbe: Redis;
  let dataDir: string;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    // Migrated here: the service's own migration step then finds nothing to apply, as on a restart.
    db = await createTestDb('pg');
    pgProbe = new pg.Client({ connectionString: testDatabaseUrl() });
    await pgProbe.connect();
    redisProbe = new Redis(redis.url);
    dataDir = await mkdtemp(join(tmpdir(), 'handover-parts-'));
    // Once, unchecked: what a process does only once (loading the tracing SDK, the process' own metrics).
    const warmUp = await createService(configFor('warm-up'), { instanceId: 'warm-up' });
    await warmUp.listen();
    await warmUp.stop();
  });

  afterAll(async () => {
    await pgProbe?.end();
    redisProbe?.disconnect();
    await db?.dropAndClose();
    await redis?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** The service opens its own pool, on the test's schema, under a name of its own in pg_stat_activity. */
  function configFor(run: string): Config {
    const url = new URL(withSearchPath(testDatabaseUrl(), db.schema));
    url.searchParams.set('application_name', applicationName(run));
    return loadConfig(
      {},
      {
        ...testSettings,
        'database.url': url.href,
        'database.poolSize': 3,
        'database.dataDir': dataDir,
        'redis.url': redis.url,
        // Nothing listens there; no span is made before the service stops, so nothing is sent.
        'tracing.endpoint': 'http://127.0.0.1:9',
        'demo.enabled': false,
      },
    );
  }

  /** Starts (and listens) with a failure injected before `part`, or none. */
  async function start(run: string, failAt?: string): Promise<{ seen: string[]; stop: () => Promise<void> }> {
    const seen: string[] = [];
    const service = await createService(configFor(run), {
      instanceId: run,
      parts: {
        beforeStart(name) {
          seen.push(name);
          if (name === failAt) throw new InjectedFailure(name);
        },
      },
    });
    await service.listen();
    return { seen, stop: () => service.stop() };
  }

  async function leftovers(run: string, before: Map<string, number>, watch: ReturnType<typeof watchHandles>): Promise<Leftovers> {
    const deadline = Date.now() + 5000;
    const connections = async () => {
      const { rows } = await pgProbe.query<{ n: number }>('select count(*)::int as n from pg_stat_activity where application_name = $1', [
        applicationName(run),
      ]);
      const list = (await redisProbe.client('LIST')) as string;
      const redisClients = list.split('\n').filter((line) => line.includes(`name=handover-pub-${run} `) || line.includes(`name=handover-sub-${run} `));
      return { postgres: rows[0]!.n, redis: redisClients };
    };
    // Closing is asynchronous on the servers' side too: give them a moment to see the connections go.
    let open = await connections();
    while ((open.postgres > 0 || open.redis.length > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      open = await connections();
    }
    const handles = describeHandles(await watch.settled());
    watch.end();
    return { ...open, handles, active: moreActiveThan(before) };
  }

  it('starts every part in order, and stop() leaves nothing open', async () => {
    const run = `parts-${randomBytes(3).toString('hex')}`;
    const before = activeResources();
    const watch = watchHandles();
    const service = await start(run);
    expect(service.seen).toEqual(PARTS);
    await service.stop();
    expect(await leftovers(run, before, watch)).toEqual({ postgres: 0, redis: [], handles: '', active: [] });
  });

  it.each(PARTS)('a start that fails at %s leaves nothing open', async (part) => {
    const run = `parts-${randomBytes(3).toString('hex')}`;
    const before = activeResources();
    const watch = watchHandles();
    await expect(start(run, part)).rejects.toThrow(InjectedFailure);
    expect(await leftovers(run, before, watch)).toEqual({ postgres: 0, redis: [], handles: '', active: [] });
  });
});

/**
 * The embedded store runs PostgreSQL in a thread of its own, opened by the service itself here (the
 * other suites pass theirs in). Each open costs seconds, so only the first part that needs it to be
 * open and the last part are failed, besides a whole start and stop.
 */
describe('a service built from parts, on the embedded store', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'handover-parts-embedded-'));
    // Creates the store once, unchecked; the runs below open it as a restart would.
    const warmUp = await createService(config());
    await warmUp.stop();
  }, 120_000);

  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  function config(): Config {
    return loadConfig({}, { ...testSettings, 'database.dataDir': dataDir, 'demo.enabled': false });
  }

  async function startAndFailAt(failAt?: string): Promise<void> {
    const service = await createService(config(), {
      parts: {
        beforeStart(name) {
          if (name === failAt) throw new InjectedFailure(name);
        },
      },
    });
    await service.listen();
    if (!failAt) await service.stop();
  }

  it.each([
    ['a whole start and stop()', undefined],
    ['a start that fails at migrations, with the store open', 'migrations'],
    ['a start that fails at http, the last part', 'http'],
  ])('%s leaves no thread, timer or socket open', async (_, part) => {
    const before = activeResources();
    const watch = watchHandles();
    if (part) await expect(startAndFailAt(part)).rejects.toThrow(InjectedFailure);
    else await startAndFailAt();
    const handles = describeHandles(await watch.settled());
    watch.end();
    expect({ handles, active: moreActiveThan(before) }).toEqual({ handles: '', active: [] });
  });
});

function applicationName(run: string): string {
  return `handover-${run}`;
}
