/**
 * What a refusal costs the service, against what a bare `node:http` server spends answering the same
 * `503` on a kept-alive connection: the floor of any refusal made by Node's HTTP server.
 *
 *   npm run build && node --import tsx bench/refusal-cost.ts
 *
 * The service (PostgreSQL, a schema of its own) runs with an admission limit of one request in flight,
 * fixed. A closed loop of 64 clients, one API key, then keeps a line standing: nearly every request is
 * refused `overloaded_queue_wait` before routing (src/http/shed-before-routing.ts), as the busiest
 * caller's are under overload, and the few admitted keep the line's figures real. The closed loop runs
 * for BENCH_REFUSAL_MS (6 s, after 1.5 s unmeasured) against each of the two servers in turn,
 * BENCH_REFUSAL_ROUNDS times (3); the CPU of each server's process per answer is read from the OS. The
 * service's figure includes what it spent on the requests it admitted (their number is printed). The load
 * generator is pinned to a core of its own where `taskset` allows (BENCH_GENERATOR_CPU). BENCH_NODE_ARGS:
 * options for node running the service (`--cpu-prof --cpu-prof-dir=DIR`).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  ADMIN,
  DATABASE,
  SECRET,
  api,
  cleanUpOnExit,
  firstLine,
  generate,
  processTreeCpuMs,
  schemaUrl,
  spawnNode,
  startService,
  threadSchedMs,
} from './harness.js';

const MS = Number(process.env.BENCH_REFUSAL_MS ?? 6000);
const ROUNDS = Number(process.env.BENCH_REFUSAL_ROUNDS ?? 3);
const HANDOVERS = 16;

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
await db.query(`create schema ${schema}`);
const helpdesk = spawnNode(['--import', 'tsx', 'bench/helpdesk-server.ts', '0', SECRET, '5000']);
const helpdeskUrl = `http://127.0.0.1:${JSON.parse(await firstLine(helpdesk)).port}`;
const bare = spawnNode(['-e', BARE_REFUSER]);
const bareUrl = `http://127.0.0.1:${JSON.parse(await firstLine(bare)).port}`;
const service = await startService(
  schemaUrl(schema),
  { HANDOVER_ADMISSION_ADAPTIVE: 'false', HANDOVER_ADMISSION_INITIAL_LIMIT: '1', HANDOVER_ADMISSION_MIN_LIMIT: '1', HANDOVER_ADMISSION_MAX_LIMIT: '1' },
  process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : [],
);
try {
  const tenant = await setUp(service.url, `${helpdeskUrl}/fast`);
  const spec = (baseUrl: string, durationMs: number) => ({
    baseUrl,
    paths: tenant.handovers.map((id) => `/v1/handovers/${id}/messages`),
    body: '{"id":"{id}","text":"m {i}"}',
    headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json' },
    mode: 'closed' as const,
    durationMs,
    connections: 64,
    idPrefix: `refusals-${randomBytes(4).toString('hex')}`,
  });
  const measure = async (name: string, url: string, pid: number | undefined) => {
    // Unmeasured first: the line stands, and the code is compiled, before the window opens.
    await generate(spec(url, 1500));
    const before = processTreeCpuMs(pid);
    const mainBefore = threadSchedMs(pid);
    const r = await generate(spec(url, MS));
    const after = processTreeCpuMs(pid);
    const mainAfter = threadSchedMs(pid);
    const mainPerAnswer = mainBefore && mainAfter ? ((mainAfter.onCpuMs - mainBefore.onCpuMs) * 1000) / r.sent : NaN;
    const refusedBeforeRouting = r.codes.overloaded_queue_wait ?? r.statuses['503'] ?? 0;
    const perAnswer = before !== null && after !== null ? ((after - before) * 1000) / r.sent : NaN;
    console.log(
      `${name}: ${Math.round((r.sent * 1000) / MS)} answers/s (${r.sent - refusedBeforeRouting} not refused for the line: ${JSON.stringify(r.statuses)}), ${perAnswer.toFixed(1)} µs of its CPU an answer, ${mainPerAnswer.toFixed(1)} of them its main thread's`,
    );
    return perAnswer;
  };
  const figures = { service: [] as number[], bare: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    figures.bare.push(await measure('bare', bareUrl, bare.pid));
    figures.service.push(await measure('service', service.url, service.child.pid));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(
    `median: service ${median(figures.service).toFixed(1)} µs, bare ${median(figures.bare).toFixed(1)} µs an answer (${(median(figures.service) / median(figures.bare)).toFixed(2)}×)`,
  );
} finally {
  await service.stop();
  helpdesk.kill();
  bare.kill();
  await db.query(`drop schema ${schema} cascade`);
  await db.end();
}
process.exit(0);
