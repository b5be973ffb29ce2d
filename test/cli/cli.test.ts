import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const entry = ['--import', 'tsx', 'src/cli/main.ts'];

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...entry, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The embedded store belongs to one process: the CLI must work beside it, over HTTP. */
describe('handover CLI beside a running embedded-mode server', () => {
  let dataDir: string;
  let server: ChildProcess;
  let banner = '';
  let url = '';
  let env: Record<string, string>;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'handover-cli-'));
    server = spawn(process.execPath, [...entry, 'start'], {
      env: { ...process.env, HANDOVER_DATA_DIR: dataDir, PORT: '0', HANDOVER_LOG_LEVEL: 'info', HANDOVER_ADMIN_TOKEN: '', DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start: ${banner}`)), 45_000);
      server.stdout!.on('data', (chunk: Buffer) => {
        banner += chunk.toString();
        const match = /"address":"(http:\/\/[^"]+)"/.exec(banner);
        if (match && banner.includes('admin token')) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
    });
    env = { HANDOVER_URL: url, HANDOVER_DATA_DIR: dataDir, HANDOVER_ADMIN_TOKEN: '' };
  });

  afterAll(async () => {
    if (server.exitCode === null) server.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });

  it('prints a generated admin token once and keeps it private on disk', async () => {
    const token = /(handover_admin_[A-Za-z0-9_-]+)/.exec(banner)?.[1];
    expect(token).toBeDefined();
    const info = await stat(join(dataDir, 'admin-token'));
    expect(info.mode & 0o077).toBe(0);
  });

  it('creates a tenant, queue, agent and connector through the running server', async () => {
    const tenant = await run(['tenant', 'create', '--name', 'Acme'], env);
    expect(tenant.stderr).toBe('');
    expect(tenant.code).toBe(0);
    const { id, apiKey } = JSON.parse(tenant.stdout) as { id: string; apiKey: string };
    expect(apiKey).toMatch(/^handover_sk_/);

    const queue = await run(
      ['queue', 'create', '--tenant', id, '--name', 'support', '--time-zone', 'Europe/Oslo', '--opening-hours', '{"mon":[{"from":"09:00","to":"17:00"}]}'],
      env,
    );
    expect(queue.code).toBe(0);
    expect(JSON.parse(queue.stdout)).toMatchObject({ name: 'support', timeZone: 'Europe/Oslo' });

    const agent = await run(
      ['agent', 'create', '--tenant', id, '--email', 'ada@acme.test', '--name', 'Ada', '--password', 'correct horse battery', '--queues', 'support'],
      env,
    );
    expect(agent.code).toBe(0);
    expect(agent.stdout).not.toContain('correct horse');

    const connector = await run(
      [
        'connector',
        'add',
        '--tenant',
        id,
        '--type',
        'webhook',
        '--name',
        'hd',
        '--config',
        JSON.stringify({ url: 'http://127.0.0.1:9/x', secret: 'a-secret-of-sixteen-chars' }),
      ],
      env,
    );
    expect(connector.code).toBe(0);
    expect(connector.stdout).toContain('/v1/connectors/');
    expect(connector.stdout).not.toContain('a-secret-of-sixteen-chars');

    const bad = await run(['queue', 'create', '--tenant', id, '--name', 'support'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('already_exists');
  });

  it('deletes a tenant only with --yes', async () => {
    const { id } = JSON.parse((await run(['tenant', 'create', '--name', 'Gone'], env)).stdout) as { id: string };
    const unconfirmed = await run(['tenant', 'delete', '--tenant', id], env);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain('--yes');
    const deleted = await run(['tenant', 'delete', '--tenant', id, '--yes'], env);
    expect(deleted.stderr).toBe('');
    expect(deleted.code).toBe(0);
    expect(JSON.parse(deleted.stdout)).toEqual({ deleted: id });
    const again = await run(['tenant', 'delete', '--tenant', id, '--yes'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('tenant_not_found');
  });

  it('doctor reports a healthy instance, and a missing one with a non-zero exit', async () => {
    const healthy = await run(['doctor', url], env);
    expect(healthy.code, healthy.stdout).toBe(0);
    const missing = await run(['doctor', 'http://127.0.0.1:9'], env);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain('does not answer');
  });

  it('stops cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
