import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { createPgDb, withSearchPath, type PgDbOptions } from '../../src/store/pg-db.js';
import { createPgliteDb, dumpPgliteDb } from '../../src/store/pglite-db.js';

/**
 * Isolated, migrated databases for tests.
 *
 * - `pg`: a fresh schema with a random name on TEST_DATABASE_URL (default the local `test` database);
 *   every query lands in it through `search_path`; `dropAndClose()` drops it with CASCADE.
 * - `pglite`: an in-memory PGlite created from a migrated template. The template is built once per
 *   machine and migration set, dumped to the OS temp folder, and loaded from there (about 0.5 s)
 *   instead of creating and migrating a fresh instance (about 3.5 s) per test.
 *
 * Use `describe.each(dbKinds)` to run a suite against both.
 */
export const dbKinds = ['pglite', 'pg'] as const;
export type DbKind = (typeof dbKinds)[number];

export interface TestDb extends Db {
  /** pg: the schema every query of this Db lands in; pglite: undefined. */
  readonly schema: string | undefined;
  /** pg: a URL that lands in the same schema (for a child process' DATABASE_URL); pglite: undefined. */
  readonly url: string | undefined;
  /** Drops the schema (pg) and closes the Db. Safe to call twice. */
  dropAndClose(): Promise<void>;
}

export interface TestDbOptions {
  /** Apply the migrations (default true). */
  migrate?: boolean;
  /** pg only: pool and timeout settings; the defaults are generous for slow CI machines. */
  pg?: Partial<Omit<PgDbOptions, 'url' | 'searchPath'>>;
  /** pglite only: bound on waiting for the single connection. */
  waitTimeoutMs?: number;
  /** pglite only: in a thread of its own, as the service runs it (other threads get sessions of it). */
  thread?: boolean;
}

export function testDatabaseUrl(): string {
  return process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
}

export async function createTestDb(kind: DbKind, options: TestDbOptions = {}): Promise<TestDb> {
  return kind === 'pg' ? createPgTestDb(options) : createPgliteTestDb(options);
}

/** Another Db on the schema of a pg TestDb: a second service instance, a concurrent migrator. */
export function openTestPgDb(schema: string, overrides: Partial<Omit<PgDbOptions, 'url' | 'searchPath'>> = {}): Db {
  return createPgDb({ ...pgDefaults, ...overrides, url: testDatabaseUrl(), searchPath: schema });
}

const pgDefaults = {
  poolSize: 5,
  poolTimeoutMs: 10_000,
  statementTimeoutMs: 20_000,
  idleInTransactionTimeoutMs: 30_000,
  applicationName: 'handover-test',
} satisfies Omit<PgDbOptions, 'url'>;

async function createPgTestDb(options: TestDbOptions): Promise<TestDb> {
  // Lower case, starts with a letter: no quoting needed anywhere, including in search_path.
  const schema = `test_${randomBytes(6).toString('hex')}`;
  const admin = createPgDb({ ...pgDefaults, poolSize: 1, url: testDatabaseUrl() });
  try {
    await admin.query(`create schema ${schema}`);
  } finally {
    await admin.close();
  }
  const db = openTestPgDb(schema, options.pg);
  let dropped: Promise<void> | undefined;
  const dropAndClose = (): Promise<void> => {
    dropped ??= (async () => {
      await db.close();
      // A separate connection: the test may have broken or closed its own pool on purpose.
      const cleaner = createPgDb({ ...pgDefaults, poolSize: 1, url: testDatabaseUrl() });
      try {
        await cleaner.query(`drop schema if exists ${schema} cascade`);
      } finally {
        await cleaner.close();
      }
    })();
    return dropped;
  };
  try {
    if (options.migrate !== false) await migrate(db);
  } catch (err) {
    await dropAndClose();
    throw err;
  }
  return withExtras(db, { schema, url: withSearchPath(testDatabaseUrl(), schema), dropAndClose });
}

async function createPgliteTestDb(options: TestDbOptions): Promise<TestDb> {
  // A thread gets the dump by structured clone, which copies a Blob's own bytes: the subclass's are not those.
  const loadDataDir =
    options.migrate === false ? undefined : options.thread ? new Blob([await migratedTemplate()]) : new TemplateBlob(await migratedTemplate());
  const db = await createPgliteDb({
    ...(loadDataDir ? { loadDataDir } : {}),
    ...(options.waitTimeoutMs ? { waitTimeoutMs: options.waitTimeoutMs } : {}),
    ...(options.thread ? { thread: { replyTimeoutMs: 20_000 } } : {}),
  });
  return withExtras(db, { schema: undefined, url: undefined, dropAndClose: () => db.close() });
}

// Extends the adapter's object itself: functions keyed by Db identity (dumpPgliteDb) keep working.
function withExtras(db: Db, extras: Pick<TestDb, 'schema' | 'url' | 'dropAndClose'>): TestDb {
  return Object.assign(db, extras);
}

/**
 * The template's bytes as the Blob PGlite loads a dump from. PGlite reads it whole with `arrayBuffer()`,
 * which for a Blob made of the bytes costs Node about 0.4 s per copy (41 MB read back in small chunks
 * and joined); this one answers with a plain copy of the bytes kept in memory. The database loaded is
 * the same, byte for byte.
 */
class TemplateBlob extends Blob {
  readonly #bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    super([]);
    this.#bytes = bytes;
  }
  override arrayBuffer(): Promise<ArrayBuffer> {
    return Promise.resolve(this.#bytes.slice().buffer);
  }
}

let template: Promise<Uint8Array> | undefined;

/** The dump of a migrated PGlite: from this process' memory, the temp folder, or built now. */
function migratedTemplate(): Promise<Uint8Array> {
  template ??= loadOrBuildTemplate();
  // A failure (e.g. a broken migration) should surface in each test, not be cached forever.
  template.catch(() => {
    template = undefined;
  });
  return template;
}

async function loadOrBuildTemplate(): Promise<Uint8Array> {
  const file = join(tmpdir(), `handover-pglite-template-${await templateKey()}.tar`);
  try {
    return new Uint8Array(await readFile(file));
  } catch {
    // Not built yet on this machine for these migrations.
  }
  const db = await createPgliteDb();
  try {
    await migrate(db);
    const dump = new Uint8Array(await (await dumpPgliteDb(db)).arrayBuffer());
    // Write then rename: parallel test workers never read a half-written file.
    const partial = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeFile(partial, dump);
    await rename(partial, file);
    return dump;
  } finally {
    await db.close();
  }
}

/** Changes whenever a migration file or the PGlite version (its on-disk format) changes. */
async function templateKey(): Promise<string> {
  const hash = createHash('sha256');
  const pgliteEntry = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  hash.update(await readFile(join(dirname(pgliteEntry), '..', 'package.json')));
  const folder = new URL('../../src/store/migrations/', import.meta.url);
  for (const name of (await readdir(folder)).sort()) {
    hash.update(name);
    hash.update(await readFile(new URL(name, folder)));
  }
  return hash.digest('hex').slice(0, 16);
}
