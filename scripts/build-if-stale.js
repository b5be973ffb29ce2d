// `npm start` builds only when a source changed since the last build: a restart starts at once.
// Sources: everything tsc and copy-assets read. The stamp is written after a build that succeeded.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const STAMP = 'dist/.build-stamp';
const roots = ['src', 'packages/client/src', 'packages/botframework/src', 'scripts/copy-assets.js', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'packages/client/tsconfig.json', 'packages/botframework/tsconfig.json', 'packages/client/package.json', 'packages/botframework/package.json'];

function newest(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = stat.mtimeMs;
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
  return latest;
}

const built = existsSync(STAMP) ? statSync(STAMP).mtimeMs : 0;
const changed = Math.max(...roots.map(newest));
if (built > 0 && changed <= built) {
  console.log('handover: dist/ is up to date with the sources; starting without a build');
  process.exit(0);
}
console.log(built === 0 ? 'handover: building (first start; about a minute)…' : 'handover: sources changed since the last build; building…');
const started = Date.now();
const result = spawnSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit', shell: process.platform === 'win32' });
if (result.status !== 0) process.exit(result.status ?? 1);
writeFileSync(STAMP, `${new Date().toISOString()}\n`);
console.log(`handover: built in ${Math.round((Date.now() - started) / 1000)} s`);
