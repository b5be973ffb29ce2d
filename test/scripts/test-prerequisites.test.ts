import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.js';

/**
 * scripts/test-prerequisites.js, which `npm test`, `npm run test:cluster` and CI run before any test:
 * its decisions, driven with a PATH that lacks the tools (nothing is uninstalled, and installing is
 * turned off with HANDOVER_TEST_INSTALL=0), and with PostgreSQL on ports nothing listens on.
 */
const script = fileURLToPath(new URL('../../scripts/test-prerequisites.js', import.meta.url));

/** A PATH holding only node. */
const bare = mkdtempSync(join(tmpdir(), 'prereq-path-'));
symlinkSync(process.execPath, join(bare, 'node'));

async function prerequisites(args: string[], env: Record<string, string>): Promise<{ code: number | null; lines: string[] }> {
  const child = spawn(process.execPath, [script, ...args], {
    env: { ...process.env, CI: '', TEST_DATABASE_URL: '', HANDOVER_TEST_INSTALL: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, lines: out.split('\n').filter(Boolean) };
}

const installHint = (pkg: string) => new RegExp(`— get it with: (sudo )?apt-get install ${pkg}$`);

describe('test prerequisites', () => {
  const clusters: string[] = [];
  afterAll(() => {
    rmSync(bare, { recursive: true, force: true });
    for (const dir of clusters) {
      const bin = postgresBin();
      if (bin && existsSync(join(dir, 'data', 'postmaster.pid'))) {
        const [program, args] = asPostgres(join(bin, 'pg_ctl'), ['-D', join(dir, 'data'), '-m', 'immediate', 'stop']);
        spawnSync(program, args, { stdio: 'ignore' });
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names each missing tool on one line with the command that brings it, and fails before any test', async () => {
    const { code, lines } = await prerequisites(['curl', 'redis-server', 'haproxy'], { PATH: bare });
    expect(code).toBe(1);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^missing: curl, for the readable-failure tests /);
    expect(lines[0]).toMatch(installHint('curl'));
    expect(lines[1]).toMatch(installHint('redis-server'));
    expect(lines[2]).toMatch(/^missing: HAProxy, for the cluster test /);
    expect(lines[2]).toMatch(installHint('haproxy'));
  });

  it('says nothing when everything is there', async () => {
    const { code, lines } = await prerequisites(['curl', 'redis-server'], {});
    expect(lines).toEqual([]);
    expect(code).toBe(0);
  });

  it('lets tests that skip themselves go with a note outside CI, and requires their tool in CI', async () => {
    const outside = await prerequisites(['promtool'], { PATH: bare });
    expect(outside.code).toBe(0);
    expect(outside.lines).toEqual([
      expect.stringMatching(/^note: promtool is missing, so the alert-rule tests are skipped — get it with: (sudo )?apt-get install prometheus$/),
    ]);

    const inCi = await prerequisites(['promtool'], { PATH: bare, CI: 'true' });
    expect(inCi.code).toBe(1);
    expect(inCi.lines).toEqual([expect.stringMatching(/^missing: promtool, for the alert-rule tests /)]);
  });

  it('refuses names it does not know', async () => {
    const { code, lines } = await prerequisites(['chromium', 'firefox'], {});
    expect(code).toBe(2);
    expect(lines).toEqual([expect.stringContaining('unknown firefox')]);
  });

  it('does not try to start a PostgreSQL on another host: it says which one does not answer', async () => {
    const { code, lines } = await prerequisites(['postgres'], { TEST_DATABASE_URL: 'postgres://postgres@db.invalid:5432/test' });
    expect(code).toBe(1);
    expect(lines).toEqual([
      'missing: PostgreSQL at db.invalid:5432 (TEST_DATABASE_URL) does not answer — start it, or unset TEST_DATABASE_URL to use one on 127.0.0.1:5432',
    ]);
  });

  it.skipIf(!postgresBin())('starts a PostgreSQL of its own on a loopback port nothing answers on, with the test database, and reuses it', async () => {
    const port = await freePort();
    clusters.push(join(tmpdir(), `handover-test-postgres-${port}`));
    const url = `postgres://postgres@127.0.0.1:${port}/prerequisites_check`;
    const first = await prerequisites(['postgres'], { TEST_DATABASE_URL: url });
    expect(first.code).toBe(0);
    expect(first.lines).toEqual([
      expect.stringMatching(new RegExp(`^test prerequisites: started a PostgreSQL of the tests' own on 127\\.0\\.0\\.1:${port} `)),
      `test prerequisites: created the database prerequisites_check at 127.0.0.1:${port} (TEST_DATABASE_URL)`,
    ]);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      expect((await client.query<{ db: string }>('select current_database() as db')).rows[0]!.db).toBe('prerequisites_check');
    } finally {
      await client.end();
    }

    const again = await prerequisites(['postgres'], { TEST_DATABASE_URL: url });
    expect(again).toEqual({ code: 0, lines: [] });
  });
});

function postgresBin(): string | null {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'postgres'))) return join(root, v, 'bin');
  return null;
}

function asPostgres(program: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', program, ...args]] : [program, args];
}
