import { afterEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/db.js';
import { createPgliteDb } from '../../src/store/pglite-db.js';
import { startStoreMaintenance } from '../../src/store/embedded-maintenance.js';
import { createLogger } from '../../src/telemetry/logger.js';

/**
 * The embedded database in its thread answers each statement within a bound; a statement past it is
 * answered with an error while the thread still runs it, and what is sent next waits behind it there.
 */
describe('embedded store in its thread: statements past the bound of their answer', () => {
  let db: Db | undefined;
  afterEach(async () => {
    await db?.close();
    db = undefined;
  });

  it('answers the store’s upkeep within a bound of its own, not the statement timeout', async () => {
    db = await createPgliteDb({ thread: { replyTimeoutMs: 300 } });
    // A statement as long as a first vacuum can be: past the statement's bound, within the upkeep's.
    await expect(db.query('select pg_sleep(1)')).rejects.toMatchObject({ code: 'database_timeout' });
    await db.upkeep!('select pg_sleep(1)', 10_000);
    await db.upkeep!('vacuum', 10_000);
  });

  it('a maintenance pass held up by a long statement does not hold up the service’s stop past its grace', async () => {
    db = await createPgliteDb({ thread: { replyTimeoutMs: 5000 } });
    const maintenance = startStoreMaintenance(db, 0, createLogger('error'));
    const long = db.query('select pg_sleep(1.5)');
    let passEnded = false;
    const pass = maintenance.run().finally(() => (passEnded = true));
    await maintenance.stop({ graceMs: 50 });
    // The stop came back within its grace, with the pass still waiting behind the long statement.
    expect(passEnded).toBe(false);
    await long;
    await pass;
  });

  it('leaves the session outside any transaction once the thread catches up', async () => {
    db = await createPgliteDb({ thread: { replyTimeoutMs: 300 } });
    await db.query('create table t (n int)');
    // Holds the thread for longer than the bound: the BEGIN sent behind it is not answered in time.
    const slow = db.query('select pg_sleep(0.8)').catch((err: Error) => err);
    await expect(db.transaction((tx) => tx.query('insert into t values (1)'))).rejects.toThrow();
    await slow;
    // The thread runs what it was sent in order: once a statement is answered in time, all sent before it ran.
    for (let tries = 0; ; tries++) {
      const answered = await db.query('select 1').then(
        () => true,
        () => false,
      );
      if (answered) break;
      expect(tries).toBeLessThan(20);
    }
    // A statement that refuses a transaction block runs.
    await db.query('vacuum t');
    // And a write on its own is committed by itself, not held in a transaction someone left open.
    await db.query('insert into t values (2)');
    const { rows } = await db.query<{ n: number }>('select n from t order by n');
    expect(rows).toEqual([{ n: 2 }]);
  });
});
