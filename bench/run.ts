/**
 * `npm run bench`: the service against a bare relay measured in the same run, on both stores, written to
 * bench/results/. Each part runs in its own process: the service (built, as in production), the fake
 * helpdesk, the bare relay and the load generator (pinned to a core of its own where `taskset` exists).
 *
 * 1. Saturation, closed loop (64 clients back to back, 10 s, no cap on what is offered): the bare relay,
 *    then the service on PostgreSQL and on the embedded store, 256 live handovers on a generic webhook
 *    helpdesk that answers at once. Accepted msg/s at the API, delivered msg/s counted at the helpdesk
 *    (distinct message ids, over the window and the drain after it), and the CPU time each message cost,
 *    read from /proc: the service's process (all its threads and child processes) plus, on PostgreSQL,
 *    every postgres process; the bare relay's own process. The bare relay is measured just before and just
 *    after each store's closed loop, and the store's ratios are against the mean of the two: the speed of
 *    this machine moves within minutes, and one measure at the start was off by up to a half by the time
 *    the second store ran.
 * 2. Overload on each store: 0.5×, 1×, 2× and 3× the API capacity of that store, open loop, protection on
 *    (and 3× with protection off on PostgreSQL, for contrast). The capacity is the closed loop's accepted
 *    msg/s, or more where short open-loop probes on a ramp were taken in full. Before them, the bare relay at
 *    3× its own capacity, refusing at once above 64 in flight: what these cores allow at that overload.
 * 3. A slow helpdesk beside a healthy one.
 *
 * Environment: BENCH_DATABASE_URL, BENCH_STORES (postgres,embedded), BENCH_CLOSED_MS, BENCH_WARMUP_MS (unmeasured load before each closed loop; 0 for none), BENCH_CLOSED_CONNECTIONS,
 * BENCH_HANDOVERS, BENCH_STEP_MS (open-loop steps), BENCH_FACTORS, BENCH_PROTECTION_OFF_FACTORS ('' for none),
 * BENCH_BARE_OVERLOAD_FACTORS (the bare relay offered these factors of its own capacity, refusing above BENCH_BARE_LIMIT in flight, 64; '' for none),
 * BENCH_PROBE_FACTORS, BENCH_PROBE_BISECT, BENCH_PROBE_MS, BENCH_DRAIN_MS, BENCH_SLOW (0 to skip), BENCH_GENERATOR_CPU (a core, or 'none'), BENCH_MAIN_THREAD_OFF_GENERATOR=0 (leave the service's and the bare relay's main threads free to run on the generator's core),
 * BENCH_REPORT_NAME (write bench/results/NAME.* instead of latest.*), BENCH_WEBHOOK_BATCH=1 (the helpdesk
 * connectors in batch mode), BENCH_PROFILE=0 (no profiled closed loop; by default each store gets one after its
 * steps, BENCH_PROFILE_MS long, in a process of its own under `node --cpu-prof`, so the report can say where the CPU
 * goes without the profiler's cost in any figure),
 * BENCH_TIMELINE=1 (print each load run's answers and p99s per 500 ms on stderr), BENCH_CAPACITY (a fixed capacity for
 * the overload steps, to compare two builds at the same offered load), BENCH_NODE_ARGS (options for node running the service, such as
 * `--cpu-prof --cpu-prof-dir=DIR` to keep the profile, or `--perf-basic-prof` for `perf`), BENCH_SERVICE_STDOUT (a file
 * the service's standard output is appended to, such as what `--trace-gc-nvp` writes).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { GeneratorResult } from './load-generator.js';
import { summarizeProfiles } from './profile.js';
import { evaluateTargets, renderReport, type BenchReport, type Saturation, type Step, type StoreName, type StoreResult } from './report.js';
import {
  DATABASE,
  schemaUrl,
  DatabaseCpuMeter,
  drainDeliveries,
  drainIds,
  firstLine,
  signalGroup,
  generate,
  GENERATOR_CPU,
  keepMainThreadOffGenerator,
  machineBusyMs,
  machineBusyPercent,
  machineTicks,
  MAIN_THREAD_CPUS,
  HANDOVERS,
  helpdeskStats,
  killChildren,
  temporaryDir,
  cleanUpIfInterrupted,
  cleanUpOnExit,
  missingAtHelpdesk,
  pct,
  processTreeCpuMs,
  SECRET,
  setUpTenant,
  spawnNode,
  startService,
  threadSchedMs,
  schedPerSecond,
  STEP_MS,
  type Service,
  type Store,
} from './harness.js';

const CLOSED_MS = Number(process.env.BENCH_CLOSED_MS ?? 10_000);
/**
 * Load before each closed loop, not measured: the same clients for this long, then until the helpdesk has
 * what they sent. A process just started spends its first seconds under load compiling its hot code
 * (a fifth of the service's CPU in them, measured with `perf`), and a service runs for days.
 */
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 5000);
const NODE_ARGS = process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : [];
const CLOSED_CONNECTIONS = Number(process.env.BENCH_CLOSED_CONNECTIONS ?? 64);
const RELAY_HANDOVERS = Number(process.env.BENCH_HANDOVERS ?? 256);
/** Longest wait after a load window for the helpdesk to receive what was accepted. */
const DRAIN_MS = Number(process.env.BENCH_DRAIN_MS ?? 30_000);
/** Longest wait, after the overload steps, for the helpdesk to receive what they accepted. */
const OVERLOAD_DRAIN_MS = 20_000;
const STORES = (process.env.BENCH_STORES ?? 'postgres,embedded').split(',').filter(Boolean) as StoreName[];
const FACTORS = (process.env.BENCH_FACTORS ?? '0.5,1,2,3').split(',').filter(Boolean).map(Number);
const OFF_FACTORS = (process.env.BENCH_PROTECTION_OFF_FACTORS ?? '3').split(',').filter(Boolean).map(Number);
/** Factors of the bare relay's own capacity it is offered open loop, refusing above BARE_LIMIT in flight ('' for none). */
const BARE_OVERLOAD_FACTORS = (process.env.BENCH_BARE_OVERLOAD_FACTORS ?? '3').split(',').filter(Boolean).map(Number);
const BARE_LIMIT = Number(process.env.BENCH_BARE_LIMIT ?? 64);
/** Open-loop probes for the API capacity: these factors of the closed loop's figure, in order until one is not taken, each this long. */
const PROBE_FACTORS = (process.env.BENCH_PROBE_FACTORS ?? '0.5,1,1.5,2.25,3.4,5').split(',').filter(Boolean).map(Number);
/** BENCH_PROBE_BISECT: probes halfway between the highest rate taken and the lowest not taken, after the ramp (2). */
const PROBE_BISECT = Number(process.env.BENCH_PROBE_BISECT ?? 2);
const PROBE_MS = Number(process.env.BENCH_PROBE_MS ?? 4000);
/** BENCH_WEBHOOK_BATCH=1: the helpdesk connectors use the generic webhook's batch mode (default: one event per call). */
const WEBHOOK_BATCH = process.env.BENCH_WEBHOOK_BATCH === '1';
/**
 * Unless BENCH_PROFILE=0: after each store's steps, a service of its own under `node --cpu-prof` runs the closed
 * loop again for BENCH_PROFILE_MS, and the report says where its CPU went. A separate run, so that no figure of the
 * report carries the profiler's cost.
 */
const PROFILE = process.env.BENCH_PROFILE !== '0';
const PROFILE_MS = Number(process.env.BENCH_PROFILE_MS ?? 6000);
/** BENCH_CAPACITY: a fixed API capacity for the overload steps (A/B runs of two builds); unset, each store's measured one. */
const FIXED_CAPACITY = process.env.BENCH_CAPACITY ? Number(process.env.BENCH_CAPACITY) : undefined;
const LABEL: Record<StoreName, string> = { postgres: 'PostgreSQL', embedded: 'embedded store' };

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
  const started = performance.now();
  let lastBatches = { count: Infinity, seconds: 0, messages: 0, messageBatches: 0 };
  while (!done) {
    try {
      const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
      // BENCH_TIMELINE=1: admission's state at each sample too (the limit, requests in flight, waiting).
      if (process.env.BENCH_TIMELINE === '1') {
        const batches = read(text, 'handover_accept_batch_duration_seconds_count\\{outcome="ok"\\}');
        const batchSeconds = read(text, 'handover_accept_batch_duration_seconds_sum\\{outcome="ok"\\}');
        const messages = read(text, 'handover_accept_batch_messages_sum');
        const messageBatches = read(text, 'handover_accept_batch_messages_count');
        const batchNote =
          batches > lastBatches.count
            ? `, ${batches - lastBatches.count} accept batches of ${Math.round((messages - lastBatches.messages) / Math.max(1, messageBatches - lastBatches.messageBatches))} messages taking ${Math.round((1000 * (batchSeconds - lastBatches.seconds)) / (batches - lastBatches.count))} ms on average`
            : '';
        lastBatches = { count: batches, seconds: batchSeconds, messages, messageBatches };
        console.error(
          `  admission at ${Math.round(performance.now() - started)} ms: limit ${read(text, 'handover_admission_limit')}, in flight ${read(text, 'http_server_active_requests')}, waiting ${read(text, 'handover_admission_waiting')}, accept queue ${read(text, 'handover_accept_queued_messages')}${batchNote}`,
        );
      }
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
  return {
    rssMb: Math.round(rss / 1048576),
    heapMb: Math.round(heap / 1048576),
    eventLoopLagMs: Math.round(lagMs),
    minLimit: Number.isFinite(minLimit) ? minLimit : undefined,
    maxWaiting,
  };
}

const round = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function summarize(name: string, offered: number, r: GeneratorResult, extra: Partial<Step> = {}, seconds = STEP_MS / 1000): Step {
  return {
    name,
    offeredPerSecond: offered,
    acceptedPerSecond: Math.round(r.okLatencies.length / seconds),
    accepted: r.okLatencies.length,
    goodputPerSecond: Math.round(r.okLatencies.filter((l) => l <= 1000).length / seconds),
    acceptedP50Ms: round(pct(r.okLatencies, 50)),
    acceptedP99Ms: round(pct(r.okLatencies, 99)),
    rejectedP99Ms: round(pct(r.rejectLatencies, 99)),
    refused: r.rejectLatencies.length,
    codes: r.codes,
    timedOut: r.timedOut,
    unanswered: r.unanswered,
    generatorLagP99Ms: r.sendLagP99Ms,
    generatorCpuPercent: r.cpuPercent,
    generatorCpuMs: Math.round(r.cpuMs),
    ...extra,
  };
}

/** `CLOSED_CONNECTIONS` clients back to back against `url` for `durationMs`, each message's text starting with `text`. */
function closedLoop(url: string, paths: string[], headers: Record<string, string>, durationMs: number, idPrefix: string, text = 'relay') {
  return generate({
    mode: 'closed',
    baseUrl: url,
    paths,
    body: `{"id":"{id}","text":"${text} {i}"}`,
    headers,
    connections: CLOSED_CONNECTIONS,
    durationMs,
    drainMs: 10_000,
    idPrefix,
  });
}

/**
 * A closed-loop saturation step against `url`: `CLOSED_CONNECTIONS` clients back to back for `CLOSED_MS`,
 * then a drain until the helpdesk has every accepted message (or `DRAIN_MS` is up). CPU is read before,
 * at the end of the load window and after the drain.
 */
async function saturate(
  name: string,
  url: string,
  paths: string[],
  headers: Record<string, string>,
  helpdeskUrl: string,
  pid: number | undefined,
  withDatabase: boolean,
  idPrefix: string,
  /** The service (which reports its threads' CPU on /metrics), not the bare relay (which has no such page). */
  isService = true,
): Promise<{ step: Saturation; acceptedIds: string[] }> {
  const loop = (durationMs: number, prefix: string) => closedLoop(url, paths, headers, durationMs, prefix);
  const warmedIds: string[] = [];
  if (WARMUP_MS > 0) {
    await fetch(`${helpdeskUrl}/reset`, { method: 'POST' });
    const warm = await loop(WARMUP_MS, `${idPrefix}-warm`);
    await drainIds(helpdeskUrl, warm.acceptedMessageIds, DRAIN_MS);
    warmedIds.push(...warm.acceptedIds);
  }
  await fetch(`${helpdeskUrl}/reset`, { method: 'POST' });
  const database = withDatabase ? new DatabaseCpuMeter(pid) : undefined;
  const threadsBefore = isService ? await threadCpu(url) : new Map<string, number>();
  const before = processTreeCpuMs(pid);
  const schedBefore = threadSchedMs(pid);
  const r = await loop(CLOSED_MS, idPrefix);
  const processAtWindowEnd = processTreeCpuMs(pid);
  const mainThread = schedPerSecond(schedBefore, threadSchedMs(pid));
  const databaseAtWindowEnd = database?.read();
  const drainStart = Date.now();
  await drainDeliveries(helpdeskUrl, r.acceptedIds.length, DRAIN_MS);
  const undelivered = await drainIds(helpdeskUrl, r.acceptedMessageIds, Math.max(0, DRAIN_MS - (Date.now() - drainStart)));
  const drainEnd = Date.now();
  // What a delivery costs after the helpdesk answered (recording it) belongs to the message too.
  await sleep(500);
  const processAfter = processTreeCpuMs(pid);
  const databaseAfter = database?.read();
  // The delivery thread reports its CPU every quarter second: wait for a report after the drain.
  if (isService) await sleep(300);
  const threadsAfter = isService ? await threadCpu(url) : new Map<string, number>();
  database?.stop();
  const stats = await helpdeskStats(helpdeskUrl);
  // Up to the last new message; when some never came, up to the end of the wait for them.
  const deliveryWindowMs = undelivered > 0 ? drainEnd - r.startedAtEpochMs : stats.lastAt === null ? 0 : Math.max(1, stats.lastAt - r.startedAtEpochMs);
  const minus = (a: number | null, b: number | null) => (a === null || b === null ? null : Math.round(a - b));
  const inWindow = { process: minus(processAtWindowEnd, before), database: databaseAtWindowEnd?.ms ?? null };
  const total = { process: minus(processAfter, before), database: databaseAfter?.ms ?? null };
  const sum = (c: { process: number | null; database: number | null }) => (c.process === null ? null : c.process + (c.database ?? 0));
  const accepted = r.okLatencies.length;
  const perMessageUs = (ms: number | null, n: number) => (ms === null || n === 0 ? null : Math.round((ms * 1000) / n));
  const step: Saturation = {
    name,
    connections: CLOSED_CONNECTIONS,
    windowMs: r.windowMs,
    sent: r.sent,
    accepted,
    acceptedPerSecond: Math.round((accepted * 1000) / Math.max(1, r.windowMs)),
    acceptedP50Ms: round(pct(r.okLatencies, 50)),
    acceptedP99Ms: round(pct(r.okLatencies, 99)),
    rejectedP99Ms: round(pct(r.rejectLatencies, 99)),
    codes: r.codes,
    unanswered: r.unanswered,
    delivered: stats.unique,
    duplicates: stats.duplicates,
    deliveryWindowMs,
    deliveredPerSecond: deliveryWindowMs ? Math.round((stats.unique * 1000) / deliveryWindowMs) : 0,
    undelivered,
    deliveryP50Ms: pct(stats.deliveryLatencies, 50),
    deliveryP99Ms: pct(stats.deliveryLatencies, 99),
    cpu: {
      windowProcessMs: inWindow.process,
      windowDatabaseMs: inWindow.database,
      processMs: total.process,
      databaseMs: total.database,
      perAcceptedUs: perMessageUs(sum(inWindow), accepted),
      perDeliveredUs: perMessageUs(sum(total), stats.unique),
      ...(databaseAfter ? { databaseMethod: databaseAfter.method } : {}),
      ...threadShares(threadsBefore, threadsAfter, stats.unique),
    },
    generatorCpuPercent: r.cpuPercent,
    generatorLoopDelayP99Ms: r.loopDelayP99Ms,
    ...(mainThread ? { mainThreadOnCpuMsPerS: mainThread.onCpuMsPerS, mainThreadWaitingMsPerS: mainThread.waitingMsPerS } : {}),
  };
  const cpu = step.cpu;
  console.log(
    `${name}: accepted ${step.acceptedPerSecond}/s (p99 ${step.acceptedP99Ms} ms), delivered ${step.deliveredPerSecond}/s (${step.delivered} in ${deliveryWindowMs} ms, ${undelivered} missing, ${stats.badSignatures} bad signatures at the helpdesk), ` +
      `CPU ${cpu.perAcceptedUs} µs/accepted, ${cpu.perDeliveredUs} µs/delivered (process ${cpu.processMs} ms, database ${cpu.databaseMs} ms${cpu.httpThreadUs === undefined ? '' : `; per message HTTP thread ${cpu.httpThreadUs} µs, delivery thread ${cpu.deliveryThreadUs ?? 'none'} µs${cpu.databaseThreadUs === undefined ? '' : `, database thread ${cpu.databaseThreadUs} µs`}`}), generator ${r.cpuPercent}% CPU, loop p99 ${r.loopDelayP99Ms} ms, main thread on a CPU ${step.mainThreadOnCpuMsPerS} ms/s and waiting for one ${step.mainThreadWaitingMsPerS} ms/s, answers ${JSON.stringify(r.statuses)} ${JSON.stringify(r.codes)}`,
  );
  // The warm-up's messages were accepted too: the loss check counts them with the measured ones.
  return { step, acceptedIds: [...warmedIds, ...r.acceptedIds] };
}

/**
 * The bare relay offered factors of its own capacity open loop, with at most BARE_LIMIT requests in flight
 * and every other refused at once (bench/bare-relay.ts): the goodput these cores allow at that overload
 * when refusing costs as little as Node's HTTP server can make it, the baseline of the service's own steps.
 */
async function bareOverload(helpdeskUrl: string, capacity: number): Promise<NonNullable<BenchReport['bareOverload']>> {
  const relay = spawnNode(['--import', 'tsx', 'bench/bare-relay.ts', '0', `${helpdeskUrl}/fast`, SECRET, String(BARE_LIMIT)]);
  try {
    const url = `http://127.0.0.1:${JSON.parse(await firstLine(relay)).port}`;
    keepMainThreadOffGenerator(relay.pid);
    // Its first seconds compile its hot code, as the service's warm-up does.
    await closedLoop(url, ['/relay'], { 'content-type': 'application/json' }, 3000, `bare-o-warm-${randomBytes(3).toString('hex')}`);
    const steps: Step[] = [];
    for (const factor of BARE_OVERLOAD_FACTORS) {
      const rate = Math.max(1, Math.round(capacity * factor));
      const machineBefore = machineTicks();
      const r = await generate({
        baseUrl: url,
        paths: ['/relay'],
        body: '{"id":"{id}","text":"overload {i}"}',
        headers: { 'content-type': 'application/json' },
        ratePerSecond: rate,
        durationMs: STEP_MS,
        idPrefix: `bare-o-${factor}-${randomBytes(3).toString('hex')}`,
      });
      const machineBusy = machineBusyPercent(machineBefore, machineTicks());
      const step = summarize(`bare relay ${factor}×`, rate, r, {
        factor,
        protection: true,
        ...(machineBusy === undefined ? {} : { machineBusyPercent: machineBusy }),
      });
      steps.push(step);
      console.log(
        `bare relay overload ${factor}× (${rate}/s, at most ${BARE_LIMIT} in flight): goodput ${step.goodputPerSecond}/s, p50/p99 ${step.acceptedP50Ms}/${step.acceptedP99Ms} ms, reject p99 ${step.rejectedP99Ms} ms, unanswered ${step.unanswered}, generator late ${step.generatorLagP99Ms} ms (${step.generatorCpuPercent}% CPU), cores busy ${step.machineBusyPercent}%`,
      );
      await sleep(2000);
    }
    return { limit: BARE_LIMIT, capacityPerSecond: capacity, steps };
  } finally {
    signalGroup(relay, 'SIGKILL');
  }
}

/** The service's /metrics page, or undefined when it did not answer in time. */
async function metricsText(url: string): Promise<string | undefined> {
  try {
    return await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  } catch {
    return undefined;
  }
}

/** The accept path's batches so far (handover_accept_batch_duration_seconds and _messages): count, seconds, messages. */
async function acceptBatches(url: string): Promise<{ count: number; seconds: number; messages: number } | undefined> {
  const text = await metricsText(url);
  if (text === undefined) return undefined;
  const read = (pattern: RegExp) => [...text.matchAll(pattern)].reduce((sum, m) => sum + Number(m[1]), 0);
  return {
    count: read(/^handover_accept_batch_duration_seconds_count\{[^}]*\} (\S+)$/gm),
    seconds: read(/^handover_accept_batch_duration_seconds_sum\{[^}]*\} (\S+)$/gm),
    messages: read(/^handover_accept_batch_messages_sum(?:\{[^}]*\})? (\S+)$/gm),
  };
}

/** The accept batches of one step, for its line on the console: how many, their mean size and mean write time. */
function batchesBetween(before: Awaited<ReturnType<typeof acceptBatches>>, after: Awaited<ReturnType<typeof acceptBatches>>): string {
  if (!before || !after) return 'accept batches not read';
  const count = after.count - before.count;
  if (count <= 0) return 'no accept batches';
  const mean = (after.messages - before.messages) / count;
  const ms = ((after.seconds - before.seconds) * 1000) / count;
  return `accept batches ${count} (mean ${mean.toFixed(1)} messages, ${ms.toFixed(1)} ms each)`;
}

/** The service's own CPU seconds per thread (handover_thread_cpu_seconds_total). */
async function threadCpu(url: string): Promise<Map<string, number>> {
  const seconds = new Map<string, number>();
  // Not answered in time: no split for this step.
  const text = (await metricsText(url)) ?? '';
  for (const m of text.matchAll(/^handover_thread_cpu_seconds_total\{thread="(\w+)"\} (\S+)$/gm)) seconds.set(m[1]!, Number(m[2]));
  return seconds;
}

/** µs per delivered message of the HTTP thread, and of the delivery thread and the embedded database's thread when the service has them. */
function threadShares(
  before: Map<string, number>,
  after: Map<string, number>,
  delivered: number,
): { httpThreadUs?: number; deliveryThreadUs?: number; databaseThreadUs?: number } {
  const us = (thread: string) => {
    const a = after.get(thread);
    const b = before.get(thread) ?? 0;
    return a === undefined || delivered === 0 ? undefined : Math.round(((a - b) * 1e6) / delivered);
  };
  const http = us('http');
  const delivery = us('delivery');
  const database = us('database');
  return {
    ...(http !== undefined ? { httpThreadUs: http } : {}),
    ...(delivery !== undefined ? { deliveryThreadUs: delivery } : {}),
    ...(database !== undefined ? { databaseThreadUs: database } : {}),
  };
}

/** Counts the accepted ids the store does not hold, by client id, in the store's own tables. */
async function countLost(query: (sql: string, params: unknown[]) => Promise<{ rows: { n: number }[] }>, table: string, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const { rows } = await query(`select count(distinct client_id)::int as n from ${table} where client_id = any($1::text[])`, [ids]);
  return ids.length - rows[0]!.n;
}

/** Opens a stopped service's embedded store and counts what it lacks. */
async function lostInEmbedded(dataDir: string, idLists: string[][]): Promise<number[]> {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = await PGlite.create({ dataDir: join(dataDir, 'pgdata') });
  try {
    const out: number[] = [];
    for (const ids of idLists) out.push(await countLost((sql, params) => db.query<{ n: number }>(sql, params), 'messages', ids));
    return out;
  } finally {
    await db.close();
  }
}

interface Section {
  store: Store;
  name: StoreName;
  cleanup: () => Promise<void>;
  /** Per list of accepted ids, how many the store does not hold; called once the service has stopped. */
  lost: (idLists: string[][]) => Promise<number[]>;
}

async function main() {
  mkdirSync('bench/results', { recursive: true });
  cleanUpOnExit();
  const startedAt = Date.now();
  const db = STORES.includes('postgres') || process.env.BENCH_SLOW !== '0' ? new pg.Pool({ connectionString: DATABASE, max: 2 }) : undefined;
  const schemas: string[] = [];
  const dataDirs: string[] = [];
  /** A fresh store: a new schema on PostgreSQL, a new data directory for the embedded store. */
  const freshStore = async (name: StoreName): Promise<Section> => {
    if (name === 'postgres') {
      const schema = `bench_${randomBytes(4).toString('hex')}`;
      await db!.query(`create schema ${schema}`);
      schemas.push(schema);
      cleanUpIfInterrupted(() => db!.query(`drop schema if exists ${schema} cascade`));
      return {
        store: schemaUrl(schema),
        name,
        cleanup: async () => void (await db!.query(`drop schema if exists ${schema} cascade`)),
        lost: async (lists) => Promise.all(lists.map((ids) => countLost((sql, params) => db!.query(sql, params), `${schema}.messages`, ids))),
      };
    }
    const dataDir = temporaryDir('handover-bench-');
    dataDirs.push(dataDir);
    return {
      store: { dataDir },
      name,
      cleanup: async () => rmSync(dataDir, { recursive: true, force: true }),
      lost: (lists) => lostInEmbedded(dataDir, lists),
    };
  };

  const report: BenchReport = {
    machine: `${cpus().length} cores, Node ${process.version}`,
    cores: cpus().length,
    generatorCpu: GENERATOR_CPU ?? null,
    mainThreadCpus: MAIN_THREAD_CPUS ?? null,
    closedLoop: { connections: CLOSED_CONNECTIONS, ms: CLOSED_MS, handovers: RELAY_HANDOVERS, warmupMs: WARMUP_MS },
    webhookBatch: WEBHOOK_BATCH,
    stepMs: STEP_MS,
    ...(PROFILE ? { profileMs: PROFILE_MS } : {}),
    stores: [],
    slow: [],
    notes: [],
    targets: [],
  };
  let service: Service | undefined;
  try {
    const helpdesk = spawnNode(['--import', 'tsx', 'bench/helpdesk-server.ts', '0', SECRET, '5000']);
    const helpdeskUrl = `http://127.0.0.1:${JSON.parse(await firstLine(helpdesk)).port}`;
    const bare = spawnNode(['--import', 'tsx', 'bench/bare-relay.ts', '0', `${helpdeskUrl}/fast`, SECRET]);
    const bareUrl = `http://127.0.0.1:${JSON.parse(await firstLine(bare)).port}`;
    keepMainThreadOffGenerator(bare.pid);

    // 1. The bare relay at its own capacity; measured again just before and just after each store's
    // closed loop, which is compared with those two (the machine's speed moves within minutes).
    const measureBare = async (label: string) =>
      (
        await saturate(
          label,
          bareUrl,
          ['/relay'],
          { 'content-type': 'application/json' },
          helpdeskUrl,
          bare.pid,
          false,
          `bare-${randomBytes(3).toString('hex')}`,
          false,
        )
      ).step;
    report.bare = await measureBare(STORES.length ? `bare relay, before ${LABEL[STORES[0]!]}` : 'bare relay');
    if (BARE_OVERLOAD_FACTORS.length) report.bareOverload = await bareOverload(helpdeskUrl, report.bare.acceptedPerSecond);

    // 2. Each store: saturation, then overload at factors of the capacity just measured.
    for (const name of STORES) {
      const section = await freshStore(name);
      service = await startService(section.store, {}, NODE_ARGS, { offGenerator: true });
      const tenant = await setUpTenant(service.url, `${helpdeskUrl}/fast`, `relay-${name}`, RELAY_HANDOVERS, { batch: WEBHOOK_BATCH });
      const paths = tenant.handovers.map((h) => `/v1/handovers/${h}/messages`);
      const headers = { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json' };
      // The first store's closed loop follows the first measure of the bare relay closely enough.
      const bareBefore = report.stores.length === 0 ? report.bare : await measureBare(`bare relay, before ${LABEL[name]}`);
      const sat = await saturate(`service on ${LABEL[name]}`, service.url, paths, headers, helpdeskUrl, service.child.pid, name === 'postgres', `sat-${name}`);
      const bareAfter = await measureBare(`bare relay, after ${LABEL[name]}`);
      const idLists: string[][] = [sat.acceptedIds];
      const result: StoreResult = {
        store: name,
        label: LABEL[name],
        saturation: sat.step,
        baseline: { before: bareBefore, after: bareAfter },
        closedLoopCapacityPerSecond: Math.max(1, sat.step.acceptedPerSecond),
        apiCapacityPerSecond: 0,
        probes: [],
        overload: [],
        overloadUndelivered: null,
      };
      report.stores.push(result);
      const overloadMessageIds: string[] = [];
      // The closed loop's figure can understate what the API takes: each client refused sends again at once,
      // a storm of refusals costs what accepting would have, and it leaves the adaptive limit low for a while.
      // Open-loop probes on a ramp (from half the closed loop's figure, so that the limit recovers first) find
      // the highest rate taken in full (≥ 99 % accepted, p99 ≤ 250 ms); the capacity is the higher of the two.
      let capacity = result.closedLoopCapacityPerSecond;
      // The ramp's factors, then (once one was not taken) up to PROBE_BISECT probes halfway between the
      // highest rate taken and the lowest not taken: a ramp of 1.5× steps alone could leave the capacity a
      // third below what the store takes, and the steps called 3× nearer two and a half times.
      let notTaken: number | undefined;
      let bisections = 0;
      const nextRate = (k: number): number | undefined => {
        if (notTaken === undefined) {
          const factor = PROBE_FACTORS[k];
          return factor === undefined ? undefined : Math.max(1, Math.round(result.closedLoopCapacityPerSecond * factor));
        }
        // Halfway from the capacity so far (the closed loop's figure, raised by every probe taken). Not worth
        // a probe when the two are within 5 % of each other (nor one of them again).
        const mid = Math.round((capacity + notTaken) / 2);
        return bisections++ < PROBE_BISECT && notTaken > 1.05 * capacity && mid > capacity && mid < notTaken ? mid : undefined;
      };
      for (let k = 0, rate = nextRate(0); rate !== undefined; k++, rate = nextRate(k)) {
        const r = await generate({
          baseUrl: service.url,
          paths,
          body: '{"id":"{id}","text":"probe {i}"}',
          headers,
          ratePerSecond: rate,
          durationMs: PROBE_MS,
          idPrefix: `p-${name}-${k}`,
        });
        idLists.push(r.acceptedIds);
        for (const id of r.acceptedMessageIds) overloadMessageIds.push(id);
        const probe = summarize(`probe ${rate}/s`, rate, r, {}, PROBE_MS / 1000);
        const passed = r.okLatencies.length >= 0.99 * r.sent && (probe.acceptedP99Ms ?? Infinity) <= 250;
        result.probes.push({ ...probe, passed });
        console.log(`${LABEL[name]} probe ${rate}/s: accepted ${probe.acceptedPerSecond}/s, p99 ${probe.acceptedP99Ms} ms, ${passed ? 'taken' : 'not taken'}`);
        await sleep(1000);
        if (passed) capacity = Math.max(capacity, rate);
        else notTaken = Math.min(notTaken ?? Infinity, rate);
      }
      // BENCH_CAPACITY fixes the rate the overload factors multiply (for comparing two builds at the same
      // offered load); the report then says so. Unset: the capacity just measured.
      if (FIXED_CAPACITY) {
        report.notes.push(`${LABEL[name]}: the overload steps use BENCH_CAPACITY=${FIXED_CAPACITY}/s, not the capacity measured (${capacity}/s).`);
        capacity = FIXED_CAPACITY;
      }
      result.apiCapacityPerSecond = capacity;
      const runOverload = async (protection: boolean) => {
        for (const factor of protection ? FACTORS : OFF_FACTORS) {
          const rate = Math.max(1, Math.round(capacity * factor));
          const gen = generate({
            baseUrl: service!.url,
            paths,
            body: '{"id":"{id}","text":"overload {i}"}',
            headers,
            ratePerSecond: rate,
            durationMs: STEP_MS,
            idPrefix: `o-${name}-${protection ? 'on' : 'off'}-${factor}`,
          });
          const schedBefore = threadSchedMs(service!.child.pid);
          const batchesBefore = await acceptBatches(service!.url);
          const machineBefore = machineTicks();
          const memory = await sampleService(service!.url, 250, gen);
          const r = await gen;
          const schedAfter = threadSchedMs(service!.child.pid);
          const machineAfter = machineTicks();
          const batches = batchesBetween(batchesBefore, await acceptBatches(service!.url));
          const machineBusy = machineBusyPercent(machineBefore, machineAfter);
          const machineMs = machineBusyMs(machineBefore, machineAfter);
          const perSecond = schedPerSecond(schedBefore, schedAfter);
          const sched =
            perSecond && schedBefore && schedAfter
              ? {
                  httpThreadOnCpuMsPerS: perSecond.onCpuMsPerS,
                  httpThreadWaitingMsPerS: perSecond.waitingMsPerS,
                  httpThreadOnCpuMs: Math.round(schedAfter.onCpuMs - schedBefore.onCpuMs),
                }
              : {};
          idLists.push(r.acceptedIds);
          for (const id of r.acceptedMessageIds) overloadMessageIds.push(id);
          const s = summarize(`${factor}× protection ${protection ? 'on' : 'off'}`, rate, r, {
            factor,
            protection,
            ...memory,
            ...sched,
            ...(machineBusy === undefined ? {} : { machineBusyPercent: machineBusy }),
            ...(machineMs === undefined ? {} : { machineBusyMs: machineMs }),
          });
          result.overload.push(s);
          console.log(
            `${LABEL[name]} overload ${factor}× (${rate}/s) protection ${protection ? 'on' : 'off'}: goodput ${s.goodputPerSecond}/s, p50/p99 ${s.acceptedP50Ms}/${s.acceptedP99Ms} ms, reject p99 ${s.rejectedP99Ms} ms, unanswered ${s.unanswered}, rss ${s.rssMb} MB, generator late ${s.generatorLagP99Ms} ms (${s.generatorCpuPercent}% CPU), loop lag ${s.eventLoopLagMs} ms, limit≥${s.minLimit}, waiting≤${s.maxWaiting}, HTTP thread on a CPU ${s.httpThreadOnCpuMsPerS} ms/s and waiting for one ${s.httpThreadWaitingMsPerS} ms/s, cores busy ${s.machineBusyPercent}%, ${batches}, answers ${JSON.stringify(s.codes)}`,
          );
          await sleep(2000);
        }
      };
      await runOverload(true);
      if (name === 'postgres' && OFF_FACTORS.length) {
        await service.stop();
        service = await startService(section.store, { HANDOVER_ADMISSION: 'false' }, [], { offGenerator: true });
        await runOverload(false);
      }
      // Everything accepted must reach the helpdesk in the end; what has not after the wait is reported.
      result.overloadUndelivered = await drainIds(helpdeskUrl, overloadMessageIds, OVERLOAD_DRAIN_MS);
      await service.stop();
      service = undefined;
      // Lost: accepted (2xx) but not in the store, read from the store itself once the service has stopped.
      try {
        const lost = await section.lost(idLists);
        result.saturation.lost = lost[0];
        result.probes.forEach((s, i) => (s.lost = lost[i + 1]));
        result.overload.forEach((s, i) => (s.lost = lost[i + 1 + result.probes.length]));
      } catch (err) {
        report.notes.push(`${LABEL[name]}: the loss check could not read the store (${(err as Error).message}); lost is not reported.`);
      }
      if (PROFILE) {
        // Last, in a service process of its own (the profile is written when it exits): no other figure
        // carries the profiler's cost, and no step above runs on a process just started. Optional: a
        // failure here is a note, not the end of the run.
        const profileDir = temporaryDir('handover-profile-');
        try {
          service = await startService(section.store, {}, [...NODE_ARGS, '--cpu-prof', `--cpu-prof-dir=${profileDir}`], { offGenerator: true });
          await fetch(`${helpdeskUrl}/reset`, { method: 'POST' });
          const profiled = await closedLoop(service.url, paths, headers, PROFILE_MS, `prof-${name}`, 'profiled');
          await drainIds(helpdeskUrl, profiled.acceptedMessageIds, DRAIN_MS);
          await service.stop();
          service = undefined;
          const profile = summarizeProfiles(profileDir);
          if (profile.length) result.profile = profile;
          else report.notes.push(`${LABEL[name]}: the profiled service wrote no CPU profile (stopped by force?).`);
        } catch (err) {
          report.notes.push(`${LABEL[name]}: the profiled closed loop failed (${(err as Error).message}); no profile.`);
          await service?.stop().catch(() => {});
          service = undefined;
        } finally {
          rmSync(profileDir, { recursive: true, force: true });
        }
      }
      await section.cleanup().catch(() => {});
      console.log(
        `${LABEL[name]}: probes and overload accepted ${overloadMessageIds.length}, not delivered after the wait ${result.overloadUndelivered}, lost ${JSON.stringify([result.saturation.lost, ...result.overload.map((s) => s.lost)])}`,
      );
    }

    // 3. Slow helpdesk: tenant B's helpdesk answers in 5 s; tenant A's latency must not move. A fresh store.
    if (process.env.BENCH_SLOW !== '0' && report.stores.length) {
      const first = report.stores[0]!;
      const section = await freshStore(first.store);
      report.slowStore = first.label;
      service = await startService(section.store, {}, [], { offGenerator: true });
      const a2 = await setUpTenant(service.url, `${helpdeskUrl}/fast`, 'healthy', HANDOVERS, { batch: WEBHOOK_BATCH });
      const b = await setUpTenant(service.url, `${helpdeskUrl}/slow`, 'slow', 20, { batch: WEBHOOK_BATCH });
      const healthyRate = Math.round(first.apiCapacityPerSecond * 0.5);
      report.notes.push(
        `Slow helpdesk (on ${first.label}): the healthy tenant sends ${healthyRate}/s (half the API capacity); the other tenant's helpdesk answers every call after 5 s.`,
      );
      const healthy = (prefix: string) =>
        generate({
          baseUrl: service!.url,
          paths: a2.handovers.map((h) => `/v1/handovers/${h}/messages`),
          body: '{"id":"{id}","text":"healthy {i}"}',
          headers: { authorization: `Bearer ${a2.apiKey}`, 'content-type': 'application/json' },
          ratePerSecond: healthyRate,
          durationMs: STEP_MS,
          idPrefix: prefix,
        });
      await fetch(`${helpdeskUrl}/reset`, { method: 'POST' });
      const alone = await healthy('s-alone');
      await drainDeliveries(helpdeskUrl, alone.acceptedIds.length, 20_000);
      const aloneStats = await helpdeskStats(helpdeskUrl);
      report.slow.push(
        summarize('healthy tenant alone', healthyRate, alone, {
          deliveryP99Ms: pct(aloneStats.deliveryLatencies, 99),
          undelivered: await missingAtHelpdesk(helpdeskUrl, alone.acceptedMessageIds),
        }),
      );
      await fetch(`${helpdeskUrl}/reset`, { method: 'POST' });
      const [beside, slowSide] = await Promise.all([
        healthy('s-beside'),
        generate({
          baseUrl: service.url,
          paths: b.handovers.map((h) => `/v1/handovers/${h}/messages`),
          body: '{"id":"{id}","text":"slow {i}"}',
          headers: { authorization: `Bearer ${b.apiKey}`, 'content-type': 'application/json' },
          ratePerSecond: 50,
          durationMs: STEP_MS,
          idPrefix: 's-slow',
        }),
      ]);
      await drainDeliveries(helpdeskUrl, beside.acceptedIds.length, 20_000);
      const besideStats = await helpdeskStats(helpdeskUrl);
      report.slow.push(
        summarize('healthy tenant beside a 5 s helpdesk', healthyRate, beside, {
          deliveryP99Ms: pct(besideStats.deliveryLatencies, 99),
          undelivered: await missingAtHelpdesk(helpdeskUrl, beside.acceptedMessageIds),
        }),
      );
      report.slow.push(summarize('tenant of the 5 s helpdesk', 50, slowSide));
      await service.stop();
      service = undefined;
      await section.cleanup().catch(() => {});
    }
  } finally {
    killChildren();
    for (const name of schemas) await db?.query(`drop schema if exists ${name} cascade`).catch(() => {});
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
    await db?.end();
  }
  report.durationSeconds = Math.round((Date.now() - startedAt) / 1000);
  report.targets = evaluateTargets(report);
  // A partial run (other stores, factors or step lengths) never replaces the full report; BENCH_REPORT_NAME
  // writes a full one elsewhere (names starting with partial- are not kept in git).
  const partial = [
    'BENCH_STORES',
    'BENCH_FACTORS',
    'BENCH_PROBE_FACTORS',
    'BENCH_PROBE_BISECT',
    'BENCH_PROBE_MS',
    'BENCH_PROTECTION_OFF_FACTORS',
    'BENCH_CLOSED_MS',
    'BENCH_WARMUP_MS',
    'BENCH_STEP_MS',
    'BENCH_SLOW',
    'BENCH_HANDOVERS',
    'BENCH_CLOSED_CONNECTIONS',
  ].some((k) => process.env[k] !== undefined);
  const name = process.env.BENCH_REPORT_NAME ?? (partial ? 'partial-run' : 'latest');
  const svgName = name === 'latest' ? 'overload.svg' : `${name}-overload.svg`;
  const { markdown, svg } = renderReport(report, svgName);
  writeFileSync(`bench/results/${name}.json`, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(`bench/results/${name}.md`, markdown);
  writeFileSync(`bench/results/${svgName}`, svg);
  console.log(`\nwrote bench/results/${name}.json and .md in ${report.durationSeconds} s`);
  for (const t of report.targets)
    console.log(`${t.met === null ? 'n/j   ' : t.met ? 'met   ' : 'missed'}  ${t.store}: ${t.target} — ${t.value}${t.caveat ? ` (${t.caveat})` : ''}`);
}

main().catch((err) => {
  console.error(err);
  killChildren();
  process.exit(1);
});
