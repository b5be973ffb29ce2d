/**
 * What a message costs at light load: a fresh instance on PostgreSQL offered a fixed, low rate of user
 * messages (open loop), and the CPU of its process and of the database's backends serving it, per
 * message delivered. Batches are small at such rates (one or two messages a statement), so this is where
 * a cost per statement, not per message, shows: planning, a round trip, a commit.
 *
 *   npm run build && node --import tsx bench/light-load.ts
 *
 * BENCH_LIGHT_RATES (requests/s, default 100,400,1000), BENCH_LIGHT_MS (each rate, default 6000),
 * BENCH_HANDOVERS (default 256), BENCH_LIGHT_PG_OPTIONS (more `-c` settings for the instance's sessions,
 * after the service's own, which they override: `-c plan_cache_mode=auto` measures PostgreSQL's default
 * plan caching), BENCH_NODE_ARGS (options for node running the instance, such as `--cpu-prof
 * --cpu-prof-dir=DIR`). HANDOVER_* settings in the environment go to the instance measured.
 * Prints one line per rate; writes nothing.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  DATABASE,
  DatabaseCpuMeter,
  SECRET,
  cleanUpIfInterrupted,
  cleanUpOnExit,
  drainIds,
  firstLine,
  generate,
  killChildren,
  processTreeCpuMs,
  schemaUrl,
  setUpTenant,
  spawnNode,
  startService,
} from './harness.js';

const RATES = (process.env.BENCH_LIGHT_RATES ?? '100,400,1000').split(',').filter(Boolean).map(Number);
const MS = Number(process.env.BENCH_LIGHT_MS ?? 6000);
const HANDOVERS = Number(process.env.BENCH_HANDOVERS ?? 256);
const passOn = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('HANDOVER_'))) as Record<string, string>;

cleanUpOnExit();
const admin = new pg.Pool({ connectionString: DATABASE, max: 1 });
const schema = `bench_light_${randomBytes(4).toString('hex')}`;
await admin.query(`create schema ${schema}`);
cleanUpIfInterrupted(() => admin.query(`drop schema if exists ${schema} cascade`));
const helpdesk = spawnNode(['--import', 'tsx', 'bench/helpdesk-server.ts', '0', SECRET, '5000']);
try {
  const helpdeskUrl = `http://127.0.0.1:${JSON.parse(await firstLine(helpdesk)).port}`;
  const extra = process.env.BENCH_LIGHT_PG_OPTIONS;
  const url = extra ? schemaUrl(schema).replace(/options=([^&]*)/, (_, o: string) => `options=${o}${encodeURIComponent(` ${extra}`)}`) : schemaUrl(schema);
  const service = await startService(url, passOn, (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean));
  try {
    const tenant = await setUpTenant(service.url, `${helpdeskUrl}/fast`, 'light', HANDOVERS);
    for (const rate of RATES) {
      const cpu0 = processTreeCpuMs(service.child.pid);
      const database = new DatabaseCpuMeter(service.child.pid);
      const result = await generate({
        baseUrl: service.url,
        paths: tenant.handovers.map((id) => `/v1/handovers/${id}/messages`),
        body: '{"id":"{id}","text":"light {i}"}',
        headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json' },
        ratePerSecond: rate,
        durationMs: MS,
        idPrefix: `light-${rate}-${randomBytes(3).toString('hex')}`,
      });
      const missing = await drainIds(helpdeskUrl, result.acceptedMessageIds, 10_000);
      const processMs = processTreeCpuMs(service.child.pid)! - cpu0!;
      const databaseMs = database.read().ms;
      database.stop();
      const delivered = result.acceptedMessageIds.length - missing;
      const per = (ms: number | null) => (ms === null || delivered === 0 ? null : Math.round((ms * 1000) / delivered));
      console.log(
        `${rate}/s: ${delivered} delivered of ${result.sent} sent (${missing} missing); CPU µs per message: process ${per(processMs)}, database ${per(databaseMs)}, both ${per(processMs + (databaseMs ?? 0))}`,
      );
    }
  } finally {
    await service.stop();
  }
} finally {
  killChildren();
  await admin.query(`drop schema if exists ${schema} cascade`).catch(() => {});
  await admin.end();
}
