import { fsyncSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/db.js';
import { createPgliteInProcess, type PgliteEngine } from '../../src/store/pglite-engine.js';
import { createPgliteDb, failPgliteDbLogSyncs } from '../../src/store/pglite-db.js';

/**
 * The embedded store on disk answers a commit only once its write-ahead log is synced to disk, as
 * PostgreSQL's own server does: otherwise a crash of the machine could lose messages answered `202`.
 */
describe('embedded store: commits synced to disk', () => {
  const dirs: string[] = [];
  const engines: PgliteEngine[] = [];
  let db: Db | undefined;
  const dataDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'handover-durable-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(async () => {
    await db?.close();
    db = undefined;
    for (const engine of engines.splice(0)) await engine.close().catch(() => {});
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('syncs the write-ahead log within each commit, and the data files at a checkpoint', async () => {
    const synced: string[] = [];
    const engine = await createPgliteInProcess({
      dataDir: dataDir(),
      sync: (fd, path) => {
        synced.push(path);
        fsyncSync(fd);
      },
    });
    engines.push(engine);
    expect((await engine.query('show fsync')).rows).toEqual([{ fsync: 'on' }]);
    await engine.query('create table t (n int)');

    synced.length = 0;
    await engine.query('insert into t values ($1)', [1]);
    // Synced before the statement was answered: the sync is made inside the commit.
    expect(synced.filter((path) => /\/pg_wal\/[0-9A-F]{24}$/.test(path))).toHaveLength(1);

    synced.length = 0;
    await engine.query('select n from t where n = $1', [1]);
    expect(synced).toEqual([]);

    await engine.query('insert into t values ($1)', [2]);
    synced.length = 0;
    await engine.query('checkpoint');
    expect(synced.some((path) => /\/base\/\d+\/\d+$/.test(path))).toBe(true);
  });

  it('stops at a file it cannot sync: that commit and every statement after it fail database_unavailable', async () => {
    let failing = false;
    const engine = await createPgliteInProcess({
      dataDir: dataDir(),
      sync: (fd, path) => {
        if (failing && path.includes('/pg_wal/')) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
        fsyncSync(fd);
      },
    });
    engines.push(engine);
    await engine.query('create table t (n int)');
    expect(engine.failure!()).toBeNull();

    failing = true;
    await expect(engine.query('insert into t values ($1)', [1])).rejects.toMatchObject({
      code: 'database_unavailable',
      message: expect.stringMatching(/could not sync 0{7}1\w+ to disk \(EIO: i\/o error, fsync\)/),
    });
    failing = false;
    // The disk works again, but what the kernel held may be gone: nothing more is answered until a restart.
    await expect(engine.query('select count(*) from t')).rejects.toMatchObject({ code: 'database_unavailable' });
    expect(engine.failure!()).toMatchObject({ code: 'database_unavailable' });
  });

  it('syncs a new database whole once it is made, and an existing one not again', async () => {
    const dir = dataDir();
    const pgdata = join(dir, 'pgdata');
    const synced: string[] = [];
    const sync = (fd: number, path: string) => {
      synced.push(path);
      fsyncSync(fd);
    };
    const made = await createPgliteInProcess({ dataDir: pgdata, sync });
    // PGlite copies a new database's files in unsynced; each of them, each directory, and the directory's own entry.
    expect(synced).toEqual(expect.arrayContaining([join(pgdata, 'PG_VERSION'), join(pgdata, 'global', 'pg_control'), join(pgdata, 'base'), pgdata, dir]));
    expect(synced.filter((path) => path.startsWith(join(pgdata, 'base') + '/')).length).toBeGreaterThan(100);
    await made.close();

    synced.length = 0;
    const reopened = await createPgliteInProcess({ dataDir: pgdata, sync });
    expect(synced).not.toContain(join(pgdata, 'PG_VERSION'));
    expect(synced).not.toContain(dir);
    await reopened.close();

    // A directory never synced whole (made by a version that did not, or a first start cut short): synced at its next start.
    rmSync(join(pgdata, 'handover-synced'));
    synced.length = 0;
    const older = await createPgliteInProcess({ dataDir: pgdata, sync });
    engines.push(older);
    expect(synced).toEqual(expect.arrayContaining([join(pgdata, 'PG_VERSION'), join(pgdata, 'handover-synced'), pgdata, dir]));
  });

  it('runs with fsync on in its own thread, as the service opens it', async () => {
    db = await createPgliteDb({ dataDir: dataDir(), thread: { replyTimeoutMs: 10_000 } });
    const { rows } = await db.query<{ fsync: string; method: string }>(
      `select current_setting('fsync') as fsync, current_setting('wal_sync_method') as method`,
    );
    expect(rows).toEqual([{ fsync: 'on', method: 'fsync' }]);
  });

  it('in its own thread, a failed sync ends the thread and names the cause to every statement, then and after', async () => {
    const lost: Error[] = [];
    db = await createPgliteDb({ dataDir: dataDir(), thread: { replyTimeoutMs: 10_000, onLost: (err) => lost.push(err) } });
    await db.query('create table t (n int)');
    await failPgliteDbLogSyncs(db);
    const cause = { code: 'database_unavailable', message: expect.stringMatching(/could not sync 0{7}1\w+ to disk \(EIO: i\/o error, fsync\)/) };
    // A transaction's COMMIT is sent without parameters, as PGlite's simple protocol.
    await expect(db.transaction((tx) => tx.query('insert into t values ($1)', [1]))).rejects.toMatchObject(cause);
    await expect(db.query('select 1')).rejects.toMatchObject(cause);
    expect(lost).toEqual([expect.objectContaining(cause)]);
    await db.close();
    db = undefined;
  }, 30_000);

  it('in its own thread, closed as the service stops, reports no loss (the log said the thread had stopped, as if it had failed)', async () => {
    const lost: Error[] = [];
    const closing = await createPgliteDb({ dataDir: dataDir(), thread: { replyTimeoutMs: 10_000, onLost: (err) => lost.push(err) } });
    await closing.query('select 1');
    await closing.close();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(lost).toEqual([]);
  });

  it('in memory (nothing to sync) keeps PGlite’s settings', async () => {
    db = await createPgliteDb();
    expect((await db.query('show fsync')).rows).toEqual([{ fsync: 'off' }]);
  });
});
