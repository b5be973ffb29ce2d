import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../support/test-db.js';
import { startStoreMaintenance } from '../../src/store/embedded-maintenance.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { captureLogs } from '../support/log-capture.js';
import { eventually, startTestService } from '../support/test-service.js';

/**
 * The embedded store has no autovacuum: what a message leaves behind (its delivered outbox item, its
 * lane's old row version) stays in the files unless the service vacuums them itself.
 */
describe('embedded store maintenance', () => {
  let db: TestDb | undefined;
  afterEach(async () => {
    await db?.dropAndClose();
    db = undefined;
  });

  /** What the hot path does to the outbox and the lanes per message: an item written, then deleted once delivered. */
  async function relay(d: TestDb, rounds: number): Promise<void> {
    for (let r = 0; r < rounds; r++) {
      await d.query(
        `insert into outbox (tenant_id, lane, seq, handover_id, target, kind, payload, max_attempts)
         select 't', 'ho_' || g || ':agent', ${r}, 'ho_' || g, 'agent', 'message.created', jsonb_build_object('text', repeat('x', 200)), 5
         from generate_series(1, 100) g`,
      );
      await d.query(`update outbox_lanes set pending = pending + 1 where lane like 'ho_%'`);
      await d.query(`delete from outbox where seq = ${r}`);
      await d.query(`update outbox_lanes set pending = pending - 1 where lane like 'ho_%'`);
    }
  }

  const outboxPages = async (d: TestDb) =>
    (await d.query<{ pages: number }>(`select (pg_relation_size('outbox') / current_setting('block_size')::int)::int as pages`)).rows[0]!.pages;

  it('vacuums and analyses the tables a message churns, so their space is used again', async () => {
    db = await createTestDb('pglite');
    await db.query(
      `insert into outbox_lanes (lane, tenant_id, target, last_seq, pending) select 'ho_' || g || ':agent', 't', 'agent', 0, 0 from generate_series(1, 100) g`,
    );
    const maintenance = startStoreMaintenance(db, 0, createLogger('error'));
    try {
      await relay(db, 40);
      const grown = await outboxPages(db);
      await db.query('select pg_stat_force_next_flush()');
      const dead = await db.query<{ n: number }>(`select n_dead_tup::int as n from pg_stat_user_tables where relname = 'outbox'`);
      expect(dead.rows[0]!.n).toBeGreaterThan(3000);

      const run = await maintenance.run();
      expect(run.vacuumed).toEqual(expect.arrayContaining(['outbox', 'outbox_lanes']));
      expect(run.analysed).toEqual(expect.arrayContaining(['outbox', 'outbox_lanes']));
      const after = await db.query<{ dead: number; analysed: boolean }>(
        `select n_dead_tup::int as dead, last_analyze is not null as analysed from pg_stat_user_tables where relname = 'outbox'`,
      );
      expect(after.rows[0]).toEqual({ dead: 0, analysed: true });

      // As many messages again: the space of the first ones is used again, the file does not grow.
      await relay(db, 40);
      await maintenance.run();
      expect(await outboxPages(db)).toBeLessThanOrEqual(grown);
      // Tables with nothing to clear are left alone.
      expect(await maintenance.run()).toMatchObject({ vacuumed: [], analysed: [] });
    } finally {
      await maintenance.stop();
    }
  });

  it('freezes the whole database once it is old', async () => {
    db = await createTestDb('pglite');
    await relay(db, 5);
    const age = async () =>
      (await db!.query<{ age: number }>('select age(datfrozenxid)::int as age from pg_database where datname = current_database()')).rows[0]!.age;
    const before = await age();
    // A threshold below the database's age, as 150 million transactions would be in a long life.
    const maintenance = startStoreMaintenance(db, 0, createLogger('error'), { freezeAge: before - 1 });
    try {
      expect(await maintenance.run()).toMatchObject({ frozen: true });
      expect(await age()).toBeLessThan(before);
    } finally {
      await maintenance.stop();
    }
  });

  it('makes a checkpoint once enough log was written since the last, or long enough ago', async () => {
    db = await createTestDb('pglite');
    const redo = async () => (await db!.query<{ lsn: string }>('select (pg_control_checkpoint()).redo_lsn::text as lsn')).rows[0]!.lsn;
    const maintenance = startStoreMaintenance(db, 0, createLogger('error'), { checkpointBytes: 1024 * 1024 });
    try {
      await maintenance.run();
      const first = await redo();
      // Nothing written since: no checkpoint.
      expect((await maintenance.run()).checkpointed).toBeUndefined();
      expect(await redo()).toBe(first);
      await relay(db, 20);
      expect((await maintenance.run()).checkpointed).toBe(true);
      // As long ago as a server's checkpoint_timeout, with a megabyte of log written since: another.
      const later = startStoreMaintenance(db, 0, createLogger('error'), { checkpointMs: 0 });
      await relay(db, 20);
      expect((await later.run()).checkpointed).toBe(true);
      await later.stop();
      const moved = await db.query<{ moved: boolean }>(`select (pg_control_checkpoint()).redo_lsn > $1::pg_lsn as moved`, [first]);
      expect(moved.rows[0]!.moved).toBe(true);
    } finally {
      await maintenance.stop();
    }
  });

  it('without it the outbox only grows', async () => {
    db = await createTestDb('pglite');
    await relay(db, 20);
    const first = await outboxPages(db);
    await relay(db, 20);
    expect(await outboxPages(db)).toBeGreaterThan(first * 1.5);
  });

  it('runs in a service on the embedded store, at its interval', async () => {
    const t = await startTestService('pglite', { 'database.embeddedVacuumIntervalMs': 50 });
    try {
      await relay(t.db, 20);
      await eventually(async () => {
        const { rows } = await t.db.query<{ vacuumed: boolean }>(
          `select last_vacuum is not null as vacuumed from pg_stat_user_tables where relname = 'outbox'`,
        );
        return rows[0]?.vacuumed;
      }, 'the outbox vacuumed by the service');
    } finally {
      await t.close();
    }
  });

  it('on PostgreSQL leaves it to the server’s autovacuum', async () => {
    db = await createTestDb('pg');
    const logs = captureLogs();
    const maintenance = startStoreMaintenance(db, 10, createLogger('debug', logs.stream));
    try {
      await relay(db, 5);
      expect(await maintenance.run()).toEqual({ vacuumed: [], analysed: [], ms: 0 });
      expect(logs.lines()).toEqual([]);
    } finally {
      await maintenance.stop();
    }
  });
});
