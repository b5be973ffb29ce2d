/**
 * The first seconds of a new instance, as a pod an autoscaler just added meets them: a tenant and its
 * handovers set up through the API of another instance (stopped then), a new instance started on the
 * same store (a PostgreSQL schema, or the embedded store's data directory), and as soon as it is ready an open loop of user messages to it at a fixed
 * rate; then, after a pause, the same load again on the same instance. What each accepted, refused and
 * how fast, the first against the second.
 *
 *   npm run bench:cold
 *
 * BENCH_COLD_STORE (postgres, the default, or embedded), BENCH_COLD_SETUP=self (the tenant set up through
 * the instance measured: its first requests, fast ones, give admission its no-load latency), BENCH_COLD_RATE (requests/s, default 1500), BENCH_COLD_MS (default 4000), BENCH_COLD_ROUNDS (new
 * instances, default 3), BENCH_HANDOVERS (default 256), BENCH_TIMELINE=1 (each run per 500 ms),
 * BENCH_NODE_ARGS (options for node running the instance measured, such as `--cpu-prof --cpu-prof-dir=DIR`
 * to see where its first second goes, thread by thread); HANDOVER_* settings in the environment go to the
 * instance measured.
 * Prints one line per run and a summary; writes nothing.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  DATABASE,
  cleanUpIfInterrupted,
  cleanUpOnExit,
  firstLine,
  generate,
  killChildren,
  schemaUrl,
  SECRET,
  setUpTenant,
  spawnNode,
  startService,
  temporaryDir,
  type Store,
} from './harness.js';

const EMBEDDED = process.env.BENCH_COLD_STORE === 'embedded';
/** BENCH_COLD_SETUP=self: the tenant set up through the instance measured, whose first requests are then fast ones. */
const SETUP_SELF = process.env.BENCH_COLD_SETUP === 'self';
const RATE = Number(process.env.BENCH_COLD_RATE ?? 1500);
const MS = Number(process.env.BENCH_COLD_MS ?? 4000);
const ROUNDS = Number(process.env.BENCH_COLD_ROUNDS ?? 3);
const HANDOVERS = Number(process.env.BENCH_HANDOVERS ?? 256);
/** HANDOVER_* settings in this environment, for the instance measured (not the one that sets up). */
const serviceEnv = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('HANDOVER_') && e[1] !== undefined));

interface Run {
  refused: number;
  sent: number;
  codes: Record<string, number>;
  p99Ms: number;
  acceptedP99Ms: number;
  firstSecondP99Ms: number;
  timeline: string;
}

const p99 = (sorted: number[]): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!);

async function step(url: string, tenant: { apiKey: string; handovers: string[] }, idPrefix: string): Promise<Run> {
  const r = await generate({
    baseUrl: url,
    paths: tenant.handovers.map((h) => `/v1/handovers/${h}/messages`),
    body: '{"id":"{id}","text":"cold {i}"}',
    headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json' },
    ratePerSecond: RATE,
    durationMs: MS,
    idPrefix,
  });
  return {
    refused: r.rejectLatencies.length + r.unanswered,
    sent: r.sent,
    codes: r.codes,
    p99Ms: Math.round(p99([...r.okLatencies, ...r.rejectLatencies].sort((a, b) => a - b))),
    acceptedP99Ms: Math.round(p99(r.okLatencies)),
    firstSecondP99Ms: Math.max(0, ...r.timeline.filter((t) => t.atMs < 1000).map((t) => t.p99Ms)),
    timeline: r.timeline.map((t) => `${t.atMs}:${t.answers}/${t.p99Ms}`).join(' '),
  };
}

async function instance(admin: pg.Pool, helpdeskUrl: string): Promise<[Run, Run]> {
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const store: Store = EMBEDDED ? { dataDir: temporaryDir('handover-cold-') } : schemaUrl(schema);
  const drop = () => admin.query(`drop schema if exists ${schema} cascade`);
  let forget = () => {};
  if (!EMBEDDED) {
    await admin.query(`create schema ${schema}`);
    forget = cleanUpIfInterrupted(drop);
  }
  try {
    // Set up through an instance of its own, stopped before the one measured starts: that one gets its
    // first request only once it is ready, as a pod just added gets its share of the traffic. Or, with
    // BENCH_COLD_SETUP=self, through the one measured.
    const setUp = async (url: string) => {
      const made = await setUpTenant(url, `${helpdeskUrl}/fast`, 'cold', HANDOVERS);
      // Its handovers' openings delivered to the helpdesk before the load.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return made;
    };
    let tenant: { apiKey: string; handovers: string[] } | undefined;
    if (!SETUP_SELF) {
      const setup = await startService(store, {});
      try {
        tenant = await setUp(setup.url);
      } finally {
        await setup.stop();
      }
    }
    const service = await startService(store, serviceEnv, (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean));
    tenant ??= await setUp(service.url);
    try {
      const first = await step(service.url, tenant, `first-${schema}`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const again = await step(service.url, tenant, `again-${schema}`);
      return [first, again];
    } finally {
      await service.stop();
    }
  } catch (err) {
    // An instance that never became ready may still hold the schema's locks: gone before the drop.
    killChildren();
    throw err;
  } finally {
    if (!EMBEDDED) await drop();
    forget();
  }
}

async function main(): Promise<void> {
  cleanUpOnExit();
  const admin = new pg.Pool({ connectionString: DATABASE, max: 1 });
  const helpdesk = spawnNode(['--import', 'tsx', 'bench/helpdesk-server.ts', '0', SECRET, '5000']);
  const helpdeskUrl = `http://127.0.0.1:${JSON.parse(await firstLine(helpdesk)).port}`;
  const runs: Array<[Run, Run]> = [];
  const line = (what: string, run: Run) => {
    console.log(
      `${what}: refused ${run.refused} of ${run.sent}, p99 ${run.p99Ms} ms (accepted ${run.acceptedP99Ms} ms), first second's p99 ${run.firstSecondP99Ms} ms, ${JSON.stringify(run.codes)}`,
    );
    if (process.env.BENCH_TIMELINE === '1') console.log(`  per 500 ms, answers/p99 ms: ${run.timeline}`);
  };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const [first, again] = await instance(admin, helpdeskUrl);
      runs.push([first, again]);
      line('just started', first);
      line('again      ', again);
    }
  } finally {
    await admin.end();
    killChildren();
  }
  for (const [k, what] of ['as soon as ready', 'again, a few seconds later'].entries()) {
    const of = runs.map((pair) => pair[k]!);
    console.log(
      `${what}: refused ${of.map((r) => r.refused).join(', ')}; p99 ${of.map((r) => r.p99Ms).join(', ')} ms; first second's p99 ${of.map((r) => r.firstSecondP99Ms).join(', ')} ms`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  killChildren();
  process.exit(1);
});
