/**
 * The pieces every benchmark uses: child processes for the service (built, as in production), the fake
 * helpdesk and the open-loop load generator, and the setup of a tenant with handovers to load.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { GeneratorResult, GeneratorSpec } from './load-generator.js';

export const STEP_MS = Number(process.env.BENCH_STEP_MS ?? 6000);
export const DATABASE = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const ADMIN = `bench-admin-${randomBytes(8).toString('hex')}`;
export const SECRET = 'whsec_' + randomBytes(32).toString('base64');
export const HANDOVERS = 100;
export const children: ChildProcess[] = [];

export function spawnNode(args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

export function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.stderr!.on('data', (c: Buffer) => (err += c));
    // 'close' comes after stdout has been read to its end, unlike 'exit'.
    child.once('close', (code) => reject(new Error(`exited ${code} before answering: ${err.slice(-500)}`)));
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function waitHealthy(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not become ready`);
}

export interface Service {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startService(schemaUrl: string, env: Record<string, string>): Promise<Service> {
  const port = await freePort();
  const child = spawnNode(['dist/cli/main.js', 'start'], {
    DATABASE_URL: schemaUrl,
    HANDOVER_ADMIN_TOKEN: ADMIN,
    // Server mode needs a key for connector credentials; the benchmark's connectors hold nothing secret.
    HANDOVER_SECRET_KEYS: `bench:${Buffer.alloc(32, 1).toString('base64')}`,
    PORT: String(port),
    HOST: '127.0.0.1',
    HANDOVER_LOG_LEVEL: 'error',
    HANDOVER_DEMO: 'false',
    // The bench's helpdesk and bots are local: allow what production refuses.
    HANDOVER_ALLOW_PRIVATE_URLS: 'true',
    HANDOVER_ALLOW_HTTP_URLS: 'true',
    HANDOVER_DB_POOL_SIZE: '20',
    ...env,
  });
  child.stderr!.on('data', (c: Buffer) => process.stderr.write(`[service] ${c}`));
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(url);
  return {
    url,
    child,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 20_000).unref();
      }),
  };
}

export async function generate(spec: Omit<GeneratorSpec, 'connections' | 'drainMs'> & { connections?: number }): Promise<GeneratorResult> {
  const child = spawnNode(['--import', 'tsx', 'bench/load-generator.ts', JSON.stringify({ connections: Number(process.env.BENCH_CONNECTIONS ?? 256), drainMs: 10_000, ...spec })]);
  return JSON.parse(await firstLine(child)) as GeneratorResult;
}

export async function api(url: string, method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? null : JSON.stringify(body) });
  const json = (await res.json()) as any;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

export async function setUpTenant(url: string, helpdeskUrl: string, name: string, handovers: number) {
  const tenant = await api(url, 'POST', '/v1/admin/tenants', ADMIN, { name });
  const connector = await api(url, 'POST', `/v1/admin/tenants/${tenant.id}/connectors`, ADMIN, { type: 'webhook', name, config: { url: helpdeskUrl, secret: SECRET } });
  await api(url, 'POST', `/v1/admin/tenants/${tenant.id}/queues`, ADMIN, { name: 'q', connectorId: connector.id, maxWaiting: 100000, noAnswerTimeoutSeconds: 86400 });
  const ids: string[] = [];
  for (let i = 0; i < handovers; i++) ids.push((await api(url, 'POST', '/v1/handovers', tenant.apiKey, { conversationId: `${name}-${i}`, queue: 'q', user: { id: `u${i}` } })).id);
  return { apiKey: tenant.apiKey as string, handovers: ids };
}

export async function helpdeskStats(url: string, path = '/fast'): Promise<{ unique: number; duplicates: number; deliveryLatencies: number[] }> {
  return (await (await fetch(`${url}/stats?path=${path}`)).json()) as any;
}

export const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]! : null);

/** Waits until the helpdesk has `expected` distinct messages (or the time is up); answers how many it has. */
export async function drainDeliveries(helpdeskUrl: string, expected: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let stats = await helpdeskStats(helpdeskUrl);
  while (stats.unique < expected && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    stats = await helpdeskStats(helpdeskUrl);
  }
  return stats.unique;
}
