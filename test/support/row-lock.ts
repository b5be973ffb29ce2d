import type { Db } from '../../src/store/db.js';
import { openTestPgDb } from './test-db.js';
import type { TestService } from './test-service.js';

/**
 * Holds a handover's row lock from outside the service, so a request that writes to that handover
 * stays in flight (holding its admission slot) until released: a deterministic way to fill slots.
 * Also answers the id of the holding transaction, to find who waits on it in `pg_locks`.
 */
export async function holdHandover(t: TestService, handoverId: string): Promise<{ xid: string; release(): Promise<void> }> {
  const outside: Db = openTestPgDb(t.db.schema!, { poolSize: 1 });
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let locked!: (xid: string) => void;
  const isLocked = new Promise<string>((r) => (locked = r));
  const done = outside.transaction(async (q) => {
    await q.query('select id from handovers where id = $1 for update', [handoverId]);
    const { rows } = await q.query<{ xid: string }>('select pg_current_xact_id()::text as xid');
    locked(rows[0]!.xid);
    await released;
  });
  const xid = await isLocked;
  return {
    xid,
    async release() {
      release();
      await done;
      await outside.close();
    },
  };
}
