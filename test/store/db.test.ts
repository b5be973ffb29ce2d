import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { AppError } from '../../src/resilience/errors.js';
import { runWithDeadline } from '../../src/resilience/deadline.js';
import { namedStatement, type Db } from '../../src/store/db.js';
import { migrate, pendingMigrations } from '../../src/store/migrate.js';
import { openDb } from '../../src/store/open-db.js';
import { createPgDb, translatePgError, type PgDbOptions } from '../../src/store/pg-db.js';
import { databaseAnswers, databaseReady } from '../../src/service/start-steps.js';
import { judgeComponents } from '../../src/monitoring/status-model.js';
import { clonePgliteDb } from '../../src/store/pglite-db.js';
import { createTestDb, dbKinds, openTestPgDb, testDatabaseUrl, type TestDb } from '../support/test-db.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

async function migrationDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'handover-migrations-'));
  for (const [name, sql] of Object.entries(files)) await writeFile(join(dir, name), sql);
  return dir;
}

/** A transaction that holds its connection until `release()`; resolves `entered` once it does. */
function holdTransaction(db: Db): { entered: Promise<void>; release: () => void; done: Promise<void> } {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let entered!: () => void;
  const enteredPromise = new Promise<void>((resolve) => (entered = resolve));
  const done = db.transaction(async (tx) => {
    await tx.query('select 1');
    entered();
    await released;
  });
  return { entered: enteredPromise, release, done };
}

const outboxInsert = `insert into outbox (tenant_id, lane, seq, handover_id, target, kind, payload, max_attempts)
  values ('ten_1', $1, $2, 'ho_1', 'bot', 'event', '{}'::jsonb, 3) returning id`;

describe.each(dbKinds)('store port on %s', (kind) => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb(kind);
  });
  afterAll(async () => {
    await db?.dropAndClose();
  });

  it('says which adapter runs and answers ping', async () => {
    expect(db.kind).toBe(kind === 'pg' ? 'postgres' : 'pglite');
    await db.ping();
  });

  it('runs queries with parameters', async () => {
    const result = await db.query<{ sum: number; t: string; n: null }>('select $1::int + $2::int as sum, $3::text as t, $4::text as n', [2, 3, 'x', null]);
    expect(result.rows).toEqual([{ sum: 5, t: 'x', n: null }]);
    expect(result.rowCount).toBe(1);
  });

  it('reports affected rows for writes and row counts for selects', async () => {
    await db.query("insert into settings (key, value) values ('rc1', '1'), ('rc2', '2')");
    const update = await db.query("update settings set value = '3' where key in ('rc1', 'rc2')");
    expect(update.rowCount).toBe(2);
    const select = await db.query("select * from settings where key in ('rc1', 'rc2')");
    expect(select.rowCount).toBe(2);
  });

  it('round-trips jsonb as parsed values', async () => {
    const value = { nested: { list: [1, 'two', null, { three: 3 }] }, flag: true, text: 'ünïcødé "quoted"' };
    await db.query('insert into settings (key, value) values ($1, $2::jsonb)', ['json', JSON.stringify(value)]);
    const result = await db.query<{ value: unknown }>('select value from settings where key = $1', ['json']);
    expect(result.rows[0]?.value).toEqual(value);
  });

  it('returns int8, bigserial, count and sum(bigint) as numbers', async () => {
    const first = await db.query<{ id: number }>(outboxInsert, ['lane-a', 1]);
    const second = await db.query<{ id: number }>(outboxInsert, ['lane-a', 2]);
    expect(typeof first.rows[0]?.id).toBe('number');
    expect(second.rows[0]!.id).toBeGreaterThan(first.rows[0]!.id);
    const stats = await db.query<{ n: number; total: number; big: number }>(
      "select count(*) as n, sum(seq) as total, 9007199254740991::int8 as big from outbox where lane = 'lane-a'",
    );
    expect(stats.rows[0]).toEqual({ n: 2, total: 3, big: Number.MAX_SAFE_INTEGER });
  });

  it('returns timestamptz as Date', async () => {
    const result = await db.query<{ now: Date; at: Date }>("select now() as now, '2024-03-01T12:00:00Z'::timestamptz as at");
    expect(result.rows[0]?.now).toBeInstanceOf(Date);
    expect(result.rows[0]?.at.toISOString()).toBe('2024-03-01T12:00:00.000Z');
  });

  it('runs several statements in a query without parameters and returns the last result', async () => {
    const result = await db.query<{ b: number }>('select 1 as a; select 2 as b');
    expect(result.rows).toEqual([{ b: 2 }]);
  });

  it('commits a transaction and returns its value', async () => {
    const value = await db.transaction(async (tx) => {
      await tx.query("insert into settings (key, value) values ('committed', '1')");
      return 'done';
    });
    expect(value).toBe('done');
    const result = await db.query("select 1 from settings where key = 'committed'");
    expect(result.rowCount).toBe(1);
  });

  it('rolls back a transaction whose callback throws and rethrows the same error', async () => {
    const boom = new Error('boom');
    const err = await rejection(
      db.transaction(async (tx) => {
        await tx.query("insert into settings (key, value) values ('rolled-back', '1')");
        throw boom;
      }),
    );
    expect(err).toBe(boom);
    const result = await db.query("select 1 from settings where key = 'rolled-back'");
    expect(result.rowCount).toBe(0);
  });

  it('keeps the driver error of a unique violation (code, constraint), inside and outside transactions', async () => {
    await db.query("insert into settings (key, value) values ('unique', '1')");
    const err = await rejection(db.query("insert into settings (key, value) values ('unique', '2')"));
    expect(err).not.toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: '23505', constraint: 'settings_pkey' });
    const inTx = await rejection(db.transaction((tx) => tx.query("insert into settings (key, value) values ('unique', '3')")));
    expect(inTx).toMatchObject({ code: '23505', constraint: 'settings_pkey' });
  });

  it('refuses to commit a transaction whose failed statement was caught', async () => {
    const err = await rejection(
      db.transaction(async (tx) => {
        await tx.query("insert into settings (key, value) values ('swallowed', '1')");
        await tx.query("insert into settings (key, value) values ('unique', '4')").catch(() => undefined);
      }),
    );
    expect(err.message).toMatch(/roll/i);
    expect((await db.query("select 1 from settings where key = 'swallowed'")).rowCount).toBe(0);
  });

  it('refuses a tx used after its transaction ended', async () => {
    let leaked: { query: Db['query'] } | undefined;
    await db.transaction(async (tx) => {
      leaked = tx;
    });
    await expect(leaked!.query('select 1')).rejects.toThrow(/closed|ended/);
  });

  it('starts no work for a request whose deadline has passed', async () => {
    await db.query("delete from settings where key = 'too-late'");
    const late = await rejection(runWithDeadline(0, () => db.query("insert into settings (key, value) values ('too-late', '1')")));
    expect(late).toMatchObject({ code: 'deadline_exceeded', status: 503 });
    expect(late.message).toContain('0 ms deadline before a database query');
    let ran = false;
    const lateTx = await rejection(
      runWithDeadline(0, () =>
        db.transaction(async (q) => {
          ran = true;
          await q.query("insert into settings (key, value) values ('too-late', '1')");
        }),
      ),
    );
    expect(lateTx).toMatchObject({ code: 'deadline_exceeded' });
    expect(ran).toBe(false);
    expect((await db.query("select 1 from settings where key = 'too-late'")).rowCount).toBe(0);
    // Within its deadline, work runs as usual.
    expect((await runWithDeadline(5000, () => db.query<{ n: number }>('select 1 as n'))).rows).toEqual([{ n: 1 }]);
  });

  it('keeps a query from outside out of a running transaction, without deadlock', async () => {
    const order: string[] = [];
    let inserted!: () => void;
    const insertedPromise = new Promise<void>((resolve) => (inserted = resolve));
    const tx = db
      .transaction(async (q) => {
        await q.query("insert into settings (key, value) values ('uncommitted', '1')");
        inserted();
        await sleep(200);
        order.push('transaction ends');
        throw new Error('roll it back');
      })
      .catch(() => order.push('transaction rolled back'));
    await insertedPromise;
    const outside = Promise.all([
      db.query<{ n: number }>("select count(*) as n from settings where key = 'uncommitted'"),
      db.query("insert into settings (key, value) values ('outside', '1')"),
    ]).then(([seen]) => {
      order.push('outside done');
      return seen.rows[0]?.n;
    });
    const [, seen] = await Promise.all([tx, outside]);
    // Had it run inside the transaction, it would have seen the row, and its insert would be gone.
    expect(seen).toBe(0);
    expect((await db.query("select 1 from settings where key = 'outside'")).rowCount).toBe(1);
    expect((await db.query("select 1 from settings where key = 'uncommitted'")).rowCount).toBe(0);
    // PGlite has one connection: the outside work waited for the transaction to end.
    if (kind === 'pglite') expect(order).toEqual(['transaction ends', 'transaction rolled back', 'outside done']);
  });

  it('has its migrations applied, and a second migrate applies nothing', async () => {
    expect(await pendingMigrations(db)).toEqual([]);
    const second = await migrate(db);
    expect(second.applied).toEqual([]);
    const recorded = await db.query<{ version: number; name: string; applied_at: Date }>('select * from schema_migrations order by version');
    expect(recorded.rows[0]).toMatchObject({ version: 1, name: '001-init' });
    expect(recorded.rows[0]?.applied_at).toBeInstanceOf(Date);
  });

  it('applies migrations in numeric order, each once, and reports pending ones', async () => {
    // Lexical order would run 100 before 99 and fail: the table would not exist yet.
    const dir = await migrationDir({
      '99-make-table.sql': 'create table ordered_test (id int primary key);\ncreate index ordered_test_id on ordered_test (id);',
      '100-fill-table.sql': 'insert into ordered_test values (1), (2);',
      'README.md': 'not a migration',
    });
    try {
      expect(await pendingMigrations(db, { dir })).toEqual(['99-make-table', '100-fill-table']);
      const logs: string[] = [];
      const first = await migrate(db, { dir, log: (m) => logs.push(m) });
      expect(first.applied).toEqual(['99-make-table', '100-fill-table']);
      expect(logs.some((l) => l.startsWith('applied migration 99-make-table'))).toBe(true);
      expect((await migrate(db, { dir })).applied).toEqual([]);
      expect(await pendingMigrations(db, { dir })).toEqual([]);
      expect((await db.query<{ n: number }>('select count(*) as n from ordered_test')).rows[0]?.n).toBe(2);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('rolls a failing migration back completely and names it', async () => {
    const dir = await migrationDir({ '120-broken.sql': 'create table broken_test (id int);\nselect no_such_function();' });
    try {
      const err = await rejection(migrate(db, { dir }));
      expect(err.message).toMatch(/^migration 120-broken failed: .*no_such_function/);
      expect((await db.query("select to_regclass('broken_test') is null as gone")).rows[0]).toEqual({ gone: true });
      expect(await pendingMigrations(db, { dir })).toEqual(['120-broken']);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('refuses two migrations with one version', async () => {
    const dir = await migrationDir({ '200-a.sql': 'select 1;', '200-b.sql': 'select 1;' });
    try {
      await expect(migrate(db, { dir })).rejects.toThrow(/share version 200/);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});

describe('pg adapter bounds', () => {
  const base: PgDbOptions = { url: testDatabaseUrl(), poolSize: 2, poolTimeoutMs: 2000, statementTimeoutMs: 5000, idleInTransactionTimeoutMs: 10_000 };

  it('reports a pool checkout timeout as database_pool_exhausted with the true figures', async () => {
    const db = createPgDb({ ...base, poolSize: 1, poolTimeoutMs: 200 });
    try {
      const held = holdTransaction(db);
      await held.entered;
      const started = performance.now();
      const err = await rejection(db.query('select 1'));
      expect(performance.now() - started).toBeGreaterThanOrEqual(190);
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ code: 'database_pool_exhausted', status: 503 });
      expect(err.message).toBe('waited 200 ms for a free database connection; pool size 1, 0 waiting');
      expect((err.cause as Error).message).toBe('timeout exceeded when trying to connect');
      expect(db.poolStats()).toEqual({ total: 1, idle: 0, waiting: 0 });
      held.release();
      await held.done;
      // The pool recovers once the client is back.
      await db.ping();
      expect(db.poolStats()).toEqual({ total: 1, idle: 1, waiting: 0 });
    } finally {
      await db.close();
    }
  });

  it('keeps an instance whose pool is busy ready: the status check says the database is busy, not unreachable', async () => {
    const db = createPgDb({ ...base, poolSize: 1, poolTimeoutMs: 200 });
    try {
      const held = holdTransaction(db);
      await held.entered;
      expect(await databaseReady(db)).toEqual({ ok: true });
      const answered = await databaseAnswers(db);
      expect(answered).toMatchObject({ ok: false, code: 'database_pool_exhausted' });
      const [component] = judgeComponents(
        {
          windowSeconds: 60,
          api: { requests: 0, serverErrors: 0, rejections: 0, rejectionsByCause: {}, p50Ms: 0, p95Ms: 0, p99Ms: 0, seconds: 60 },
          desk: { requests: 0, serverErrors: 0, rejections: 0, rejectionsByCause: {}, p50Ms: 0, p95Ms: 0, p99Ms: 0, seconds: 60 },
          admission: { inflight: 0, limit: 32, waiting: 0 },
          eventLoopDelayMs: 1,
          eventLoopUtilization: 0.1,
          heap: { usedBytes: 1, limitBytes: 2 },
          dbWaiting: 1,
          backlog: [],
          connectors: [],
          database: answered,
        },
        { latencyTargetMs: 250, eventLoopDelayLimitMs: 200, heapUsedLimitRatio: 0.92, backlogAgeTargetSeconds: 60 },
      ).filter((c) => c.id === 'database');
      expect(component).toMatchObject({ state: 'degraded' });
      expect(component!.cause).toMatch(/^Database busy \(database_pool_exhausted\): waited 200 ms for a free database connection/);
      held.release();
      await held.done;
    } finally {
      await db.close();
    }
  });

  // A connection opened again costs a server process, its caches and every prepared statement; the
  // first burst after a quiet spell paid that for every connection at once (createPgDb).
  it("keeps idle connections past pg-pool's own 10 s default", async () => {
    // The pool's idle timers on a clock the test moves; sockets and queries stay real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const db = createPgDb(base);
    try {
      await Promise.all([db.query('select pg_sleep(0.05)'), db.query('select pg_sleep(0.05)')]);
      expect(db.poolStats()).toEqual({ total: 2, idle: 2, waiting: 0 });
      vi.advanceTimersByTime(60_000);
      expect(db.poolStats()).toEqual({ total: 2, idle: 2, waiting: 0 });
    } finally {
      vi.useRealTimers();
      await db.close();
    }
  });

  it('closes a connection once it is HANDOVER_DB_MAX_LIFETIME_MS old: idle at once, in use when given back', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const config = loadConfig({ DATABASE_URL: testDatabaseUrl(), HANDOVER_ADMIN_TOKEN: 'a'.repeat(40), HANDOVER_DB_MAX_LIFETIME_MS: '60000' });
    const db = await openDb({ ...config.database, poolSize: 2 });
    try {
      expect(db.connection).toMatchObject({ maxLifetimeMs: 60_000 });
      const held = holdTransaction(db);
      await held.entered;
      await db.ping();
      expect(db.poolStats()).toEqual({ total: 2, idle: 1, waiting: 0 });
      vi.advanceTimersByTime(60_000);
      await new Promise((resolve) => setImmediate(resolve));
      // The idle one is gone; the one in a transaction stays until it is given back.
      expect(db.poolStats()).toEqual({ total: 1, idle: 0, waiting: 0 });
      held.release();
      await held.done;
      expect(db.poolStats()).toEqual({ total: 0, idle: 0, waiting: 0 });
      await db.ping();
    } finally {
      vi.useRealTimers();
      await db.close();
    }
  });

  it('closes idle connections after HANDOVER_DB_IDLE_TIMEOUT_MS when set, and hands the setting to the delivery thread', async () => {
    const config = loadConfig({ DATABASE_URL: testDatabaseUrl(), HANDOVER_ADMIN_TOKEN: 'a'.repeat(40), HANDOVER_DB_IDLE_TIMEOUT_MS: '100' });
    const db = await openDb({ ...config.database, poolSize: 2 });
    try {
      await Promise.all([db.query('select pg_sleep(0.05)'), db.query('select pg_sleep(0.05)')]);
      expect(db.poolStats().total).toBe(2);
      const until = performance.now() + 5000;
      while (db.poolStats().total > 0 && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(db.poolStats()).toEqual({ total: 0, idle: 0, waiting: 0 });
      await db.ping();
      // The delivery thread opens its pool from this.
      expect(db.connection).toMatchObject({ idleTimeoutMs: 100 });
    } finally {
      await db.close();
    }
  });

  it('waits for a pool connection no longer than the request has left', async () => {
    const db = createPgDb({ ...base, poolSize: 1, poolTimeoutMs: 20_000 });
    try {
      const held = holdTransaction(db);
      await held.entered;
      const err = await rejection(runWithDeadline(150, () => db.transaction((q) => q.query('select 1'))));
      expect(err).toMatchObject({ code: 'deadline_exceeded' });
      expect(err.message).toMatch(/deadline passed while it waited \d+ ms for a free database connection \(pool 1 in use or idle, 1 waiting\)/);
      held.release();
      await held.done;
      // The connection that arrived after the caller gave up went back to the pool.
      await db.ping();
      expect(db.poolStats()).toEqual({ total: 1, idle: 1, waiting: 0 });
    } finally {
      await db.close();
    }
  });

  it('gives a transaction only the time its request has left, and names the deadline when it runs out', async () => {
    const db = createPgDb({ ...base, statementTimeoutMs: 60_000 });
    try {
      const err = await rejection(runWithDeadline(300, () => db.transaction((q) => q.query('select pg_sleep(30)'))));
      expect(err).toMatchObject({ code: 'deadline_exceeded' });
      expect(err.message).toContain("The request's deadline cut a database statement short");
      expect((err.cause as { code?: string }).code).toBe('57014');
      // The session's own statement timeout is untouched by the transaction-local one.
      expect((await db.query<{ statement_timeout: string }>('show statement_timeout')).rows[0]!.statement_timeout).toBe('1min');
    } finally {
      await db.close();
    }
  });

  it('reports a refused connection as database_unavailable with the cause', async () => {
    const db = createPgDb({ ...base, url: 'postgres://postgres@127.0.0.1:1/test' });
    try {
      const err = await rejection(db.query('select 1'));
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ code: 'database_unavailable', status: 503 });
      expect(err.message).toContain('ECONNREFUSED');
      await expect(db.ping()).rejects.toMatchObject({ code: 'database_unavailable' });
      await expect(db.transaction(async () => 1)).rejects.toMatchObject({ code: 'database_unavailable' });
    } finally {
      await db.close();
    }
  });

  it('reports a statement timeout as database_timeout, in and out of transactions', async () => {
    const db = createPgDb({ ...base, statementTimeoutMs: 200 });
    try {
      const started = performance.now();
      const err = await rejection(db.query('select pg_sleep(2)'));
      expect(performance.now() - started).toBeLessThan(1500);
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ code: 'database_timeout' });
      expect(err.message).toContain('statement timeout');
      await expect(db.transaction((tx) => tx.query('select pg_sleep(2)'))).rejects.toMatchObject({ code: 'database_timeout' });
      await db.ping();
    } finally {
      await db.close();
    }
  });

  it('ends a transaction left idle and reports database_timeout without crashing', async () => {
    const db = createPgDb({ ...base, idleInTransactionTimeoutMs: 200 });
    try {
      const err = await rejection(
        db.transaction(async (tx) => {
          await tx.query('select 1');
          await sleep(700);
          await tx.query('select 1');
        }),
      );
      expect(err).toMatchObject({ code: 'database_timeout' });
      expect(err.message).toContain('idle-in-transaction');
      await db.ping();
    } finally {
      await db.close();
    }
  });

  it('drops a connection whose server does not answer within the read timeout', async () => {
    // statement_timeout switched off in the session stands for a server that stopped answering.
    const db = createPgDb({ ...base, poolSize: 1, statementTimeoutMs: 200 });
    try {
      const started = performance.now();
      const err = await rejection(
        db.transaction(async (tx) => {
          await tx.query('set local statement_timeout = 0');
          await tx.query('select pg_sleep(4)');
        }),
      );
      const elapsed = performance.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(1100);
      expect(elapsed).toBeLessThan(3500);
      expect(err).toMatchObject({ code: 'database_timeout' });
      expect(err.message).toContain('did not answer');
      await db.ping();
    } finally {
      await db.close();
    }
  });

  it('puts every query of a searchPath Db into that schema', async () => {
    const db = await createTestDb('pg');
    try {
      const result = await db.query<{ schema: string }>('select current_schema() as schema');
      expect(result.rows[0]?.schema).toBe(db.schema);
      const other = openTestPgDb(db.schema!);
      try {
        const viaTx = await other.transaction((tx) => tx.query<{ schema: string }>('select current_schema() as schema'));
        expect(viaTx.rows[0]?.schema).toBe(db.schema);
      } finally {
        await other.close();
      }
    } finally {
      await db.dropAndClose();
    }
    const check = createPgDb(base);
    const left = await check.query('select 1 from pg_namespace where nspname = $1', [db.schema]);
    await check.close();
    expect(left.rowCount).toBe(0);
  });

  it('applies each migration once when several instances migrate one schema at once', async () => {
    const db = await createTestDb('pg', { migrate: false });
    const dir = await migrationDir({
      '001-one.sql': 'create table one (id int);\nselect pg_sleep(0.2);',
      '002-two.sql': 'create table two (id int);',
      '003-three.sql': 'create table three (id int);\nselect pg_sleep(0.1);',
    });
    const instances = [db, openTestPgDb(db.schema!), openTestPgDb(db.schema!), openTestPgDb(db.schema!)];
    try {
      const results = await Promise.all(instances.map((instance) => migrate(instance, { dir })));
      expect(results.flatMap((r) => r.applied).sort()).toEqual(['001-one', '002-two', '003-three']);
      const recorded = await db.query<{ version: number }>('select version from schema_migrations order by version');
      expect(recorded.rows.map((r) => r.version)).toEqual([1, 2, 3]);
      // The real migrations too, on a second schema.
      const fresh = await createTestDb('pg', { migrate: false });
      const twin = openTestPgDb(fresh.schema!);
      try {
        const all = await pendingMigrations(fresh);
        expect(all.length).toBeGreaterThan(0);
        const real = await Promise.all([migrate(fresh), migrate(twin)]);
        expect(real.flatMap((r) => r.applied).sort()).toEqual(all);
        expect(await pendingMigrations(twin)).toEqual([]);
      } finally {
        await twin.close();
        await fresh.dropAndClose();
      }
    } finally {
      for (const instance of instances.slice(1)) await instance.close();
      await db.dropAndClose();
      await rm(dir, { recursive: true });
    }
  });

  it('translates an empty-message connect error using its parts', () => {
    const err = new AggregateError([new Error('connect ECONNREFUSED ::1:5432'), new Error('connect ECONNREFUSED 127.0.0.1:5432')], '');
    Object.assign(err, { code: 'ECONNREFUSED' });
    const translated = translatePgError(err);
    expect(translated).toBeInstanceOf(AppError);
    expect((translated as AppError).message).toContain('connect ECONNREFUSED 127.0.0.1:5432');
    const unique = Object.assign(new Error('duplicate key'), { code: '23505' });
    expect(translatePgError(unique)).toBe(unique);
  });
});

describe('named statements', () => {
  const base: PgDbOptions = { url: testDatabaseUrl(), poolSize: 1, poolTimeoutMs: 2000, statementTimeoutMs: 5000, idleInTransactionTimeoutMs: 10_000 };
  const statement = namedStatement('test-named-sum', 'select $1::int + $2::int as sum');
  const prepared = async (db: Db) =>
    (await db.query<{ name: string }>("select name from pg_prepared_statements where name = 'test-named-sum'")).rows.map((r) => r.name);

  it('are prepared once per PostgreSQL connection and run again by name, inside transactions too', async () => {
    const db = createPgDb(base);
    try {
      expect((await db.query<{ sum: number }>(statement, [1, 2])).rows[0]!.sum).toBe(3);
      // One connection in the pool: the statement the next query sees is the one just prepared.
      expect(await prepared(db)).toEqual(['test-named-sum']);
      expect((await db.query<{ sum: number }>(statement, [2, 3])).rows[0]!.sum).toBe(5);
      expect(await db.transaction(async (tx) => (await tx.query<{ sum: number }>(statement, [4, 5])).rows[0]!.sum)).toBe(9);
    } finally {
      await db.close();
    }
  });

  it('answer with the new row type after a migration changed it under the prepared statement', async () => {
    const schema = `named_${Math.random().toString(36).slice(2, 10)}`;
    const db = createPgDb({ ...base, searchPath: schema });
    try {
      await db.query(`create schema ${schema}`);
      await db.query(`create table ${schema}.t (a int)`);
      await db.query(`insert into ${schema}.t values (1)`);
      const all = namedStatement('test-named-row-type', 'select * from t where a = $1::int');
      expect((await db.query(all, [1])).rows).toEqual([{ a: 1 }]);
      // Another instance migrates: the prepared plan would now answer another row type (0A000).
      await db.query(`alter table ${schema}.t add column b text default 'x'`);
      expect((await db.query(all, [1])).rows).toEqual([{ a: 1, b: 'x' }]);
      expect((await db.query(all, [1])).rows).toEqual([{ a: 1, b: 'x' }]);
    } finally {
      await db.query(`drop schema if exists ${schema} cascade`).catch(() => {});
      await db.close();
    }
  });

  it('are parsed on every call when preparing is switched off (a pooler that cannot keep them)', async () => {
    const db = createPgDb({ ...base, preparedStatements: false });
    try {
      expect((await db.query<{ sum: number }>(statement, [1, 2])).rows[0]!.sum).toBe(3);
      expect(await prepared(db)).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it('are prepared once on the embedded store too, and answer as a plain statement would', async () => {
    const db = await createTestDb('pglite', { migrate: false });
    try {
      expect((await db.query<{ sum: number }>(statement, [1, 2])).rows[0]!.sum).toBe(3);
      expect(await prepared(db)).toEqual(['test-named-sum']);
      expect((await db.query<{ sum: number }>(statement, [null, 2])).rows[0]!.sum).toBeNull();
      const typed = namedStatement('test-named-types', 'select $1::text[] as list, $2::jsonb as doc, $3::timestamptz as at, $4::bigint as big');
      const at = new Date('2026-01-02T03:04:05.678Z');
      const row = (
        await db.query<{ list: string[]; doc: unknown; at: Date; big: number }>(typed, [['a', 'b,c', null], JSON.stringify({ x: [1] }), at, 2 ** 40])
      ).rows[0]!;
      expect(row).toEqual({ list: ['a', 'b,c', null], doc: { x: [1] }, at, big: 2 ** 40 });
      // A failing one fails with the database's own error and leaves the connection usable.
      const failing = namedStatement('test-named-fails', 'select 1 / $1::int as q');
      expect(await rejection(db.query(failing, [0]))).toMatchObject({ code: '22012' });
      expect((await db.query<{ q: number }>(failing, [1])).rows[0]!.q).toBe(1);
      expect(await db.transaction(async (tx) => (await tx.query<{ sum: number }>(statement, [4, 5])).rows[0]!.sum)).toBe(9);
    } finally {
      await db.dropAndClose();
    }
  });

  it('stand for one text each: a name reused for another statement is refused where it is declared', () => {
    expect(namedStatement('test-named-sum', 'select $1::int + $2::int as sum')).toEqual(statement);
    expect(() => namedStatement('test-named-sum', 'select 1')).toThrow(/already used for another text/);
  });
});

describe('pglite adapter', () => {
  it('bounds the wait for its single connection and reports it as database_pool_exhausted', async () => {
    const db = await createTestDb('pglite', { waitTimeoutMs: 200 });
    try {
      const held = holdTransaction(db);
      await held.entered;
      const waiting = db.query('select 1');
      await sleep(20);
      expect(db.poolStats()).toEqual({ total: 1, idle: 0, waiting: 1 });
      const err = await rejection(waiting);
      expect(err).toMatchObject({ code: 'database_pool_exhausted' });
      expect(err.message).toBe('waited 200 ms for the embedded database; pool size 1, 0 waiting');
      held.release();
      await held.done;
      expect(db.poolStats()).toEqual({ total: 1, idle: 1, waiting: 0 });
      await db.ping();
    } finally {
      await db.dropAndClose();
    }
  });

  it('reports db.query inside db.transaction as a bug instead of waiting forever', async () => {
    const db = await createTestDb('pglite', { waitTimeoutMs: 200 });
    try {
      const err = await rejection(db.transaction(() => db.query('select 1')));
      expect(err.message).toMatch(/inside db.transaction.*use the tx argument/);
      // A query started inside but not awaited simply runs after the commit.
      let late: Promise<unknown> | undefined;
      await db.transaction(async (tx) => {
        await tx.query("insert into settings (key, value) values ('late', '1')");
        late = db.query("select 1 from settings where key = 'late'");
      });
      expect(await late).toMatchObject({ rowCount: 1 });
    } finally {
      await db.dropAndClose();
    }
  });

  it('clones into an independent copy', async () => {
    const source = await createTestDb('pglite');
    try {
      await source.query("insert into settings (key, value) values ('before-clone', '1')");
      const copy = await clonePgliteDb(source);
      try {
        await copy.query("insert into settings (key, value) values ('only-in-copy', '1')");
        expect((await copy.query("select 1 from settings where key = 'before-clone'")).rowCount).toBe(1);
        expect((await source.query("select 1 from settings where key = 'only-in-copy'")).rowCount).toBe(0);
        expect(await pendingMigrations(copy)).toEqual([]);
      } finally {
        await copy.close();
      }
    } finally {
      await source.dropAndClose();
    }
  });
});

describe('openDb', () => {
  it('opens PostgreSQL when a URL is set', async () => {
    const db = await openDb({
      url: testDatabaseUrl(),
      dataDir: '/nonexistent',
      poolSize: 2,
      poolTimeoutMs: 1000,
      statementTimeoutMs: 1000,
      idleInTransactionTimeoutMs: 1000,
    });
    try {
      expect(db.kind).toBe('postgres');
      await db.ping();
    } finally {
      await db.close();
    }
  });

  it('opens PGlite in the data directory, creating it, and keeps data across restarts', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'handover-data-'));
    const dataDir = join(parent, 'nested', 'data');
    const options = { url: '', dataDir, poolSize: 2, poolTimeoutMs: 1000, statementTimeoutMs: 1000, idleInTransactionTimeoutMs: 1000 };
    try {
      const first = await openDb(options);
      expect(first.kind).toBe('pglite');
      await migrate(first);
      await first.query("insert into settings (key, value) values ('persisted', '1')");
      await first.close();
      const second = await openDb(options);
      try {
        expect((await second.query("select 1 from settings where key = 'persisted'")).rowCount).toBe(1);
        expect((await migrate(second)).applied).toEqual([]);
      } finally {
        await second.close();
      }
    } finally {
      await rm(parent, { recursive: true });
    }
  });
});
