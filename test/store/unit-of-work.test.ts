import { afterEach, describe, expect, it } from 'vitest';
import { inTransaction } from '../../src/store/unit-of-work.js';
import { createTestDb, type TestDb } from '../support/test-db.js';

/**
 * inTransaction runs again a transaction PostgreSQL rolled back as a deadlock victim, and runs its
 * after-commit effects once, for the try that committed. A real deadlock on PostgreSQL: two
 * transactions lock two rows in opposite orders; the one under test detects it first (a shorter
 * deadlock_timeout), so it is the one rolled back.
 */
describe('inTransaction (pg)', () => {
  let db: TestDb | undefined;
  afterEach(async () => {
    await db?.dropAndClose();
  });

  it('runs a deadlock victim again, and its effects once', async () => {
    db = await createTestDb('pg');
    await db.query('create table pair (id int primary key, v int not null)');
    await db.query('insert into pair values (1, 0), (2, 0)');
    let releaseOther!: () => void;
    const otherMayGoOn = new Promise<void>((resolve) => (releaseOther = resolve));
    let otherHolds!: () => void;
    const otherHoldsRowOne = new Promise<void>((resolve) => (otherHolds = resolve));
    // The other transaction: row 1, then (once told) row 2; it waits long before looking for deadlocks.
    const other = db.transaction(async (q) => {
      await q.query(`set local deadlock_timeout = '5s'`);
      await q.query('update pair set v = v + 1 where id = 1');
      otherHolds();
      await otherMayGoOn;
      await q.query('update pair set v = v + 1 where id = 2');
    });
    await otherHoldsRowOne;
    let tries = 0;
    let effects = 0;
    const result = await inTransaction(db, async (uow) => {
      tries++;
      await uow.q.query(`set local deadlock_timeout = '50ms'`);
      await uow.q.query('update pair set v = v + 10 where id = 2');
      if (tries === 1) releaseOther();
      await uow.q.query('update pair set v = v + 10 where id = 1');
      uow.afterCommit(() => effects++);
      return 'done';
    });
    await other;
    expect(result).toBe('done');
    expect(tries).toBe(2);
    expect(effects).toBe(1);
    const { rows } = await db.query<{ id: number; v: number }>('select id, v from pair order by id');
    expect(rows).toEqual([
      { id: 1, v: 11 },
      { id: 2, v: 11 },
    ]);
  });
});
