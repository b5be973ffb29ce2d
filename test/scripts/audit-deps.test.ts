import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeNpmRegistry, type Advisory, type FakeNpmRegistry } from '../fakes/npm-registry.js';

/**
 * scripts/audit-deps.js (`npm run audit:deps`, a CI step) against a local registry: a project with one
 * production and one development dependency, audited by the real npm.
 */
const script = fileURLToPath(new URL('../../scripts/audit-deps.js', import.meta.url));

// Distinct ids: npm caches what it works out per advisory id.
const ids = { info: 1001, low: 1002, moderate: 1003, high: 1004, critical: 1005 };
const advisory = (severity: Advisory['severity']): Advisory => ({
  id: ids[severity],
  url: `https://advisories.example/${ids[severity]}`,
  title: `A ${severity} problem in left-pad`,
  severity,
  vulnerable_versions: '<1.3.1',
  cwe: [],
  cvss: { score: 7.5, vectorString: null },
});

describe('dependency audit step', () => {
  let registry: FakeNpmRegistry;
  let project: string;

  beforeAll(async () => {
    registry = await startFakeNpmRegistry({ 'left-pad': ['1.3.0', '1.3.1'], 'dev-only': ['1.0.0'] });
    project = mkdtempSync(join(tmpdir(), 'audit-'));
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'fixture', version: '1.0.0', dependencies: { 'left-pad': '1.3.0' }, devDependencies: { 'dev-only': '1.0.0' } }),
    );
    const entry = (name: string, version: string, dev = false) => ({
      version,
      resolved: `${registry.url}/${name}/-/${name}-${version}.tgz`,
      ...(dev ? { dev: true } : {}),
    });
    writeFileSync(
      join(project, 'package-lock.json'),
      JSON.stringify({
        name: 'fixture',
        version: '1.0.0',
        lockfileVersion: 3,
        requires: true,
        packages: {
          '': { name: 'fixture', version: '1.0.0', dependencies: { 'left-pad': '1.3.0' }, devDependencies: { 'dev-only': '1.0.0' } },
          'node_modules/left-pad': entry('left-pad', '1.3.0'),
          'node_modules/dev-only': entry('dev-only', '1.0.0', true),
        },
      }),
    );
  });

  afterAll(async () => {
    await registry?.close();
    if (project) rmSync(project, { recursive: true, force: true });
  });

  beforeEach(() => {
    registry.asked = {};
  });

  function audit(env: Record<string, string> = {}, cwd = project): Promise<{ code: number | null; out: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [script], {
        cwd,
        env: {
          ...process.env,
          npm_config_registry: `${registry.url}/`,
          npm_config_cache: join(project, '.npm'),
          npm_config_fetch_retries: '0',
          npm_config_update_notifier: 'false',
          HANDOVER_REQUIRE_AUDIT: '',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
      const timer = setTimeout(() => child.kill(), 60_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, out });
      });
    });
  }

  it('passes when no production dependency has an advisory, and audits only production dependencies', async () => {
    registry.advisories = {};
    const { code, out } = await audit();
    expect(out).toContain('no high or critical advisories');
    expect(code).toBe(0);
    expect(registry.asked).toEqual({ 'left-pad': ['1.3.0'] });
  });

  it('passes on a moderate advisory, saying so', async () => {
    registry.advisories = { 'left-pad': [advisory('moderate')] };
    const { code, out } = await audit();
    expect(out).toContain('no high or critical advisories in production dependencies (1 moderate');
    expect(code).toBe(0);
  });

  it('fails on a high or a critical advisory, naming the package, the advisory and the fix', async () => {
    for (const severity of ['high', 'critical'] as const) {
      registry.advisories = { 'left-pad': [advisory(severity)] };
      const { code, out } = await audit();
      expect(out).toContain(
        `- left-pad 1.3.0 installed [${severity}]: A ${severity} problem in left-pad (https://advisories.example/${ids[severity]}; affects <1.3.1); fix: left-pad@1.3.1`,
      );
      expect(code, out).toBe(1);
    }
  });

  it('says in one line that the audit could not be run when the advisory service refuses, and passes unless required', async () => {
    registry.advisories = { status: 405 };
    const optional = await audit();
    expect(optional.out.trim().split('\n')).toHaveLength(1);
    expect(optional.out).toMatch(/^dependency audit could not be run: 405 Method Not Allowed - POST .*\/-\/npm\/v1\/security\/advisories\/bulk/);
    expect(optional.code).toBe(0);
    const required = await audit({ HANDOVER_REQUIRE_AUDIT: 'true' });
    expect(required.out).toMatch(/^dependency audit could not be run: 405/);
    expect(required.code).toBe(1);
  });

  it('says so too when no registry answers at all', async () => {
    const { code, out } = await audit({ npm_config_registry: 'http://127.0.0.1:9/' });
    expect(out).toMatch(/^dependency audit could not be run: .*(ECONNREFUSED|127\.0\.0\.1:9)/);
    expect(code).toBe(0);
  });

  it('fails when npm audit itself fails for another reason than the advisory service (no lockfile)', async () => {
    const broken = mkdtempSync(join(tmpdir(), 'handover-audit-broken-'));
    try {
      writeFileSync(join(broken, 'package.json'), JSON.stringify({ name: 'broken', version: '1.0.0', dependencies: { 'left-pad': '1.3.0' } }));
      const { code, out } = await audit({}, broken);
      expect(out).toMatch(/^dependency audit failed: .*lockfile/);
      expect(code).toBe(1);
    } finally {
      rmSync(broken, { recursive: true, force: true });
    }
  });
});
