import { dirname, resolve } from 'node:path';
import ts from 'typescript';
import { Secret, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import type { K8sObject } from './render-chart.js';

/**
 * Validation of rendered objects against the Kubernetes API schemas, offline.
 *
 * The schemas come from `kubernetes-models` 4.5 (generated from the Kubernetes OpenAPI of a release with
 * the 1.33 API: container `lifecycle.stopSignal`, image volumes, the preStop `sleep` action), and from the
 * CRDs of KEDA and the Prometheus Operator in `@kubernetes-models/keda` and `.../prometheus-operator`.
 * Those validators check types, enums, required fields and formats, but — like the OpenAPI they come
 * from — accept unknown fields. A misspelt field (`readinesProbe`) would then pass and be silently
 * dropped by the API server, so a second check types each object as the same package's declaration in
 * a TypeScript program, whose excess-property check names any field the schema does not have.
 */
const kinds: Record<string, { model: new (data: any) => { validate(): void }; typeModule: string; typeName: string }> = {
  'v1/Service': { model: Service, typeModule: 'kubernetes-models/v1/Service', typeName: 'IService' },
  'v1/Secret': { model: Secret, typeModule: 'kubernetes-models/v1/Secret', typeName: 'ISecret' },
  'apps/v1/Deployment': { model: Deployment, typeModule: 'kubernetes-models/apps/v1/Deployment', typeName: 'IDeployment' },
  'batch/v1/Job': { model: Job, typeModule: 'kubernetes-models/batch/v1/Job', typeName: 'IJob' },
  'autoscaling/v2/HorizontalPodAutoscaler': {
    model: HorizontalPodAutoscaler,
    typeModule: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler',
    typeName: 'IHorizontalPodAutoscaler',
  },
  'policy/v1/PodDisruptionBudget': {
    model: PodDisruptionBudget,
    typeModule: 'kubernetes-models/policy/v1/PodDisruptionBudget',
    typeName: 'IPodDisruptionBudget',
  },
  'keda.sh/v1alpha1/ScaledObject': { model: ScaledObject, typeModule: '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject', typeName: 'IScaledObject' },
  'monitoring.coreos.com/v1/ServiceMonitor': {
    model: ServiceMonitor,
    typeModule: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor',
    typeName: 'IServiceMonitor',
  },
  'monitoring.coreos.com/v1/PrometheusRule': {
    model: PrometheusRule,
    typeModule: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule',
    typeName: 'IPrometheusRule',
  },
};

const kindKey = (o: K8sObject) => `${o.apiVersion}/${o.kind}`;

/**
 * Problems of each set of objects, as "Kind/name: problem" lines; empty when every object is valid.
 * Sets are checked together because building the TypeScript program is the slow part (seconds).
 */
export function validateObjectSets(sets: Record<string, K8sObject[]>): Record<string, string[]> {
  const names = Object.keys(sets);
  const all = names.flatMap((name) => sets[name]!.map((object) => ({ name, object })));
  const unknown = unknownFields(all.map((a) => a.object));
  return Object.fromEntries(
    names.map((name) => [name, [...schemaProblems(sets[name]!), ...unknown.filter((u) => all[u.index]!.name === name).map((u) => u.problem)]]),
  );
}

export function validateObjects(objects: K8sObject[]): string[] {
  return validateObjectSets({ objects }).objects!;
}

function schemaProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const object of objects) {
    const kind = kinds[kindKey(object)];
    const label = `${object.kind}/${object.metadata?.name}`;
    if (!kind) {
      problems.push(`${label}: no schema known for ${kindKey(object)} (add it to test/deploy/kubernetes-schemas.ts)`);
      continue;
    }
    try {
      new kind.model(object).validate();
    } catch (err) {
      const errors = (err as { errors?: Array<{ instancePath: string; message?: string }> }).errors;
      if (errors?.length) for (const e of errors) problems.push(`${label}: ${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
      else problems.push(`${label}: ${(err as Error).message}`);
    }
  }
  return problems;
}

/** Fields the API does not know, found by TypeScript's excess-property check on the typed objects. */
function unknownFields(objects: K8sObject[]): Array<{ index: number; problem: string }> {
  const known = objects.map((object, index) => ({ object, index })).filter(({ object }) => kinds[kindKey(object)]);
  if (known.length === 0) return [];
  // The program lives beside this file so that module resolution finds node_modules.
  const fileName = resolve(dirname(new URL(import.meta.url).pathname), '__rendered-objects__.ts');
  const imports = [...new Set(known.map(({ object }) => kindKey(object)))].map(
    (key) => `import type { ${kinds[key]!.typeName} } from '${kinds[key]!.typeModule}';`,
  );
  const declarations = known.map(
    ({ object, index }) =>
      `// #${index} ${object.kind}/${object.metadata?.name}\nexport const object${index}: ${kinds[kindKey(object)]!.typeName} = ${JSON.stringify(object, null, 2)};`,
  );
  const source = [...imports, ...declarations].join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (name) => (name === fileName ? source : readFile(name));
  host.fileExists = (
    (exists) => (name: string) =>
      name === fileName || exists(name)
  )(host.fileExists.bind(host));
  host.getSourceFile = (name, version, onError, create) =>
    name === fileName ? ts.createSourceFile(name, source, version) : getSourceFile(name, version, onError, create);
  const program = ts.createProgram([fileName], options, host);
  const sourceFile = program.getSourceFile(fileName)!;
  const lines = source.split('\n');
  // TypeScript reports the first problem in each object; fixing it shows the next.
  return ts.getPreEmitDiagnostics(program, sourceFile).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : 0;
    const owner = /^\/\/ #(\d+) (.*)$/.exec(
      lines
        .slice(0, line + 1)
        .reverse()
        .find((l) => l.startsWith('// #')) ?? '',
    );
    return {
      index: Number(owner?.[1] ?? -1),
      problem: `${owner?.[2] ?? '?'}: ${lines[line]!.trim()} — ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`,
    };
  });
}
