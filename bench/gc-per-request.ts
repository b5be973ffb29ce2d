/**
 * What one request leaves to the garbage collector: bytes allocated, bytes promoted to the old
 * generation, and young-generation (scavenge) pause per request, for each of the service's threads, from
 * V8's own trace (`--trace-gc-nvp`) over a 6 s closed loop of 64 clients on PostgreSQL. A scavenge costs
 * in proportion to what survives it, so "promoted per request" is the figure to watch
 * (docs/performance.md, "Garbage").
 *
 *   node --import tsx bench/gc-per-request.ts [messages|unknown-handover|invalid-body|unmatched]
 *
 * - messages: a user's message to a live handover (the hot path);
 * - unknown-handover: the same to a handover that does not exist (its handler queries, then answers 404);
 * - invalid-body: a body the route's schema refuses (400 before any handler runs);
 * - unmatched: a path no route has (404 from the router).
 *
 * BENCH_GC_ENV (JSON) adds settings for the service, BENCH_NODE_ARGS options for its node.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import {
  DATABASE,
  SECRET,
  cleanUpOnExit,
  firstLine,
  generate,
  processTreeCpuMs,
  schemaUrl,
  setUpTenant,
  spawnNode,
  startService,
  temporaryDir,
} from './harness.js';

const phase = process.argv[2] ?? 'messages';
const phases: Record<string, (handovers: string[]) => { paths: string[]; body: string }> = {
  messages: (h) => ({ paths: h.map((id) => `/v1/handovers/${id}/messages`), body: '{"id":"{id}","text":"m {i}"}' }),
  'unknown-handover': (h) => ({ paths: h.map((id) => `/v1/handovers/${id}x/messages`), body: '{"id":"{id}","text":"m {i}"}' }),
  'invalid-body': (h) => ({ paths: h.map((id) => `/v1/handovers/${id}/messages`), body: '{"nope":{i}}' }),
  unmatched: () => ({ paths: ['/nowhere'], body: '{}' }),
};
if (!phases[phase]) throw new Error(`unknown phase ${phase}: one of ${Object.keys(phases).join(', ')}`);

cleanUpOnExit();
const db = new pg.Pool({ connectionString: DATABASE, max: 2 });
const schema = `bench_${randomBytes(4).toString('hex')}`;
await db.query(`create schema ${schema}`);
const dir = temporaryDir('handover-gc-');
const log = join(dir, 'gc.log');
const helpdesk = spawnNode(['--import', 'tsx', 'bench/helpdesk-server.ts', '0', SECRET, '5000']);
const helpdeskUrl = `http://127.0.0.1:${JSON.parse(await firstLine(helpdesk)).port}`;
process.env.BENCH_SERVICE_STDOUT = log;
const nodeArgs = ['--trace-gc-nvp', ...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : [])];
const service = await startService(schemaUrl(schema), JSON.parse(process.env.BENCH_GC_ENV ?? '{}') as Record<string, string>, nodeArgs);
try {
  const tenant = await setUpTenant(service.url, `${helpdeskUrl}/fast`, 'gc', 256);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const skip = readFileSync(log, 'utf8').split('\n').length;
  const cpuBefore = processTreeCpuMs(service.child.pid);
  const r = await generate({
    baseUrl: service.url,
    ...phases[phase]!(tenant.handovers),
    headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json' },
    mode: 'closed',
    durationMs: 6000,
    connections: 64,
    idPrefix: `gc-${phase}`,
  });
  const cpuAfter = processTreeCpuMs(service.child.pid);
  const perIsolate = new Map<string, { scavenges: number; allocated: number; promoted: number; pauseMs: number }>();
  for (const line of readFileSync(log, 'utf8').split('\n').slice(skip)) {
    const fields = Object.fromEntries(line.split(/\s+/).flatMap((f) => (f.includes('=') ? [f.split('=') as [string, string]] : [])));
    // Lines of one scavenge, each opened by its isolate ([pid:address]).
    if (fields.gc !== 's' || !line.startsWith('[')) continue;
    const isolate = line.split(' ')[0]!;
    const s = perIsolate.get(isolate) ?? { scavenges: 0, allocated: 0, promoted: 0, pauseMs: 0 };
    s.scavenges++;
    s.allocated += Number(fields.allocated);
    s.promoted += Number(fields.promoted);
    s.pauseMs += Number(fields.pause);
    perIsolate.set(isolate, s);
  }
  console.log(`${phase}: ${r.sent} requests, answers ${JSON.stringify(r.statuses)} ${JSON.stringify(r.codes)}`);
  if (cpuBefore !== null && cpuAfter !== null) console.log(`process CPU per request: ${Math.round(((cpuAfter - cpuBefore) * 1000) / r.sent)} µs`);
  // One line per isolate (the HTTP thread's, the delivery thread's), most allocation first.
  for (const [isolate, s] of [...perIsolate].sort((a, b) => b[1].allocated - a[1].allocated)) {
    const per = (n: number) => n / r.sent;
    console.log(
      `isolate ${isolate}: ${s.scavenges} scavenges; per request allocated ${(per(s.allocated) / 1024).toFixed(1)} KB, promoted ${(per(s.promoted) / 1024).toFixed(2)} KB, scavenge pause ${(per(s.pauseMs) * 1000).toFixed(1)} µs`,
    );
  }
} finally {
  await service.stop();
  helpdesk.kill();
  await db.query(`drop schema ${schema} cascade`);
  await db.end();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
