import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const rulesFile = 'deploy/prometheus/handover.rules.yml';
const testsFile = 'deploy/prometheus/tests/handover-rules.test.yml';

function findPromtool(): string | null {
  const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : null;
}

const promtool = findPromtool();
if (!promtool) {
  // In CI the rule tests must run: .ci/run installs promtool (Debian's prometheus package).
  if (process.env.CI === 'true') throw new Error('promtool is missing: the alert-rule tests cannot run (install Debian package "prometheus").');
  console.warn('\n!!! promtool not found: SKIPPING the Prometheus alert-rule tests. Install it with `apt-get install prometheus`. !!!\n');
}

describe.skipIf(!promtool)('Prometheus alert rules (promtool)', () => {
  it('are valid rules', () => {
    const out = execFileSync(promtool!, ['check', 'rules', rulesFile], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(out).toContain('SUCCESS');
  });

  it('pass their unit tests: a latency rise fires the latency alert and not the memory alert; memory pressure fires the memory alert', () => {
    const run = spawnSync(promtool!, ['test', 'rules', testsFile], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    expect(run.stdout + run.stderr).toContain('SUCCESS');
    expect(run.status).toBe(0);
  });
});

describe('every alert', () => {
  const rules = readFileSync(new URL(`../../${rulesFile}`, import.meta.url), 'utf8');
  const alerts = [...rules.matchAll(/- alert: (\w+)/g)].map((m) => m[1]!);
  const runbooks = [...rules.matchAll(/runbook_url: (\S+)/g)].map((m) => m[1]!);

  it('has a runbook page that exists and says what it means, how to confirm and what to do', () => {
    expect(alerts.length).toBeGreaterThan(8);
    expect(runbooks.length).toBe(alerts.length);
    for (const runbook of new Set(runbooks)) {
      expect(existsSync(new URL(`../../${runbook}`, import.meta.url)), runbook).toBe(true);
      const page = readFileSync(new URL(`../../${runbook}`, import.meta.url), 'utf8');
      for (const heading of ['## What it means', '## How to confirm', '## What to do']) expect(page, `${runbook}: ${heading}`).toContain(heading);
    }
  });
});
