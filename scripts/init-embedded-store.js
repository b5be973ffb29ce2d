// Creates the embedded store's database cluster (PostgreSQL's initdb, in WASM) in the directory given,
// so that the service's first start only has to open it. Written to a sibling directory and renamed
// when complete: an interrupted run leaves no half-made cluster for the service to trip on.
import { PGlite } from '@electric-sql/pglite';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';

const target = process.argv[2];
if (!target) {
  console.error('usage: node scripts/init-embedded-store.js <pgdata directory>');
  process.exit(2);
}
if (existsSync(join(target, 'PG_VERSION'))) process.exit(0);
const started = Date.now();
const scratch = `${target}.init-${process.pid}`;
try {
  mkdirSync(dirname(target), { recursive: true });
  rmSync(scratch, { recursive: true, force: true });
  const db = await PGlite.create({ dataDir: scratch });
  await db.close();
  // Another start may have made it meanwhile; theirs stands.
  if (existsSync(join(target, 'PG_VERSION'))) rmSync(scratch, { recursive: true, force: true });
  else {
    rmSync(target, { recursive: true, force: true });
    renameSync(scratch, target);
  }
  console.log(`handover: embedded database created in ${Math.round((Date.now() - started) / 1000)} s`);
} catch (err) {
  rmSync(scratch, { recursive: true, force: true });
  // Not fatal: the service creates the cluster itself when it finds none.
  console.error(`handover: could not create the embedded database ahead of the start (${err.message}); the service will`);
}
