import { existsSync, readdirSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startTestService } from '../support/test-service.js';
import { validateObjects } from './kubernetes-schemas.js';
import { chartDir, helm, namespace, releaseName, renderChart, renderNotes, requiredValues, type K8sObject, type Rendered } from './render-chart.js';
import { valueSets, withMonitoring } from './value-sets.js';

/**
 * The chart's autoscaling (HPA or KEDA on the in-flight requests a running instance exports), its
 * PodDisruptionBudget, monitoring objects and install notes.
 */
const rendered: Record<string, Rendered> = {};
/** The alert rules' source (deploy/prometheus/) and their copies inside the chart. */
const ruleFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.rules.yml')) : []);
const ruleSources = ruleFiles('deploy/prometheus');
const ruleCopies = ruleFiles(`${chartDir}/files/prometheus-rules`);
/** Names of the metrics a running instance exports on GET /metrics. */
let exported: string[] = [];

beforeAll(async () => {
  for (const [name, values] of Object.entries(valueSets)) rendered[name] = await renderChart(values);
  const t = await startTestService('pg');
  try {
    const res = await fetch(`${t.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
    exported = [...(await res.text()).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
  } finally {
    await t.close();
  }
}, 300_000);

describe('autoscaling', () => {
  it('HPA: autoscaling/v2 on the per-pod in-flight requests the service exports, fast up and slow down', () => {
    const hpa = rendered['HPA on']!.one('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: `${releaseName}-handover` });
    expect(hpa.spec.metrics).toHaveLength(1);
    const [metric] = hpa.spec.metrics;
    expect(metric.type).toBe('Pods');
    expect(metric.pods.target.type).toBe('AverageValue');
    expect(exported).toContain(metric.pods.metric.name);
    const { scaleUp, scaleDown } = hpa.spec.behavior;
    expect(scaleUp.stabilizationWindowSeconds).toBe(0);
    expect(scaleDown.stabilizationWindowSeconds).toBeGreaterThanOrEqual(300);
    const most = (policies: Array<{ type: string; value: number; periodSeconds: number }>, type: string) =>
      Math.max(...policies.filter((p) => p.type === type).map((p) => p.value / p.periodSeconds));
    expect(most(scaleUp.policies, 'Percent')).toBeGreaterThan(most(scaleDown.policies, 'Percent'));
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
  });

  it('prometheus-adapter example serves the metric under the name the HPA asks for', async () => {
    const adapter = parse(await readFile('deploy/helm/prometheus-adapter-values.yaml', 'utf8')) as {
      rules: { custom: Array<{ seriesQuery: string; name: { as: string }; metricsQuery: string }> };
    };
    const hpa = rendered['HPA on']!.one('HorizontalPodAutoscaler');
    const rule = adapter.rules.custom.find((r) => r.name.as === hpa.spec.metrics[0].pods.metric.name);
    expect(rule).toBeDefined();
    expect(rule!.seriesQuery).toContain(hpa.spec.metrics[0].pods.metric.name);
    expect(rule!.metricsQuery).toContain('<<.LabelMatchers>>');
  });

  it('KEDA: a ScaledObject on the same metric through Prometheus, same behaviour', () => {
    const scaled = rendered['KEDA instead of HPA']!.one('ScaledObject');
    expect(scaled.spec.scaleTargetRef.name).toBe(`${releaseName}-handover`);
    const [trigger] = scaled.spec.triggers;
    expect(trigger.type).toBe('prometheus');
    expect(trigger.metricType).toBe('AverageValue');
    const metric = /^sum\((\w+)\{/.exec(trigger.metadata.query)?.[1];
    expect(exported).toContain(metric);
    expect(trigger.metadata.query).toContain(`namespace="${namespace}"`);
    expect(scaled.spec.advanced.horizontalPodAutoscalerConfig.behavior).toEqual(rendered['HPA on']!.one('HorizontalPodAutoscaler').spec.behavior);
  });

  it('refuses an autoscaler it does not know', async () => {
    const result = await helm([
      'template',
      releaseName,
      chartDir,
      '--set',
      'autoscaling.enabled=true',
      '--set',
      'autoscaling.engine=cpu',
      '--set',
      'secret.existingSecret=s',
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/autoscaling\/engine.*(hpa|keda)/);
  });
});

describe('disruptions and monitoring', () => {
  it('PodDisruptionBudget lets drains proceed and never takes every pod', () => {
    for (const name of ['defaults', 'HPA on']) {
      const { spec } = rendered[name]!.one('PodDisruptionBudget');
      const pods = name === 'defaults' ? rendered[name]!.one('Deployment').spec.replicas : rendered[name]!.one('HorizontalPodAutoscaler').spec.minReplicas;
      expect(spec.minAvailable === undefined || spec.maxUnavailable === undefined).toBe(true);
      if (spec.maxUnavailable !== undefined) {
        expect(typeof spec.maxUnavailable === 'number' ? spec.maxUnavailable : 1).toBeGreaterThanOrEqual(1);
        expect(typeof spec.maxUnavailable === 'number' ? spec.maxUnavailable : 0).toBeLessThan(pods);
      } else {
        expect(spec.minAvailable).toBeLessThan(pods);
      }
      expect(spec.selector.matchLabels).toEqual(rendered[name]!.one('Deployment').spec.selector.matchLabels);
    }
  });

  it('ServiceMonitor scrapes /metrics on the Service port, PrometheusRule carries the rule groups', () => {
    const monitor = rendered['monitoring on']!.one('ServiceMonitor');
    const service = rendered['monitoring on']!.one('Service');
    expect(monitor.spec.endpoints[0]).toMatchObject({ port: service.spec.ports[0].name, path: '/metrics' });
    expect(service.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
    expect(monitor.metadata.labels!.release).toBe('prometheus');
    const rule = rendered['monitoring on']!.one('PrometheusRule');
    expect(rule.spec.groups).toEqual(withMonitoring.monitoring.prometheusRule.groups);
  });

  it('ServiceMonitor sends HANDOVER_METRICS_TOKEN from the Secret once /metrics asks for it', async () => {
    expect(rendered['monitoring on']!.one('ServiceMonitor').spec.endpoints[0].authorization).toBeUndefined();
    const withToken = await renderChart({
      ...requiredValues,
      secret: { values: { ...requiredValues.secret.values, HANDOVER_METRICS_TOKEN: 'scrape-token' } },
      monitoring: { serviceMonitor: { enabled: true } },
    });
    const existing = await renderChart({ secret: { existingSecret: 'handover-prod' }, monitoring: { serviceMonitor: { enabled: true, metricsToken: true } } });
    for (const [monitor, secret] of [
      [withToken.one('ServiceMonitor'), withToken.one('Secret').metadata.name],
      [existing.one('ServiceMonitor'), 'handover-prod'],
    ] as const) {
      expect(monitor.spec.endpoints[0].authorization).toEqual({ type: 'Bearer', credentials: { name: secret, key: 'HANDOVER_METRICS_TOKEN' } });
      expect(validateObjects([monitor])).toEqual([]);
    }
  });

  it('the alert rules of deploy/prometheus/ make a valid PrometheusRule', async () => {
    const groups: unknown[] = [];
    for (const file of ruleSources) groups.push(...((parse(await readFile(`deploy/prometheus/${file}`, 'utf8')) as { groups?: unknown[] }).groups ?? []));
    expect(groups.length).toBeGreaterThan(0);
    const rule = (await renderChart({ ...requiredValues, monitoring: { prometheusRule: { enabled: true, groups } } })).one('PrometheusRule');
    expect(validateObjects([rule])).toEqual([]);
  });

  it('the chart carries exact copies of the deploy/prometheus/ rule files, and only those', async () => {
    expect(ruleSources.length).toBeGreaterThan(0);
    expect([...ruleCopies].sort()).toEqual([...ruleSources].sort());
    for (const file of ruleCopies)
      expect(await readFile(`${chartDir}/files/prometheus-rules/${file}`, 'utf8'), file).toBe(await readFile(`deploy/prometheus/${file}`, 'utf8'));
  });

  it('PrometheusRule takes the groups of files/prometheus-rules/*.rules.yml when none are given', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'handover-chart-copy-'));
    try {
      const copy = join(dir, 'handover');
      await cp(chartDir, copy, { recursive: true });
      // Only the files written here: the chart's own copy of deploy/prometheus/ is checked below.
      for (const file of ruleCopies) await rm(join(copy, 'files/prometheus-rules', file));
      const groups = (name: string) => `groups:\n  - name: ${name}\n    rules:\n      - alert: ${name}Alert\n        expr: vector(1)\n`;
      await writeFile(join(copy, 'files/prometheus-rules/a.rules.yml'), groups('first'));
      await writeFile(join(copy, 'files/prometheus-rules/b.rules.yml'), groups('second'));
      const result = await helm([
        'template',
        releaseName,
        copy,
        '--set',
        'secret.existingSecret=s',
        '--set',
        'monitoring.prometheusRule.enabled=true',
        '--show-only',
        'templates/prometheusrule.yaml',
      ]);
      expect(result.code, result.stderr).toBe(0);
      const rule = parse(result.stdout) as K8sObject;
      expect(rule.spec.groups.map((g: { name: string }) => g.name)).toEqual(['first', 'second']);
      expect(validateObjects([rule])).toEqual([]);
      // No groups at all: no PrometheusRule rather than an empty one.
      expect(rendered.defaults!.byKind('PrometheusRule')).toEqual([]);
      for (const file of ['a.rules.yml', 'b.rules.yml']) await rm(join(copy, 'files/prometheus-rules', file));
      const none = await helm(['template', releaseName, copy, '--set', 'secret.existingSecret=s', '--set', 'monitoring.prometheusRule.enabled=true']);
      expect(none.code, none.stderr).toBe(0);
      expect(none.stdout).not.toContain('kind: PrometheusRule');
      // The chart as shipped: the service's own alert rules.
      const shipped = await helm([
        'template',
        releaseName,
        chartDir,
        '--set',
        'secret.existingSecret=s',
        '--set',
        'monitoring.prometheusRule.enabled=true',
        '--show-only',
        'templates/prometheusrule.yaml',
      ]);
      expect(shipped.code, shipped.stderr).toBe(0);
      expect((parse(shipped.stdout) as K8sObject).spec.groups.map((g: { name: string }) => g.name)).toEqual(['handover']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('prints how to check the release, and warns when live events cannot cross pods', async () => {
    const notes = await renderNotes(requiredValues);
    expect(notes).toContain(`rollout status deployment/${releaseName}-handover`);
    expect(notes).toContain('REDIS_URL is empty');
    const withRedis = await renderNotes({
      ...requiredValues,
      secret: { values: { ...requiredValues.secret.values, REDIS_URL: 'redis://cache:6379' } },
      autoscaling: { enabled: true },
    });
    expect(withRedis).not.toContain('REDIS_URL is empty');
    expect(withRedis).toContain('custom.metrics.k8s.io');
  });
});
