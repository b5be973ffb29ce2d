import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { settings } from '../../src/config/config.js';
import { validateObjectSets, validateObjects } from './kubernetes-schemas.js';
import { chartDir, helm, releaseName, renderChart, requiredValues, type K8sObject, type Rendered } from './render-chart.js';
import { ensureHelm } from './helm-binary.js';
import { valueSets } from './value-sets.js';

/**
 * The Helm chart, rendered by a real helm (4.x) with several value sets, every object checked against the
 * Kubernetes schemas (and the KEDA / Prometheus Operator CRD schemas), and the settings that make graceful
 * shutdown, health checking and migrations work asserted one by one. Autoscaling, disruptions and
 * monitoring: chart-scaling.test.ts.
 */
const rendered: Record<string, Rendered> = {};
let problems: Record<string, string[]> = {};

beforeAll(async () => {
  await ensureHelm(); // the first run on a machine fetches it (see helm-binary.ts)
  for (const [name, values] of Object.entries(valueSets)) rendered[name] = await renderChart(values);
  problems = validateObjectSets(Object.fromEntries(Object.entries(rendered).map(([name, r]) => [name, r.objects])));
}, 300_000);

describe('the chart', () => {
  it('passes helm lint --strict', async () => {
    const result = await helm([
      'lint',
      '--strict',
      chartDir,
      '--set',
      `secret.values.DATABASE_URL=${requiredValues.secret.values.DATABASE_URL}`,
      '--set',
      'secret.values.HANDOVER_ADMIN_TOKEN=t',
      '--set',
      `secret.values.HANDOVER_SECRET_KEYS=${requiredValues.secret.values.HANDOVER_SECRET_KEYS}`,
    ]);
    expect(result.stderr + result.stdout).toContain('0 chart(s) failed');
    expect(result.code).toBe(0);
  });

  it.each(Object.keys(valueSets))('renders objects that are valid for Kubernetes 1.33 (%s)', (name) => {
    expect(rendered[name]!.objects.length).toBeGreaterThan(0);
    expect(problems[name]).toEqual([]);
  });

  it('catches invalid and unknown fields (the validation can fail)', () => {
    const wrongType = structuredClone(rendered.defaults!.one('Deployment'));
    wrongType.spec.template.spec.containers[0].ports[0].containerPort = 'http';
    const misspelt = structuredClone(rendered['HPA on']!.one('HorizontalPodAutoscaler'));
    misspelt.spec.behavior.scaleUp.stabilisationWindowSeconds = 0;
    const found = validateObjects([wrongType, misspelt, { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }]).join('\n');
    expect(found).toMatch(/Deployment\/shop-handover: \/spec\/template\/spec\/containers\/0\/ports\/0\/containerPort must be integer/);
    expect(found).toMatch(/HorizontalPodAutoscaler\/shop-handover: .*stabilisationWindowSeconds/);
    expect(found).toMatch(/no schema known for example.com\/v1\/Widget/);
  });

  it('documents every value with a comment (Kubernetes structures passed through as a whole: on their key)', async () => {
    const lines = (await readFile(`${chartDir}/values.yaml`, 'utf8')).split('\n');
    const passedThrough = new Set([
      'resources',
      'podSecurityContext',
      'securityContext',
      'topologySpreadConstraints',
      'env',
      'values',
      'podAnnotations',
      'podLabels',
      'nodeSelector',
      'tolerations',
      'affinity',
      'annotations',
      'labels',
      'groups',
      'imagePullSecrets',
    ]);
    const parents: Array<{ indent: number; key: string }> = [];
    const undocumented: string[] = [];
    lines.forEach((line, i) => {
      const key = /^(\s*)([A-Za-z_][\w.-]*):/.exec(line);
      if (!key) return;
      const indent = key[1]!.length;
      while (parents.length && parents.at(-1)!.indent >= indent) parents.pop();
      const inside = parents.some((p) => passedThrough.has(p.key));
      parents.push({ indent, key: key[2]! });
      if (!inside && !/^\s*#/.test(lines[i - 1] ?? '')) undocumented.push(`${i + 1}: ${line.trim()}`);
    });
    expect(undocumented).toEqual([]);
  });

  it('renders for Kubernetes 1.30 and refuses older clusters (the preStop sleep action needs 1.30)', async () => {
    const base = ['template', releaseName, chartDir, '--set', 'secret.existingSecret=s'];
    expect((await helm([...base, '--kube-version', '1.30.0'])).code).toBe(0);
    const old = await helm([...base, '--kube-version', '1.29.9']);
    expect(old.code).not.toBe(0);
    expect(old.stderr).toMatch(/kubeVersion/i);
  });

  it('refuses misspelt or mistyped values (values.schema.json) instead of ignoring them', async () => {
    const base = ['template', releaseName, chartDir, '--set', 'secret.existingSecret=s'];
    const misspelt = await helm([...base, '--set', 'autoscaling.enable=true']);
    expect(misspelt.code).not.toBe(0);
    expect(misspelt.stderr).toMatch(/additional properties 'enable' not allowed/);
    const mistyped = await helm([...base, '--set-string', 'shutdown.graceMs=fifteen']);
    expect(mistyped.code).not.toBe(0);
    expect(mistyped.stderr).toMatch(/shutdown\/graceMs/);
  });

  it('renders which objects for which values', () => {
    const kinds = (name: string) => rendered[name]!.objects.map((o) => o.kind).sort();
    expect(kinds('defaults')).toEqual(['Deployment', 'Job', 'PodDisruptionBudget', 'Secret', 'Service']);
    expect(kinds('HPA on')).toContain('HorizontalPodAutoscaler');
    expect(kinds('HPA on')).not.toContain('ScaledObject');
    expect(kinds('KEDA instead of HPA')).toContain('ScaledObject');
    expect(kinds('KEDA instead of HPA')).not.toContain('HorizontalPodAutoscaler');
    expect(kinds('monitoring on')).toEqual(expect.arrayContaining(['ServiceMonitor', 'PrometheusRule']));
    expect(kinds('existing secret, everything on')).not.toContain('Secret');
    for (const object of rendered.defaults!.objects) expect(object.metadata.name).toMatch(new RegExp(`^${releaseName}-handover`));
  });
});

describe('the Deployment', () => {
  const deployment = () => rendered.defaults!.one('Deployment');
  const container = () => deployment().spec.template.spec.containers[0];
  const env = (object: K8sObject) =>
    Object.fromEntries((object.spec.template.spec.containers[0].env as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]));

  it('checks liveness on /healthz and readiness on /readyz, on the port the service listens on', () => {
    const c = container();
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    const http = c.ports.find((p: { name: string }) => p.name === 'http');
    expect(String(http.containerPort)).toBe(env(deployment()).PORT);
    expect(env(deployment()).HOST).toBe('0.0.0.0');
  });

  it('gives the pod longer to stop than preStop + the shutdown grace + the process own 5 s', async () => {
    const custom = await renderChart({ ...requiredValues, shutdown: { preStopSleepSeconds: 20, graceMs: 45_500, marginSeconds: 1 } });
    for (const d of [deployment(), custom.one('Deployment')]) {
      const preStop = d.spec.template.spec.containers[0].lifecycle.preStop.sleep.seconds as number;
      const graceMs = Number(env(d).HANDOVER_SHUTDOWN_GRACE_MS);
      expect(preStop).toBeGreaterThan(0);
      expect(d.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(preStop + graceMs / 1000 + 5);
    }
    expect(env(custom.one('Deployment')).HANDOVER_SHUTDOWN_GRACE_MS).toBe('45500');
  });

  it('runs as non-root on a read-only root filesystem, with resources set', () => {
    const d = deployment();
    expect(d.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
    expect(container().securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(container().volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    expect(container().resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container().resources.limits.memory).toEqual(expect.any(String));
    const job = rendered.defaults!.one('Job');
    expect(job.spec.template.spec.containers[0].resources.requests).toBeDefined();
    expect(job.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem).toBe(true);
  });

  it('sizes the V8 heap below the memory limit, and injects no service-link variables', () => {
    const heapMiB = Number(/--max-old-space-size=(\d+)/.exec(env(deployment()).NODE_OPTIONS ?? '')?.[1]);
    const limit = /^(\d+)Mi$/.exec(container().resources.limits.memory)!;
    expect(heapMiB).toBeGreaterThan(0);
    expect(heapMiB).toBeLessThan(Number(limit[1]));
    expect(deployment().spec.template.spec.enableServiceLinks).toBe(false);
  });

  it('never runs a moving image tag', async () => {
    expect(container().image).toBe('handover:0.1.0');
    const result = await helm([
      'template',
      releaseName,
      chartDir,
      '--set',
      'image.tag=latest',
      '--set',
      'secret.values.DATABASE_URL=postgres://x/y',
      '--set',
      'secret.values.HANDOVER_ADMIN_TOKEN=t',
      '--set',
      `secret.values.HANDOVER_SECRET_KEYS=${requiredValues.secret.values.HANDOVER_SECRET_KEYS}`,
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('image.tag must name a release');
  });

  it('passes only settings the service knows, and takes secrets from the Secret', async () => {
    const values = parse(await readFile(`${chartDir}/values.yaml`, 'utf8')) as { env: Record<string, unknown>; secret: { values: Record<string, unknown> } };
    // NODE_OPTIONS is Node's own (the heap size, from nodeHeapMiB); everything else must be a setting.
    const known = new Set([...Object.values(settings).map((s) => s.env), 'NODE_OPTIONS']);
    for (const name of [...Object.keys(env(deployment())), ...Object.keys(values.secret.values)])
      expect(known, `${name} is not a setting of the service`).toContain(name);
    expect(container().envFrom).toEqual([{ secretRef: { name: `${releaseName}-handover-secrets` } }]);
    const secret = rendered.defaults!.one('Secret');
    expect(secret.stringData).toEqual(requiredValues.secret.values);
    expect(rendered['existing secret, everything on']!.one('Deployment').spec.template.spec.containers[0].envFrom).toEqual([
      { secretRef: { name: 'handover-prod' } },
    ]);
  });

  it('refuses to render without a database, an admin token or the keys for connector credentials', async () => {
    const noDatabase = await helm(['template', releaseName, chartDir]);
    expect(noDatabase.code).not.toBe(0);
    expect(noDatabase.stderr).toContain('secret.values.DATABASE_URL is required');
    const noToken = await helm(['template', releaseName, chartDir, '--set', 'secret.values.DATABASE_URL=postgres://x/y']);
    expect(noToken.stderr).toContain('HANDOVER_ADMIN_TOKEN is required');
    const noKeys = await helm([
      'template',
      releaseName,
      chartDir,
      '--set',
      'secret.values.DATABASE_URL=postgres://x/y',
      '--set',
      'secret.values.HANDOVER_ADMIN_TOKEN=t',
    ]);
    expect(noKeys.code).not.toBe(0);
    expect(noKeys.stderr).toContain('HANDOVER_SECRET_KEYS is required');
  });

  it('leaves the replica count to the autoscaler when autoscaling is on', () => {
    expect(deployment().spec.replicas).toBe(2);
    expect(rendered['HPA on']!.one('Deployment').spec.replicas).toBeUndefined();
  });
});

describe('migrations', () => {
  it('get no traffic: the Service and the PodDisruptionBudget select the service pods only', () => {
    const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
    const podLabels = (o: K8sObject) => o.spec.template.metadata.labels as Record<string, string>;
    const service = rendered.defaults!.one('Service');
    const pdb = rendered.defaults!.one('PodDisruptionBudget');
    for (const selector of [service.spec.selector, pdb.spec.selector.matchLabels, rendered.defaults!.one('Deployment').spec.selector.matchLabels]) {
      expect(matches(selector, podLabels(rendered.defaults!.one('Deployment')))).toBe(true);
      expect(matches(selector, podLabels(rendered.defaults!.one('Job')))).toBe(false);
    }
  });

  it('run `handover migrate` in a pre-install/pre-upgrade hook, after the Secret they read', () => {
    const job = rendered.defaults!.one('Job');
    expect(job.metadata.annotations!['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(job.spec.template.spec.containers[0].args).toEqual(['migrate']);
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
    const secret = rendered.defaults!.one('Secret');
    expect(secret.metadata.annotations!['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(Number(secret.metadata.annotations!['helm.sh/hook-weight'])).toBeLessThan(Number(job.metadata.annotations!['helm.sh/hook-weight']));
    expect(rendered.defaults!.one('Deployment').spec.template.spec.containers[0].args).toEqual(['start']);
  });
});
