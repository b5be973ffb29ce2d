/**
 * What a refusal costs the service, against what a bare `node:http` server spends answering the same
 * `503` on a kept-alive connection: the floor of any refusal made by Node's HTTP server.
 *
 *   npm run build && node --import tsx bench/refusal-cost.ts
 *   BENCH_REFUSAL_MODE=accepted npm run bench:refusals
 *
 * BENCH_REFUSAL_MODE=accepted measures an accepted message instead: the service with its admission as it
 * ships (64 clients are within its floor, so none is refused) and 256 handovers, against a bare server
 * that reads each body, parses it as JSON and answers `202` with an id, the least an accepted message's
 * answer can cost Node's HTTP server. There the service's main thread per answer is what the thread that
 * answers spends on a message, all of it (its answer, its batch, what the delivery thread tells it back).
 *
 * The service (PostgreSQL, a schema of its own; BENCH_REFUSAL_STORE=embedded: the embedded store, in a
 * directory of its own, its database's thread counted in the process's CPU) runs with an admission limit
 * of one request in flight, fixed. A closed loop of 64 clients, one API key, then keeps a line standing: nearly every request is
 * refused `overloaded_queue_wait` before routing (src/http/shed-before-routing.ts), as the busiest
 * caller's are under overload, and the few admitted keep the line's figures real. The closed loop runs
 * for BENCH_REFUSAL_MS (6 s, after 1.5 s unmeasured) against each of the two servers in turn,
 * BENCH_REFUSAL_ROUNDS times (3); the CPU of each server's process per answer is read from the OS. The
 * service's figure includes what it spent on the requests it admitted (their number is printed). The load
 * generator is pinned to a core of its own where `taskset` allows (BENCH_GENERATOR_CPU). BENCH_NODE_ARGS:
 * options for node running the service (`--cpu-prof --cpu-prof-dir=DIR`).
 *
 * BENCH_REFUSAL_RATE (requests a second) replaces the closed loop with an open loop at that rate over 256
 * connections, as the overload steps of `npm run bench` offer it (10,956 a second was PostgreSQL's 3×
 * step): what refusing that load costs each server, how busy it leaves the machine's cores (every process,
 * the generator's share too), and the refusals' p99 counted from when each was due.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import {
  ADMIN,
  DATABASE,
  SECRET,
  api,
  cleanUpOnExit,
  firstLine,
  generate,
  machineBusyPercent,
  machineTicks,
  pct,
  processTreeCpuMs,
  schemaUrl,
  spawnNode,
  startService,
  threadSchedMs,
} from './harness.js';

const MS = Number(process.env.BENCH_REFUSAL_MS ?? 6000);
const ROUNDS = Number(process.env.BENCH_REFUSAL_ROUNDS ?? 3);
const ACCEPTED = process.env.BENCH_REFUSAL_MODE === 'accepted';
const EMBEDDED = process.env.BENCH_REFUSAL_STORE === 'embedded';
const HANDOVERS = ACCEPTED ? 256 : 16;
/** BENCH_REFUSAL_RATE: an open loop at this many requests a second over 256 connections, instead of the closed loop of 64. */
const RATE = process.env.BENCH_REFUSAL_RATE ? Number(process.env.BENCH_REFUSAL_RATE) : undefined;

/** A bare server answering every request with a 503 of the service's shape, keeping the connection. */
const BARE_REFUSER = `
const { createServer } = require('node:http');
const body = JSON.stringify({ error: { code: 'overloaded_queue_wait', message: 'No slot would come free within the 5 ms a request may wait: 2 waiting, limit 1 in flight, each taking about 3 ms (refused at once, without waiting).', details: { cause: 'queue_wait' } } });
const server = createServer((req, res) => {
  req.resume();
  res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-content-type-options': 'nosniff', 'retry-after': '1' });
  res.end(body);
});
server.keepAliveTimeout = 75000;
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.address().port }) + '\\n'));
`;

/** A bare server accepting every message: its body read and parsed, a `202` with an id, the connection kept. */
const BARE_ACCEPTER = `
const { createServer } = require('node:http');
let n = 0;
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const message = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (typeof message.text !== 'string') {
      res.writeHead(400, { 'content-length': 0 });
      return res.end();
    }
    const body = JSON.stringify({ id: 'msg_' + (++n).toString(36) });
    res.writeHead(202, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-content-type-options': 'nosniff' });
    res.end(body);
  });
});
server.keepAliveTimeout = 75000;
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.address().port }) + '\\n'));
`;

/** A tenant, its helpdesk and its handovers, one request at a time (the limit admits one). */
async function setUp(url: string, helpdeskUrl: string): Promise<{ apiKey: string; handovers: string[] }> {
  const tenant = await api(url, 'POST', '/v1/admin/tenants', ADMIN, { name: 'refusals' });
  const connector = await api(url, 'POST', `/v1/admin/tenants/${tenant.id}/connectors`, ADMIN, {
    type: 'webhook',
    name: 'refusals',
    config: { url: helpdeskUrl, secret: SECRET },
  });
  await api(url, 'POST', `/v1/admin/tenants/${tenant.id}/queues`, ADMIN, {
    name: 'q',
    connectorId: connector.id,
    maxWaiting: 100000,
    noAnswerTimeoutSeconds: 86400,
  });
  const handovers: string[] = [];
  for (let i = 0; i < HANDOVERS; i++)
    handovers.push((await api(url, 'POST', '/v1/handovers', tenant.apiKey, { conversationId: `refusals-${i}`, queue: 'q', user: { id: `u${i}` } })).id);
  return { apiKey: tenant.apiKey, handovers };
}

cleanUpOnExit();
const db = new pg.Pool({ connectionString: DATABASE, max: 2 });
const schema = `bench_${randomBytes(4).toString('hex')}`;
const dataDir = mkdtempSync(join(tmpdir(), 'handover-refusals-'));
await db.query(`create schema ${schema}`);
const helpdesk = spawnNode(['--import', 'tsx', 'bench/helpdesk-server.ts', '0', SECRET, '5000']);
const helpdeskUrl = `http://127.0.0.1:${JSON.parse(await firstLine(helpdesk)).port}`;
const bare = spawnNode(['-e', ACCEPTED ? BARE_ACCEPTER : BARE_REFUSER]);
const bareUrl = `http://127.0.0.1:${JSON.parse(await firstLine(bare)).port}`;
const service = await startService(
  EMBEDDED ? { dataDir } : schemaUrl(schema),
  ACCEPTED
    ? {}
    : { HANDOVER_ADMISSION_ADAPTIVE: 'false', HANDOVER_ADMISSION_INITIAL_LIMIT: '1', HANDOVER_ADMISSION_MIN_LIMIT: '1', HANDOVER_ADMISSION_MAX_LIMIT: '1' },
  process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : [],
);
try {
  const tenant = await setUp(service.url, `${helpdeskUrl}/fast`);
  const spec = (baseUrl: string, durationMs: number) => ({
    baseUrl,
    paths: tenant.handovers.map((id) => `/v1/handovers/${id}/messages`),
    body: '{"id":"{id}","text":"m {i}"}',
    headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json' },
    ...(RATE === undefined ? { mode: 'closed' as const, connections: 64 } : { mode: 'open' as const, ratePerSecond: RATE, connections: 256 }),
    durationMs,
    idPrefix: `refusals-${randomBytes(4).toString('hex')}`,
  });
  const measure = async (name: string, url: string, pid: number | undefined) => {
    // Unmeasured first: the line stands, and the code is compiled, before the window opens.
    await generate(spec(url, 1500));
    const before = processTreeCpuMs(pid);
    const mainBefore = threadSchedMs(pid);
    const machineBefore = machineTicks();
    const r = await generate(spec(url, MS));
    const busy = machineBusyPercent(machineBefore, machineTicks());
    const after = processTreeCpuMs(pid);
    const mainAfter = threadSchedMs(pid);
    const mainPerAnswer = mainBefore && mainAfter ? ((mainAfter.onCpuMs - mainBefore.onCpuMs) * 1000) / r.sent : NaN;
    const refused = r.codes.overloaded_queue_wait ?? r.statuses['503'] ?? 0;
    const perAnswer = before !== null && after !== null ? ((after - before) * 1000) / r.sent : NaN;
    const kind = ACCEPTED ? `${refused} refused` : `${r.sent - refused} not refused for the line`;
    console.log(
      `${name}: ${Math.round((r.sent * 1000) / MS)} answers/s (${kind}: ${JSON.stringify(r.statuses)}), ${perAnswer.toFixed(1)} µs of its CPU an answer, ${mainPerAnswer.toFixed(1)} of them its main thread's; cores busy ${busy} %, generator ${r.cpuPercent} % of its core, refusals p99 ${pct(r.rejectLatencies, 99) ?? '-'} ms`,
    );
    return { process: perAnswer, main: mainPerAnswer };
  };
  const figures = { service: [] as Array<{ process: number; main: number }>, bare: [] as Array<{ process: number; main: number }> };
  for (let round = 0; round < ROUNDS; round++) {
    figures.bare.push(await measure('bare', bareUrl, bare.pid));
    figures.service.push(await measure('service', service.url, service.child.pid));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const of = (side: 'service' | 'bare', part: 'process' | 'main') => median(figures[side].map((f) => f[part]));
  console.log(
    `median: service ${of('service', 'process').toFixed(1)} µs, bare ${of('bare', 'process').toFixed(1)} µs an answer (${(of('service', 'process') / of('bare', 'process')).toFixed(2)}×); main thread ${of('service', 'main').toFixed(1)} against ${of('bare', 'main').toFixed(1)} µs (${(of('service', 'main') / of('bare', 'main')).toFixed(2)}×)`,
  );
} finally {
  await service.stop();
  helpdesk.kill();
  bare.kill();
  await db.query(`drop schema ${schema} cascade`);
  rmSync(dataDir, { recursive: true, force: true });
  await db.end();
}
process.exit(0);
