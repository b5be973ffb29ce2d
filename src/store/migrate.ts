import { readdir, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AppError } from '../resilience/errors.js';
import type { Db, Queryable } from './db.js';

/**
 * Schema migrations: plain SQL files `NNN-name.sql` in `migrations/` next to this module (the build
 * copies them to dist/store/migrations). Each runs in its own transaction together with its
 * `schema_migrations` row, so a migration is applied entirely or not at all.
 *
 * Several instances may start at once on one Postgres: each transaction takes an advisory lock and
 * re-checks whether its version was applied meanwhile, so every migration runs exactly once.
 * Migrations therefore cannot use statements that refuse a transaction (CREATE INDEX CONCURRENTLY).
 */
export interface MigrateOptions {
  /** Folder of the SQL files; defaults to the `migrations/` folder next to this module. */
  dir?: URL | string;
  log?: (msg: string) => void;
}

interface Migration {
  version: number;
  /** The file name without `.sql`, e.g. `001-init`. */
  name: string;
  file: URL;
}

const defaultDir = new URL('./migrations/', import.meta.url);
const filePattern = /^(\d+)-[\w.-]+\.sql$/;
// Arbitrary constant ("hand" in ASCII) that names this lock among other users of advisory locks.
// The second key scopes it to the schema being migrated, so test schemas do not queue on each other.
const lockSql = 'select pg_advisory_xact_lock(1751215716, hashtext(current_schema()))';
const createTableSql = `create table if not exists schema_migrations (
  version int primary key,
  name text not null,
  applied_at timestamptz not null default now()
)`;

// The files cannot change while the process runs; readiness checks call pendingMigrations often.
const listings = new Map<string, Promise<Migration[]>>();

export async function migrate(db: Db, options: MigrateOptions | ((msg: string) => void) = {}): Promise<{ applied: string[] }> {
  const { dir, log } = typeof options === 'function' ? { dir: undefined, log: options } : options;
  const migrations = await listMigrations(dir);
  // Concurrent CREATE TABLE IF NOT EXISTS can still fail on the catalog's unique index: lock first.
  await db.transaction(async (tx) => {
    await tx.query(lockSql);
    await tx.query(createTableSql);
  });
  const known = await appliedVersions(db);
  const applied: string[] = [];
  for (const migration of migrations) {
    if (known.has(migration.version)) continue;
    const sql = await readFile(migration.file, 'utf8');
    const started = performance.now();
    const ran = await db.transaction(async (tx) => {
      await tx.query(lockSql);
      // Another instance may have applied it while this one waited for the lock.
      const again = await tx.query('select 1 from schema_migrations where version = $1', [migration.version]);
      if (again.rowCount > 0) return false;
      await runMigration(tx, migration, sql);
      await tx.query('insert into schema_migrations (version, name) values ($1, $2)', [migration.version, migration.name]);
      return true;
    });
    if (ran) {
      applied.push(migration.name);
      log?.(`applied migration ${migration.name} in ${Math.round(performance.now() - started)} ms`);
    }
  }
  const unknown = [...known].filter((version) => !migrations.some((m) => m.version === version));
  // A newer release may already have migrated this database (rolling deploy): worth a line, not an error.
  if (unknown.length > 0) log?.(`database has migrations this release does not know: ${unknown.join(', ')}`);
  return { applied };
}

/** Names of migrations not applied yet, in order: readiness reports them. */
export async function pendingMigrations(db: Db, options: Pick<MigrateOptions, 'dir'> = {}): Promise<string[]> {
  const migrations = await listMigrations(options.dir);
  const table = await db.query<{ exists: boolean }>("select to_regclass('schema_migrations') is not null as exists");
  if (!table.rows[0]?.exists) return migrations.map((m) => m.name);
  const known = await appliedVersions(db);
  return migrations.filter((m) => !known.has(m.version)).map((m) => m.name);
}

async function runMigration(tx: Queryable, migration: Migration, sql: string): Promise<void> {
  try {
    // No parameters: both adapters run it through the simple protocol, several statements at once.
    await tx.query(sql);
  } catch (err) {
    // A timeout or outage keeps its catalogue code.
    if (err instanceof AppError) throw err;
    // Name the file; keep the driver error (SQLSTATE, position) as the cause.
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`migration ${migration.name} failed: ${reason}`, { cause: err });
  }
}

async function appliedVersions(db: Db): Promise<Set<number>> {
  const result = await db.query<{ version: number }>('select version from schema_migrations');
  return new Set(result.rows.map((r) => r.version));
}

function listMigrations(dir: URL | string = defaultDir): Promise<Migration[]> {
  // The trailing slash makes file names resolve inside the folder.
  const folder = typeof dir === 'string' ? pathToFileURL(`${resolve(dir)}/`) : dir;
  const key = folder.href;
  let listing = listings.get(key);
  if (!listing) {
    listing = readMigrations(folder);
    listings.set(key, listing);
    // A failed read (folder missing) should not be remembered.
    listing.catch(() => listings.delete(key));
  }
  return listing;
}

async function readMigrations(folder: URL): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for (const file of await readdir(folder)) {
    if (!file.endsWith('.sql')) continue;
    const match = filePattern.exec(file);
    if (!match) throw new Error(`migration file ${file} does not match NNN-name.sql`);
    migrations.push({ version: Number(match[1]), name: file.slice(0, -'.sql'.length), file: new URL(file, folder) });
  }
  migrations.sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version === migrations[i - 1]!.version) {
      throw new Error(`two migrations share version ${migrations[i]!.version}: ${migrations[i - 1]!.name}, ${migrations[i]!.name}`);
    }
  }
  return migrations;
}
