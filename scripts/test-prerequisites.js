#!/usr/bin/env node
// What the tests need from the machine, checked before any test runs: `npm test` and `npm run
// test:cluster` run this first (their pre-scripts), and so does CI (.ci/run --ci), so the three cannot
// drift apart.
//
// For each prerequisite: present → nothing is said. Missing and installable (running as root with
// apt-get, HANDOVER_TEST_INSTALL not 0) → the Debian packages are installed in one apt-get run.
// PostgreSQL installed but stopped → started (the machine's Debian cluster on that port, else a cluster
// of the tests' own under the temp directory, as the cluster test starts its own) and the test
// database created. Anything still missing → one line each saying what and how to get it, and a
// non-zero exit before any test has run.
//
//   node scripts/test-prerequisites.js                what `npm test` needs
//   node scripts/test-prerequisites.js --cluster      what `npm run test:cluster` needs
//   node scripts/test-prerequisites.js --ci           both, before `npm ci` (no node_modules yet)
//   node scripts/test-prerequisites.js curl promtool  only these
//
// Only Node's own modules: CI runs it before the dependencies are installed.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, chownSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const env = process.env;
const root = fileURLToPath(new URL('..', import.meta.url));
const ci = env.CI === 'true';
const asRoot = process.getuid?.() === 0;
const debian = existsSync('/etc/debian_version');
const mayInstall = env.HANDOVER_TEST_INSTALL !== '0' && asRoot && onPath('apt-get') !== null;
/** The browser tests drive this Chromium through playwright-core (test/browser/browser-support.ts). */
const CHROMIUM = '/usr/bin/chromium';
const POSTGRES_BIN_ROOT = '/usr/lib/postgresql';

/**
 * Each prerequisite: `present()` says whether it is there; `pkg` is the Debian package that brings it;
 * `optional` ones only make some tests skip themselves outside CI (where they are required).
 */
const checks = {
  dependencies: {
    what: 'the npm dependencies (node_modules)',
    for: 'every test',
    present: () => existsSync(join(root, 'node_modules', '.bin', 'vitest')),
    get: 'npm install',
  },
  chromium: { what: `Chromium at ${CHROMIUM}`, for: 'the browser tests', present: () => existsSync(CHROMIUM), pkg: 'chromium' },
  curl: { what: 'curl', for: 'the readable-failure tests', present: () => onPath('curl') !== null, pkg: 'curl' },
  jq: { what: 'jq', for: "the test of the README's curl loop", present: () => onPath('jq') !== null, pkg: 'jq' },
  'redis-server': {
    what: 'redis-server',
    for: 'the tests with Redis, which start their own',
    present: () => onPath('redis-server') !== null,
    pkg: 'redis-server',
  },
  promtool: { what: 'promtool', for: 'the alert-rule tests', present: () => onPath('promtool') !== null, pkg: 'prometheus', optional: !ci },
  'python-requests': {
    what: "Python's requests",
    for: 'the readable-failure tests with Python',
    present: pythonRequests,
    pkg: 'python3-requests',
    optional: !ci,
  },
  haproxy: { what: 'HAProxy', for: 'the cluster test', present: () => onPath('haproxy') !== null, pkg: 'haproxy' },
  'postgres-server': { what: 'the PostgreSQL server', for: 'the tests that start their own', present: () => postgresBin() !== null, pkg: 'postgresql' },
  // Also starts it and creates the test database: see ensurePostgres().
  postgres: {
    what: 'PostgreSQL',
    for: 'the tests on PostgreSQL',
    present: () => postgresTool('pg_isready') !== null && postgresTool('psql') !== null,
    pkg: 'postgresql',
  },
};

const sets = {
  test: ['dependencies', 'postgres', 'chromium', 'curl', 'jq', 'redis-server', 'promtool', 'python-requests'],
  cluster: ['dependencies', 'postgres-server', 'redis-server', 'haproxy'],
  ci: ['postgres', 'postgres-server', 'chromium', 'curl', 'jq', 'redis-server', 'promtool', 'python-requests', 'haproxy'],
};

const args = process.argv.slice(2);
const flags = args.filter((a) => a.startsWith('--')).map((a) => a.slice(2));
const unknown = args.filter((a) => (a.startsWith('--') ? !Object.hasOwn(sets, a.slice(2)) : !Object.hasOwn(checks, a)));
if (unknown.length > 0) {
  console.error(`test prerequisites: unknown ${unknown.join(', ')}; use --cluster, --ci or names among ${Object.keys(checks).join(', ')}`);
  process.exit(2);
}
const named = args.filter((a) => Object.hasOwn(checks, a));
const wanted = named.length > 0 ? named : [...new Set((flags.length > 0 ? flags : ['test']).flatMap((set) => sets[set]))];

const problems = [];
const notes = [];

// 1. Install what is missing, all packages in one apt-get run.
const missing = wanted.filter((id) => !checks[id].present());
const packages = [...new Set(missing.map((id) => checks[id].pkg).filter(Boolean))];
if (packages.length > 0 && mayInstall) install(packages);

// 2. What is still missing, one line each.
for (const id of wanted) {
  const check = checks[id];
  if (check.present()) continue;
  const how = check.get ?? (check.pkg ? packageHint(check.pkg) : 'install it');
  if (check.optional) notes.push(`note: ${check.what} is missing, so ${check.for} are skipped — get it with: ${how}`);
  else problems.push(`missing: ${check.what}, for ${check.for} — get it with: ${how}`);
}

// 3. PostgreSQL running, with the test database.
if (wanted.includes('postgres') && checks.postgres.present()) {
  const problem = ensurePostgres();
  if (problem) problems.push(problem);
}

for (const line of [...notes, ...problems]) console.error(line);
process.exit(problems.length > 0 ? 1 : 0);

function onPath(name) {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

function pythonRequests() {
  // The tests try the python3 on PATH, then Debian's (test/support/http-clients.ts).
  return ['python3', '/usr/bin/python3'].some(
    (python) => (python.includes('/') || onPath(python)) && spawnSync(python, ['-c', 'import requests'], { stdio: 'ignore', timeout: 10_000 }).status === 0,
  );
}

function packageHint(pkg) {
  if (!debian) return `your package manager (on Debian: apt-get install ${pkg})`;
  return `${asRoot ? '' : 'sudo '}apt-get install ${pkg}`;
}

function install(list) {
  console.error(`test prerequisites: installing ${list.join(' ')} (Debian packages; HANDOVER_TEST_INSTALL=0 only names them)`);
  const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
  // Another apt run may hold the lock: wait for it rather than fail.
  const lock = ['-o', 'DPkg::Lock::Timeout=600'];
  const update = spawnSync('apt-get', ['update', '-qq', ...lock], { env: aptEnv, encoding: 'utf8', timeout: 600_000 });
  const run = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...lock, ...list], {
    env: aptEnv,
    encoding: 'utf8',
    timeout: 1_800_000,
  });
  if (run.status !== 0) {
    const said = `${run.stderr ?? ''}\n${update.stderr ?? ''}`
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    console.error(`test prerequisites: apt-get install ${list.join(' ')} failed: ${said[0] ?? run.error?.message ?? `exit ${run.status}`}`);
  }
}

/** A PostgreSQL program: on PATH (Debian's wrappers), else from the newest installed server version. */
function postgresTool(name) {
  const found = onPath(name);
  if (found) return found;
  const bin = postgresBin();
  return bin && existsSync(join(bin, name)) ? join(bin, name) : null;
}

function postgresBin() {
  const versions = existsSync(POSTGRES_BIN_ROOT) ? readdirSync(POSTGRES_BIN_ROOT).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(POSTGRES_BIN_ROOT, v, 'bin', 'postgres'))) return join(POSTGRES_BIN_ROOT, v, 'bin');
  return null;
}

/** Makes the tests' PostgreSQL answer and hold their database; returns a one-line problem, or null. */
function ensurePostgres() {
  const fromEnv = Boolean(env.TEST_DATABASE_URL);
  const url = new URL(env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test');
  const host = url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(url.port || 5432);
  const database = decodeURIComponent(url.pathname.slice(1)) || 'postgres';
  const where = `${host}:${port}${fromEnv ? ' (TEST_DATABASE_URL)' : ''}`;
  // pg_isready: 0 accepting connections, 1 rejecting them (starting or stopping), 2 no answer.
  const probe = () => spawnSync(postgresTool('pg_isready'), ['-h', host, '-p', String(port), '-t', '3'], { stdio: 'ignore' }).status;
  const ready = () => probe() === 0;
  const waitUntil = (until) => {
    while (!ready()) {
      if (Date.now() > until) return false;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
    return true;
  };

  // A server that is starting up (or shutting down) is waited for before anything is started.
  if (probe() === 1) waitUntil(Date.now() + 30_000);
  if (!ready()) {
    if (!['127.0.0.1', 'localhost', '::1'].includes(host))
      return `missing: PostgreSQL at ${where} does not answer — start it, or unset TEST_DATABASE_URL to use one on 127.0.0.1:5432`;
    const problem = startPostgres(host, port);
    if (problem) return problem;
    if (!waitUntil(Date.now() + 30_000)) return `missing: PostgreSQL at ${where} was started but does not answer after 30 s — see its log`;
  }

  const maintenance = new URL(url);
  maintenance.pathname = '/postgres';
  const psql = (sql) =>
    spawnSync(postgresTool('psql'), [maintenance.href, '-tAc', sql], { encoding: 'utf8', env: { ...env, PGCONNECT_TIMEOUT: '10' }, timeout: 30_000 });
  const exists = psql(`select 1 from pg_database where datname = '${database.replace(/'/g, "''")}'`);
  if (exists.status !== 0) {
    const said = (exists.stderr ?? '').split('\n').find((l) => l.trim()) ?? 'no answer';
    if (/password|authentication/i.test(said)) {
      return `missing: PostgreSQL at ${where} wants a password for ${url.username || 'postgres'} — allow it from this host without one (pg_hba.conf: host all ${url.username || 'postgres'} ${host}/32 trust), or set TEST_DATABASE_URL with a password`;
    }
    return `missing: PostgreSQL at ${where} refused the tests: ${said.replace(/^psql: (error: )?/, '')}`;
  }
  if (exists.stdout.trim() !== '1') {
    const created = psql(`create database "${database.replace(/"/g, '""')}"`);
    if (created.status !== 0 && !/already exists/.test(created.stderr))
      return `missing: the database ${database} at ${where} could not be created: ${created.stderr.trim()}`;
    console.error(`test prerequisites: created the database ${database} at ${where}`);
  }
  return null;
}

/**
 * Starts a stopped PostgreSQL on a loopback port: the machine's own Debian cluster when one is set up on
 * that port, else a cluster of the tests' own (initdb, trust, in the temp directory, kept between runs).
 */
function startPostgres(host, port) {
  const clusters = onPath('pg_lsclusters') ? (spawnSync('pg_lsclusters', ['-h'], { encoding: 'utf8' }).stdout ?? '') : '';
  const cluster = clusters
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((fields) => Number(fields[2]) === port);
  if (cluster && asRoot) {
    const [version, name] = cluster;
    console.error(`test prerequisites: starting PostgreSQL ${version}/${name} on port ${port}`);
    const started = spawnSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, name, 'start'], { encoding: 'utf8', timeout: 60_000 });
    return started.status === 0
      ? null
      : `missing: PostgreSQL ${version}/${name} on port ${port} did not start: ${(started.stderr ?? '').trim().split('\n')[0]}`;
  }
  if (cluster) return `missing: PostgreSQL on ${host}:${port} is stopped — start it with: sudo pg_ctlcluster ${cluster[0]} ${cluster[1]} start`;

  const bin = postgresBin();
  if (!bin) return `missing: the PostgreSQL server, for the tests on PostgreSQL — get it with: ${packageHint('postgresql')}`;
  // The server refuses to run as root: as root, it runs as the postgres user.
  const as = (program, programArgs) => (asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, program), ...programArgs]] : [join(bin, program), programArgs]);
  const dir = join(tmpdir(), `handover-test-postgres-${port}`);
  const data = join(dir, 'data');
  mkdirSync(dir, { recursive: true });
  if (asRoot) {
    const ids = ['-u', '-g'].map((flag) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim()));
    chownSync(dir, ids[0], ids[1]);
  }
  if (!existsSync(join(data, 'PG_VERSION'))) {
    const init = spawnSync(...as('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8']), { encoding: 'utf8', timeout: 120_000 });
    if (init.status !== 0) return `missing: PostgreSQL for the tests could not be set up in ${dir}: ${(init.stderr ?? '').trim().split('\n').pop()}`;
  }
  const listen = host === '::1' ? '::1' : host;
  const options = `-p ${port} -k ${dir} -c listen_addresses=${listen} -c max_connections=200`;
  const started = spawnSync(...as('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-o', options, '-w', '-t', '60', 'start']), {
    encoding: 'utf8',
    timeout: 90_000,
  });
  if (started.status !== 0) return `missing: PostgreSQL for the tests did not start on ${host}:${port} — see ${join(dir, 'server.log')}`;
  console.error(
    `test prerequisites: started a PostgreSQL of the tests' own on ${host}:${port} (data in ${dir}; stop it with: ${asRoot ? 'runuser -u postgres -- ' : ''}${join(bin, 'pg_ctl')} -D ${data} stop)`,
  );
  return null;
}
