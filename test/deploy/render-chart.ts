import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { ensureHelm } from './helm-binary.js';

const run = promisify(execFile);

export const chartDir = resolve('deploy/helm/handover');
/** The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) is 1.30; render for a current one. */
export const kubeVersion = '1.33.0';
export const releaseName = 'shop';
export const namespace = 'support';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: any;
}

export interface Rendered {
  objects: K8sObject[];
  byKind(kind: string): K8sObject[];
  one(kind: string): K8sObject;
}

/** The values every install needs (rendering fails without a database and an admin token). */
export const requiredValues = {
  secret: {
    values: {
      DATABASE_URL: 'postgres://handover@db.example.internal:5432/handover',
      HANDOVER_ADMIN_TOKEN: 'token-for-tests-only',
      HANDOVER_SECRET_KEYS: `chart:${Buffer.alloc(32, 3).toString('base64')}`,
    },
  },
};

/** `helm template` with the given values (written as JSON, which is YAML), parsed into objects. */
export async function renderChart(values: object, extraArgs: string[] = []): Promise<Rendered> {
  const helm = await ensureHelm();
  const dir = await mkdtemp(join(tmpdir(), 'handover-chart-'));
  try {
    const valuesFile = join(dir, 'values.json');
    await writeFile(valuesFile, JSON.stringify(values));
    const args = ['template', releaseName, chartDir, '--namespace', namespace, '--kube-version', kubeVersion, '-f', valuesFile, ...extraArgs];
    const { stdout } = await run(helm, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }).catch((err: { stderr?: string; message: string }) => {
      throw new Error(`helm template failed: ${err.stderr || err.message}`);
    });
    const objects: K8sObject[] = [];
    for (const doc of parseAllDocuments(stdout)) {
      if (doc.errors.length) throw new Error(`rendered YAML does not parse: ${doc.errors.map((e) => e.message).join('; ')}`);
      const object = doc.toJS() as K8sObject | null;
      if (object) objects.push(object);
    }
    const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
    return {
      objects,
      byKind,
      one(kind) {
        const found = byKind(kind);
        if (found.length !== 1) throw new Error(`expected one ${kind}, rendered ${found.length}`);
        return found[0]!;
      },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The NOTES.txt an install prints (`helm template` leaves NOTES out; a client-side dry run renders them). */
export async function renderNotes(values: object): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'handover-chart-'));
  try {
    const valuesFile = join(dir, 'values.json');
    await writeFile(valuesFile, JSON.stringify(values));
    // No cluster: a kubeconfig that does not exist keeps helm from reaching for one.
    const result = await helm([
      'install',
      releaseName,
      chartDir,
      '--namespace',
      namespace,
      '--dry-run=client',
      '--kubeconfig',
      join(dir, 'no-kubeconfig'),
      '-f',
      valuesFile,
    ]);
    if (result.code !== 0) throw new Error(`helm install --dry-run failed: ${result.stderr}`);
    const notes = result.stdout.split(/^NOTES:$/m)[1];
    if (notes === undefined) throw new Error('helm install --dry-run printed no NOTES');
    return notes;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs helm and returns its exit status and output instead of throwing (for expected failures). */
export async function helm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = await ensureHelm();
  return run(bin, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code?: number; stdout?: string; stderr?: string }) => ({
      code: typeof err.code === 'number' ? err.code : 1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? '',
    }),
  );
}
