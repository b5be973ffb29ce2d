import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../support/test-db.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { renderChart, type K8sObject } from './render-chart.js';

const run = promisify(execFile);

/**
 * The rendered pod specs, run: the migrations Job's command and environment, then the Deployment's, as
 * real processes against PostgreSQL. Only HOST and PORT are replaced (loopback, a free port); every other
 * variable and secret is the chart's. A value the service rejects, a wrong command or a probe path it
 * does not serve fails here, where a schema check cannot see it.
 */
let db: TestDb;
let job: K8sObject;
let deployment: K8sObject;
let secret: Record<string, string>;

/** The container's environment as Kubernetes would give it: env entries, then the Secret's keys. */
function podEnv(object: K8sObject): Record<string, string> {
  const container = object.spec.template.spec.containers[0];
  const env = Object.fromEntries((container.env as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]));
  return { ...env, ...secret, HOST: '127.0.0.1', PORT: '0' };
}

beforeAll(async () => {
  db = await createTestDb('pg', { migrate: false });
  const rendered = await renderChart({
    secret: {
      values: {
        DATABASE_URL: db.url!,
        HANDOVER_ADMIN_TOKEN: 'chart-pod-test-token-0123456789',
        HANDOVER_SECRET_KEYS: `pod:${Buffer.alloc(32, 9).toString('base64')}`,
      },
    },
  });
  job = rendered.one('Job');
  deployment = rendered.one('Deployment');
  secret = rendered.one('Secret').stringData;
}, 120_000);

afterAll(async () => {
  await db?.dropAndClose();
});

describe('the chart pods, run', () => {
  let server: ServerProcess | undefined;
  afterAll(() => {
    server?.child.kill('SIGKILL');
  });

  it('the migrations Job applies the migrations', async () => {
    const args = job.spec.template.spec.containers[0].args as string[];
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      env: { ...process.env, ...podEnv(job) },
      timeout: 60_000,
    });
    expect(stdout).toMatch(/applied /);
  });

  it('the Deployment pod starts, passes its probes, and stops on SIGTERM within the pod grace period', async () => {
    const container = deployment.spec.template.spec.containers[0];
    expect(container.args).toEqual(['start']);
    // Only what the chart gives the pod (the test helper's own defaults are overridden or emptied).
    const env = podEnv(deployment);
    expect(env.HANDOVER_SECRET_KEYS).toBeTruthy();
    server = await startServerProcess({ HANDOVER_ALLOW_PRIVATE_URLS: '', HANDOVER_ALLOW_HTTP_URLS: '', ...env });
    for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) {
      const res = await fetch(`${server.url}${probe.httpGet.path}`, { signal: AbortSignal.timeout(probe.timeoutSeconds ? probe.timeoutSeconds * 1000 : 5000) });
      expect(res.status, `${probe.httpGet.path}: ${await res.text()}`).toBe(200);
    }
    server.child.kill('SIGTERM');
    // The kubelet kills the pod this long after preStop ends; the process must be gone by then.
    const boundMs = (deployment.spec.template.spec.terminationGracePeriodSeconds - container.lifecycle.preStop.sleep.seconds) * 1000;
    const code = await Promise.race([server.exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), boundMs))]);
    expect(code, server.output()).toBe(0);
  });
});
