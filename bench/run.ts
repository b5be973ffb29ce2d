/**
 * `npm run bench`: relay throughput against a bare relay, overload with protection on and off, and a
 * slow helpdesk beside a healthy one — all in one run on this machine, written to bench/results/.
 * Each part runs in its own process: the service (built, as in production, on PostgreSQL), the fake
 * helpdesk, the bare relay and the open-loop load generator.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import pg from 'pg';
import type { GeneratorResult, GeneratorSpec } from './load-generator.js';
import { renderReport, type BenchReport, type Step } from './report.js';

const STEP_MS = Number(process.env.BENCH_STEP_MS ?? 6000);
const DATABASE = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ADMIN = `bench-admin-${randomBytes(8).toString('hex')}`;
const SECRET = 'whsec_' + randomBytes(32).toString('base64');
const HANDOVERS = 100;
const children: ChildProcess[] = [];

function spawnNode(args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

function firstLine(child: ChildProcess): Promise<string> {
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

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitHealthy(url: string, timeoutMs = 60_000): Promise<void> {
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

interface Service {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function startService(schemaUrl: string, env: Record<string, string>): Promise<Service> {
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

async function generate(spec: Omit<GeneratorSpec, 'connections' | 'drainMs'> & { connections?: number }): Promise<GeneratorResult> {
  const child = spawnNode(['--import', 'tsx', 'bench/load-generator.ts', JSON.stringify({ connections: Number(process.env.BENCH_CONNECTIONS ?? 256), drainMs: 10_000, ...spec })]);
  return JSON.parse(await firstLine(child)) as GeneratorResult;
}

async function api(url: string, method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? null : JSON.stringify(body) });
  const json = (await res.json()) as any;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function setUpTenant(url: string, helpdeskUrl: string, name: string, handovers: number) {
  const tenant = await api(url, 'POST', '/v1/admin/tenants', ADMIN, { name });
  const connector = await api(url, 'POST', `/v1/admin/tenants/${tenant.id}/connectors`, ADMIN, { type: 'webhook', name, config: { url: helpdeskUrl, secret: SECRET } });
  await api(url, 'POST', `/v1/admin/tenants/${tenant.id}/queues`, ADMIN, { name: 'q', connectorId: connector.id, maxWaiting: 100000, noAnswerTimeoutSeconds: 86400 });
  const ids: string[] = [];
  for (let i = 0; i < handovers; i++) ids.push((await api(url, 'POST', '/v1/handovers', tenant.apiKey, { conversationId: `${name}-${i}`, queue: 'q', user: { id: `u${i}` } })).id);
  return { apiKey: tenant.apiKey as string, handovers: ids };
}

async function helpdeskStats(url: string, path = '/fast'): Promise<{ unique: number; duplicates: number; deliveryLatencies: number[] }> {
  return (await (await fetch(`${url}/stats?path=${path}`)).json()) as any;
}

const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]! : null);

/** Samples the service's own metrics during a step: peak memory, event-loop lag, admission state. */
async function sampleService(url: string, every: number, until: Promise<unknown>) {
  let rss = 0;
  let heap = 0;
  let lagMs = 0;
  let minLimit = Infinity;
  let maxWaiting = 0;
  let done = false;
  void until.finally(() => (done = true));
  const read = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  while (!done) {
    try {
      const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
      rss = Math.max(rss, read(text, 'handover_process_process_resident_memory_bytes') || 0);
      heap = Math.max(heap, read(text, 'handover_heap_used_bytes') || 0);
      lagMs = Math.max(lagMs, (read(text, 'handover_event_loop_delay_seconds') || 0) * 1000);
      const limit = read(text, 'handover_admission_limit');
      if (Number.isFinite(limit)) minLimit = Math.min(minLimit, limit);
      maxWaiting = Math.max(maxWaiting, read(text, 'handover_admission_waiting') || 0);
    } catch {
      // a saturated instance may not answer in time; the peak is what we got
    }
    await new Promise((r) => setTimeout(r, every));
  }
  return { rssMb: Math.round(rss / 1048576), heapMb: Math.round(heap / 1048576), eventLoopLagMs: Math.round(lagMs), minLimit: Number.isFinite(minLimit) ? minLimit : undefined, maxWaiting };
}

async function lostMessages(db: pg.Pool, schema: string, acceptedIds: string[]): Promise<number> {
  if (acceptedIds.length === 0) return 0;
  const { rows } = await db.query(`select count(*)::int as n from ${schema}.messages where client_id = any($1::text[])`, [acceptedIds]);
  return acceptedIds.length - rows[0].n;
}

async function drainDeliveries(helpdeskUrl: string, expected: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let stats = await helpdeskStats(helpdeskUrl);
  while (stats.unique < expected && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    stats = await helpdeskStats(helpdeskUrl);
  }
  return stats.unique;
}

function summarize(name: string, offered: number, r: GeneratorResult, extra: Partial<Step> = {}): Step {
  const seconds = STEP_MS / 1000;
  return {
    name,
    offeredPerSecond: offered,
    acceptedPerSecond: Math.round(r.okLatencies.length / seconds),
    goodputPerSecond: Math.round(r.okLatencies.filter((l) => l <= 1000).length / seconds),
    acceptedP50Ms: round(pct(r.okLatencies, 50)),
    acceptedP99Ms: round(pct(r.okLatencies, 99)),
    rejectedP99Ms: round(pct(r.rejectLatencies, 99)),
    codes: r.codes,
    timedOut: r.timedOut,
    generatorLagP99Ms: r.sendLagP99Ms,
    ...extra,
  };
}
const round = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);

async function main() {
  mkdirSync('bench/results', { recursive: true });
  const startedAt = Date.now();
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const schemas = [schema];
  const db = new pg.Pool({ connectionString: DATABASE, max: 2 });
  await db.query(`create schema ${schema}`);
  const schemaUrl = `${DATABASE}${DATABASE.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const report: BenchReport = { machine: `${(await import('node:os')).cpus().length} cores, Node ${process.version}`, stepMs: STEP_MS, relay: [], bare: [], overload: [], slow: [], notes: [] };
  try {
    const helpdesk = spawnNode(['--import', 'tsx', 'bench/helpdesk-server.ts', '0', SECRET, '5000']);
    const helpdeskUrl = `http://127.0.0.1:${JSON.parse(await firstLine(helpdesk)).port}`;
    const bare = spawnNode(['--import', 'tsx', 'bench/bare-relay.ts', '0', `${helpdeskUrl}/fast`, SECRET]);
    const bareUrl = `http://127.0.0.1:${JSON.parse(await firstLine(bare)).port}`;

    // 1. Relay: bot → service → helpdesk, against the bare relay, at rising rates.
    let service = await startService(schemaUrl, {});
    const a = await setUpTenant(service.url, `${helpdeskUrl}/fast`, 'relay', HANDOVERS);
    const only = process.env.BENCH_ONLY;
    const rates = only === 'overload' ? [] : (process.env.BENCH_RATES ?? '250,500,1000,1500,2000').split(',').map(Number);
    let run = 0;
    for (const rate of rates) {
      await fetch(`${helpdeskUrl}/reset`, { method: 'POST' });
      const prefix = `r${run++}`;
      const r = await generate({ baseUrl: service.url, paths: a.handovers.map((h) => `/v1/handovers/${h}/messages`), body: '{"id":"{id}","text":"relay {i}"}', headers: { authorization: `Bearer ${a.apiKey}`, 'content-type': 'application/json' }, ratePerSecond: rate, durationMs: STEP_MS, idPrefix: prefix });
      const t0 = Date.now();
      const delivered = await drainDeliveries(helpdeskUrl, r.acceptedIds.length, 30_000);
      const stats = await helpdeskStats(helpdeskUrl);
      const lat = stats.deliveryLatencies;
      report.relay.push(
        summarize(`service @${rate}/s`, rate, r, {
          deliveredPerSecond: Math.round(delivered / (STEP_MS / 1000 + (Date.now() - t0) / 1000)),
          deliveryP50Ms: pct(lat, 50),
          deliveryP99Ms: pct(lat, 99),
          lost: await lostMessages(db, schema, r.acceptedIds),
          undelivered: r.acceptedIds.length - delivered,
        }),
      );
      const b = await generate({ baseUrl: bareUrl, paths: ['/relay'], body: '{"id":"{id}","text":"bare {i}"}', headers: { 'content-type': 'application/json' }, ratePerSecond: rate, durationMs: STEP_MS, idPrefix: `b${run}` });
      report.bare.push(summarize(`bare relay @${rate}/s`, rate, b));
      console.log(`relay ${rate}/s: service accepted ${report.relay.at(-1)!.acceptedPerSecond}/s p99 ${report.relay.at(-1)!.acceptedP99Ms} ms, delivery p99 ${report.relay.at(-1)!.deliveryP99Ms} ms; bare ${report.bare.at(-1)!.acceptedPerSecond}/s p99 ${report.bare.at(-1)!.acceptedP99Ms} ms`);
    }
    const meets = (s: Step) => s.acceptedPerSecond >= s.offeredPerSecond * 0.99 && (s.acceptedP99Ms ?? Infinity) <= 250;
    // Two capacities: end to end (accepted and delivered within 1 s at p99), which is what the relay
    // ratio compares with the bare relay; and the API's alone (accepted within 250 ms at p99), which is
    // what overload protection defends, so the overload factors are taken from it.
    report.capacityPerSecond = Math.max(rates[0] ?? 0, ...report.relay.filter((s) => meets(s) && (s.deliveryP99Ms ?? Infinity) <= 1000).map((s) => s.offeredPerSecond));
    report.bareCapacityPerSecond = Math.max(rates[0] ?? 0, ...report.bare.filter(meets).map((s) => s.offeredPerSecond));
    const capacity = process.env.BENCH_API_CAPACITY ? Number(process.env.BENCH_API_CAPACITY) : Math.max(rates[0]!, ...report.relay.filter(meets).map((s) => s.offeredPerSecond));
    report.apiCapacityPerSecond = capacity;

    // 2. Overload: 0.5×, 1×, 2×, 3× capacity, protection on, then off (same build, one setting).
    for (const protection of only === 'overload' && process.env.BENCH_PROTECTION === 'on' ? [true] : [true, false]) {
      if (!protection) {
        await service.stop();
        service = await startService(schemaUrl, { HANDOVER_ADMISSION: 'false' });
      }
      for (const factor of (process.env.BENCH_FACTORS ?? '0.5,1,2,3').split(',').map(Number)) {
        const rate = Math.round(capacity * factor);
        const prefix = `o${protection ? 'on' : 'off'}${factor}`;
        const gen = generate({ baseUrl: service.url, paths: a.handovers.map((h) => `/v1/handovers/${h}/messages`), body: '{"id":"{id}","text":"overload {i}"}', headers: { authorization: `Bearer ${a.apiKey}`, 'content-type': 'application/json' }, ratePerSecond: rate, durationMs: STEP_MS, idPrefix: prefix });
        const memory = await sampleService(service.url, 250, gen);
        const r = await gen;
        report.overload.push(summarize(`${factor}× protection ${protection ? 'on' : 'off'}`, rate, r, { factor, protection, ...memory, lost: await lostMessages(db, schema, r.acceptedIds) }));
        const s = report.overload.at(-1)!;
        console.log(`overload ${factor}× (${rate}/s) protection ${protection ? 'on' : 'off'}: goodput ${s.goodputPerSecond}/s, p99 ${s.acceptedP99Ms} ms, reject p99 ${s.rejectedP99Ms} ms, rss ${s.rssMb} MB, generator late ${s.generatorLagP99Ms} ms, service loop lag ${s.eventLoopLagMs} ms, limit≥${s.minLimit}, waiting≤${s.maxWaiting}, lost ${s.lost}, answers ${JSON.stringify(s.codes)}`);
        await new Promise((r2) => setTimeout(r2, 2000));
      }
    }
    await service.stop();

    if (only === 'overload') await service.stop();
    else {
      // 3. Slow helpdesk: tenant B's helpdesk answers in 5 s; tenant A's latency must not move. A fresh
      // schema, so the overload runs' backlog (still being delivered) does not blur what is measured.
      const slowSchema = `${schema}_slow`;
      await db.query(`create schema ${slowSchema}`);
      schemas.push(slowSchema);
      service = await startService(`${DATABASE}${DATABASE.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${slowSchema}`)}`, {});
      const a2 = await setUpTenant(service.url, `${helpdeskUrl}/fast`, 'healthy', HANDOVERS);
      const b = await setUpTenant(service.url, `${helpdeskUrl}/slow`, 'slow', 20);
      const healthyRate = Math.round(capacity * 0.5);
      report.notes.push(`Slow helpdesk: the healthy tenant sends ${healthyRate}/s (half the API capacity); the other tenant's helpdesk answers every call after 5 s.`);
      const healthy = (prefix: string) =>
        generate({ baseUrl: service.url, paths: a2.handovers.map((h) => `/v1/handovers/${h}/messages`), body: '{"id":"{id}","text":"healthy {i}"}', headers: { authorization: `Bearer ${a2.apiKey}`, 'content-type': 'application/json' }, ratePerSecond: healthyRate, durationMs: STEP_MS, idPrefix: prefix });
      await fetch(`${helpdeskUrl}/reset`, { method: 'POST' });
      const alone = await healthy('s-alone');
      await drainDeliveries(helpdeskUrl, alone.acceptedIds.length, 20_000);
      const aloneStats = await helpdeskStats(helpdeskUrl);
      report.slow.push(summarize('healthy tenant alone', healthyRate, alone, { deliveryP99Ms: pct(aloneStats.deliveryLatencies, 99), undelivered: alone.acceptedIds.length - aloneStats.unique }));
      await fetch(`${helpdeskUrl}/reset`, { method: 'POST' });
      const [beside, slowSide] = await Promise.all([
        healthy('s-beside'),
        generate({ baseUrl: service.url, paths: b.handovers.map((h) => `/v1/handovers/${h}/messages`), body: '{"id":"{id}","text":"slow {i}"}', headers: { authorization: `Bearer ${b.apiKey}`, 'content-type': 'application/json' }, ratePerSecond: 50, durationMs: STEP_MS, idPrefix: 's-slow' }),
      ]);
      await drainDeliveries(helpdeskUrl, beside.acceptedIds.length, 20_000);
      const besideStats = await helpdeskStats(helpdeskUrl);
      report.slow.push(summarize('healthy tenant beside a 5 s helpdesk', healthyRate, beside, { deliveryP99Ms: pct(besideStats.deliveryLatencies, 99), undelivered: beside.acceptedIds.length - besideStats.unique }));
      report.slow.push(summarize('tenant of the 5 s helpdesk', 50, slowSide));
      await service.stop();
    }
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    for (const name of schemas) await db.query(`drop schema if exists ${name} cascade`).catch(() => {});
    await db.end();
  }
  report.durationSeconds = Math.round((Date.now() - startedAt) / 1000);
  const { markdown, svg } = renderReport(report);
  // A partial run (BENCH_ONLY) never replaces the full report.
  const name = process.env.BENCH_ONLY ? `partial-${process.env.BENCH_ONLY}` : 'latest';
  writeFileSync(`bench/results/${name}.json`, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(`bench/results/${name}.md`, markdown);
  if (!process.env.BENCH_ONLY) writeFileSync('bench/results/overload.svg', svg);
  console.log(`\nwrote bench/results/${name}.json and .md in ${report.durationSeconds} s`);
}

main().catch((err) => {
  console.error(err);
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  process.exit(1);
});
