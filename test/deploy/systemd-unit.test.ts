import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { settings } from '../../src/config/config.js';

const run = promisify(execFile);
const unitPath = 'deploy/systemd/handover.service';

/** A unit file as section → key → values (a key may repeat, e.g. SystemCallFilter). */
function parseUnit(text: string): Record<string, Record<string, string[]>> {
  const sections: Record<string, Record<string, string[]>> = {};
  let current: Record<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = sections[section[1]!] ??= {};
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || eq < 0) throw new Error(`unit file line outside a section or without "=": ${line}`);
    (current[line.slice(0, eq)] ??= []).push(line.slice(eq + 1));
  }
  return sections;
}

const hasSystemdAnalyze = await run('systemd-analyze', ['--version'], { timeout: 10_000 }).then(
  () => true,
  () => false,
);

describe('the systemd unit', () => {
  it('sets a restart policy, a stop timeout that covers the shutdown grace, an EnvironmentFile and hardening', async () => {
    const unit = parseUnit(await readFile(unitPath, 'utf8'));
    const service = unit.Service!;
    const one = (key: string) => {
      expect(service[key], `${key} set once`).toHaveLength(1);
      return service[key]![0]!;
    };
    expect(one('Restart')).toBe('on-failure');
    expect(one('KillSignal')).toBe('SIGTERM');
    expect(one('ExecStart')).toMatch(/\/dist\/cli\/main\.js start$/);
    expect(one('EnvironmentFile')).toMatch(/^-?\/etc\/handover\//);
    // The service exits by itself within grace + 5 s (src/cli/main.ts); systemd must not kill it before.
    const graceMs = Number(/^HANDOVER_SHUTDOWN_GRACE_MS=(\d+)$/.exec(service.Environment!.find((e) => e.startsWith('HANDOVER_SHUTDOWN_GRACE_MS='))!)![1]);
    expect(Number(one('TimeoutStopSec'))).toBeGreaterThanOrEqual(graceMs / 1000 + 5);
    const known = new Set([...Object.values(settings).map((s) => s.env), 'NODE_ENV']);
    for (const assignment of service.Environment!) expect(known).toContain(assignment.split('=')[0]);
    expect(one('StateDirectory')).toBe('handover');
    expect(service.Environment).toContain('HANDOVER_DATA_DIR=/var/lib/handover');
    expect(service.Environment).toContain('HANDOVER_DEMO=false');
    expect(one('DynamicUser')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('NoNewPrivileges')).toBe('yes');
    // Node's JIT writes executable memory: this protection would crash it.
    expect(service.MemoryDenyWriteExecute).toBeUndefined();
    expect(unit.Unit!.StartLimitBurst).toBeDefined();
    expect(unit.Install!.WantedBy).toEqual(['multi-user.target']);
  });

  it.runIf(hasSystemdAnalyze)('passes systemd-analyze verify without a warning', async () => {
    // Verify checks that ExecStart's program exists: point it at this machine's node, keep the rest.
    const dir = await mkdtemp(join(tmpdir(), 'handover-unit-'));
    try {
      const text = (await readFile(unitPath, 'utf8')).replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`);
      const copy = join(dir, 'handover.service');
      await writeFile(copy, text);
      const result = await run('systemd-analyze', ['verify', copy], { timeout: 30_000 }).then(
        ({ stderr }) => ({ code: 0, stderr }),
        (err: { code?: number; stderr?: string }) => ({ code: err.code ?? 1, stderr: err.stderr ?? '' }),
      );
      expect(result.stderr.trim()).toBe('');
      expect(result.code).toBe(0);
      // And it does complain about a broken unit, so the check above means something.
      await writeFile(copy, text.replace('Restart=on-failure', 'Restart=sometimes'));
      const broken = await run('systemd-analyze', ['verify', copy], { timeout: 30_000 }).then(
        ({ stderr }) => stderr,
        (err: { stderr?: string }) => err.stderr ?? '',
      );
      expect(broken).toMatch(/restart specifier/i);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the Procfile example', () => {
  it('migrates on release and starts a web process listening on all interfaces', async () => {
    const entries = Object.fromEntries(
      (await readFile('deploy/paas/Procfile', 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]),
    );
    expect(entries.release).toMatch(/dist\/cli\/main\.js migrate$/);
    expect(entries.web).toMatch(/^HOST=0\.0\.0\.0 exec node dist\/cli\/main\.js start$/);
  });
});
