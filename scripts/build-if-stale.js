// `npm start` builds only when a source changed since the last build: a restart starts at once.
// Sources: everything tsc and copy-assets read. The stamp is written after a build that succeeded.
//
// The build here does not check types (`tsc --noCheck`: the same files in about half the time; `npm test`
// and `npm run build` check them). On a first start with the embedded store, the database cluster is
// created (initdb, in WASM: the slowest step of a first start) beside the build instead of after it.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const STAMP = 'dist/.build-stamp';
const roots = [
  'src',
  'packages/client/src',
  'packages/botframework/src',
  'scripts/copy-assets.js',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'packages/client/tsconfig.json',
  'packages/botframework/tsconfig.json',
  'packages/client/package.json',
  'packages/botframework/package.json',
];

function newest(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = stat.mtimeMs;
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
  return latest;
}

/** Runs a command; resolves with its exit code. */
function run(command, args) {
  return new Promise((done) => {
    const child = spawn(command, args, { stdio: 'inherit' });
    child.on('error', (err) => {
      console.error(`handover: ${command} could not run: ${err.message}`);
      done(1);
    });
    child.on('exit', (code, signal) => done(code ?? (signal ? 1 : 0)));
  });
}

async function steps(...commands) {
  for (const [command, args] of commands) {
    const code = await run(command, args);
    if (code !== 0) return code;
  }
  return 0;
}

const built = existsSync(STAMP) ? statSync(STAMP).mtimeMs : 0;
const changed = Math.max(...roots.map(newest));
if (built > 0 && changed <= built) {
  console.log('handover: dist/ is up to date with the sources; starting without a build');
  process.exit(0);
}
console.log(built === 0 ? 'handover: building (first start; under a minute)…' : 'handover: sources changed since the last build; building…');
const started = Date.now();
const tsc = resolve('node_modules/typescript/bin/tsc');
const work = [
  steps([process.execPath, [tsc, '-p', 'tsconfig.build.json', '--noCheck']], [process.execPath, ['scripts/copy-assets.js']]),
  steps(
    [process.execPath, [tsc, '-p', 'packages/client/tsconfig.json', '--noCheck']],
    [process.execPath, [tsc, '-p', 'packages/botframework/tsconfig.json', '--noCheck']],
  ),
];
// The embedded store's cluster, when this start will need one and it does not exist yet.
const dataDir = process.env.HANDOVER_DATA_DIR || './.handover';
if (!process.env.DATABASE_URL && !existsSync(join(dataDir, 'pgdata', 'PG_VERSION'))) {
  console.log(`handover: creating the embedded database in ${dataDir} meanwhile (first start only)…`);
  work.push(run(process.execPath, ['scripts/init-embedded-store.js', join(dataDir, 'pgdata')]));
}
const codes = await Promise.all(work);
const failed = codes.find((code) => code !== 0);
if (failed !== undefined) process.exit(failed);
writeFileSync(STAMP, `${new Date().toISOString()}\n`);
console.log(`handover: built in ${Math.round((Date.now() - started) / 1000)} s`);
