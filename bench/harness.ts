/**
 * The pieces every benchmark uses: child processes for the service (built, as in production, on
 * PostgreSQL or on the embedded store), the fake helpdesk and the load generator (pinned to a core of its
 * own where `taskset` exists), the setup of a tenant with handovers to load, and the CPU time processes
 * used, read from the OS's own accounting (/proc).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GeneratorResult, GeneratorSpec } from './load-generator.js';

export const STEP_MS = Number(process.env.BENCH_STEP_MS ?? 6000);
export const DATABASE = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** DATABASE with its search_path set to `schema` (kept apart from any options the URL already has). */
export function schemaUrl(schema: string): string {
  return `${DATABASE}${DATABASE.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
}
export const ADMIN = `bench-admin-${randomBytes(8).toString('hex')}`;
export const SECRET = 'whsec_' + randomBytes(32).toString('base64');
export const HANDOVERS = 100;
export const children: ChildProcess[] = [];

export function spawnNode(args: string[], env: Record<string, string> = {}, options: { cpu?: string } = {}): ChildProcess {
  // taskset execs node in its place: the child's pid stays the node process's.
  const [command, argv] = options.cpu === undefined ? [process.execPath, args] : ['taskset', ['-c', options.cpu, process.execPath, ...args]];
  cleanUpOnExit();
  // Each child leads a process group of its own, so that whatever it starts in turn ends with it.
  const child = spawn(command, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  return child;
}

/** Sends a signal to a child's whole process group (the child and anything it started). */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is gone already
  }
}

/** Kills every child and what it started, at once (SIGKILL): on the way out, whatever the way. */
export function killChildren(): void {
  for (const child of children) signalGroup(child, 'SIGKILL');
}
const temporary: string[] = [];
/** A directory removed when the benchmark ends, whatever the way. */
export function temporaryDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temporary.push(dir);
  return dir;
}
function removeTemporary(): void {
  for (const dir of temporary.splice(0)) rmSync(dir, { recursive: true, force: true });
}
const onInterrupt = new Set<() => Promise<unknown>>();
/** Work to do (within 5 s) if the benchmark is interrupted, such as dropping a schema; returns its removal. */
export function cleanUpIfInterrupted(work: () => Promise<unknown>): () => void {
  onInterrupt.add(work);
  return () => onInterrupt.delete(work);
}
let exitHooked = false;
/** Children die, and temporary directories go, with the benchmark: on a normal exit, an error, Ctrl-C or SIGTERM. */
export function cleanUpOnExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    killChildren();
    removeTemporary();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.once(signal, () => {
      killChildren();
      const bound = new Promise((r) => setTimeout(r, 5000).unref());
      void Promise.race([Promise.allSettled([...onInterrupt].map((work) => work())), bound]).finally(() => process.exit(130));
    });
}

/**
 * The core the load generator is pinned to: the last one (BENCH_GENERATOR_CPU to choose), when
 * `taskset` exists and there is more than one core; otherwise none, and the report says so.
 */
export const GENERATOR_CPU: string | undefined = (() => {
  if (cpus().length < 2 || process.env.BENCH_GENERATOR_CPU === 'none') return undefined;
  if (spawnSync('taskset', ['-c', '0', 'true']).status !== 0) return undefined;
  return process.env.BENCH_GENERATOR_CPU ?? String(cpus().length - 1);
})();

/**
 * The cores the threads that answer HTTP (the service's main thread, the bare relay's) are kept to: every
 * core but the generator's, unless BENCH_MAIN_THREAD_OFF_GENERATOR=0. Callers are on other machines in
 * production; here, left free, the scheduler puts the answering thread on the generator's core (it wakes it)
 * and it waits there behind the generator while the other core has time (docs/performance.md, "The thread
 * that answers, on the generator's core"). Only that one thread is pinned: the process's other threads, the
 * database and the helpdesk may use every core.
 */
export const MAIN_THREAD_CPUS: string | undefined = (() => {
  if (GENERATOR_CPU === undefined || process.env.BENCH_MAIN_THREAD_OFF_GENERATOR === '0') return undefined;
  const others = cpus()
    .map((_, i) => String(i))
    .filter((c) => !GENERATOR_CPU.split(',').includes(c));
  return others.length ? others.join(',') : undefined;
})();

/**
 * Keeps a started process's main thread (its pid: `taskset -p` sets one thread's affinity) off the
 * generator's core. Called once the process is up, so threads it started before keep every core; a thread
 * started later by that thread inherits its affinity. Fails loudly: a run that meant to pin and did not
 * would be reported as pinned.
 */
export function keepMainThreadOffGenerator(pid: number | undefined): void {
  if (MAIN_THREAD_CPUS === undefined || pid === undefined) return;
  const out = spawnSync('taskset', ['-p', '-c', MAIN_THREAD_CPUS, String(pid)], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`taskset -p -c ${MAIN_THREAD_CPUS} ${pid} failed: ${out.stderr}`);
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

/** A PostgreSQL URL (with its search_path), or the embedded store in a data directory of its own. */
export type Store = string | { dataDir: string };

/**
 * `nodeArgs`: options for node itself, such as `--cpu-prof`. `offGenerator`: keep the service's main
 * thread off the load generator's core once it is up (keepMainThreadOffGenerator), as `npm run bench`
 * does for the service and the bare relay alike; other benchmarks leave it free.
 */
export async function startService(
  store: Store,
  env: Record<string, string>,
  nodeArgs: string[] = [],
  options: { offGenerator?: boolean } = {},
): Promise<Service> {
  const port = await freePort();
  const child = spawnNode([...nodeArgs, 'dist/cli/main.js', 'start'], {
    // Empty selects the embedded store, whatever the benchmark's own environment holds.
    DATABASE_URL: typeof store === 'string' ? store : '',
    ...(typeof store === 'string' ? {} : { HANDOVER_DATA_DIR: store.dataDir }),
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
  // BENCH_SERVICE_STDOUT: a file for the service's standard output (node's --trace-gc writes there).
  if (process.env.BENCH_SERVICE_STDOUT) child.stdout!.pipe(createWriteStream(process.env.BENCH_SERVICE_STDOUT, { flags: 'a' }));
  else child.stdout!.resume();
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(url);
  if (options.offGenerator) keepMainThreadOffGenerator(child.pid);
  return {
    url,
    child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => {
          // Anything the service started and left behind goes with it.
          signalGroup(child, 'SIGKILL');
          resolve();
        });
        child.kill('SIGTERM');
        setTimeout(() => signalGroup(child, 'SIGKILL'), 20_000).unref();
      }),
  };
}

export async function generate(spec: Omit<GeneratorSpec, 'connections' | 'drainMs'> & { connections?: number; drainMs?: number }): Promise<GeneratorResult> {
  const child = spawnNode(
    ['--import', 'tsx', 'bench/load-generator.ts', JSON.stringify({ connections: Number(process.env.BENCH_CONNECTIONS ?? 256), drainMs: 10_000, ...spec })],
    {},
    { cpu: GENERATOR_CPU },
  );
  const result = JSON.parse(await firstLine(child)) as GeneratorResult;
  // BENCH_TIMELINE=1: each run's answers per 500 ms, to see where within a step the time went.
  if (process.env.BENCH_TIMELINE === '1') {
    console.error(
      `timeline ${spec.mode ?? 'open'} ${spec.ratePerSecond ?? ''}/s (ms: answers p99 server-p99 wait-p99 | refused p99 server-p99 | generator late at most)`,
    );
    for (const t of result.timeline)
      console.error(
        `  ${t.atMs}: ${t.answers} ${t.p99Ms} ${t.serverP99Ms} ${t.waitP99Ms} | ${t.refused} ${t.refusedP99Ms} ${t.refusedServerP99Ms} | ${t.generatorLateMaxMs}`,
      );
  }
  return result;
}

export async function api(url: string, method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const json = (await res.json()) as any;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** `batch`: the generic webhook connector's batch mode (several events per call), with its defaults. */
export async function setUpTenant(url: string, helpdeskUrl: string, name: string, handovers: number, options: { batch?: boolean } = {}) {
  const tenant = await api(url, 'POST', '/v1/admin/tenants', ADMIN, { name });
  const config = { url: helpdeskUrl, secret: SECRET, ...(options.batch ? { batch: {} } : {}) };
  const connector = await api(url, 'POST', `/v1/admin/tenants/${tenant.id}/connectors`, ADMIN, { type: 'webhook', name, config });
  await api(url, 'POST', `/v1/admin/tenants/${tenant.id}/queues`, ADMIN, {
    name: 'q',
    connectorId: connector.id,
    maxWaiting: 100000,
    noAnswerTimeoutSeconds: 86400,
  });
  const ids: string[] = new Array(handovers);
  // Eight at a time: setting up hundreds of handovers one by one would take longer than a step.
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < handovers; i = next++)
      ids[i] = (await api(url, 'POST', '/v1/handovers', tenant.apiKey, { conversationId: `${name}-${i}`, queue: 'q', user: { id: `u${i}` } })).id;
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return { apiKey: tenant.apiKey as string, handovers: ids };
}

export async function helpdeskStats(
  url: string,
  path = '/fast',
): Promise<{ unique: number; duplicates: number; badSignatures: number; firstAt: number | null; lastAt: number | null; deliveryLatencies: number[] }> {
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

/** How many of these message ids the helpdesk never received. */
export async function missingAtHelpdesk(helpdeskUrl: string, ids: string[]): Promise<number> {
  return ((await (await fetch(`${helpdeskUrl}/missing`, { method: 'POST', body: JSON.stringify(ids) })).json()) as { missing: number }).missing;
}

/** Waits until the helpdesk has every one of `ids` (or the time is up); answers how many it still lacks. */
export async function drainIds(helpdeskUrl: string, ids: string[], timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let missing = await missingAtHelpdesk(helpdeskUrl, ids);
  while (missing > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    missing = await missingAtHelpdesk(helpdeskUrl, ids);
  }
  return missing;
}

// ---- CPU time from the OS's own accounting ----

/** Clock ticks per second of /proc's CPU figures. */
const CLK_TCK = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const value = Number(out.stdout?.trim());
  return out.status === 0 && value > 0 ? value : 100;
})();

interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** utime + stime of the process (all its threads) + cutime + cstime (its children already reaped), in ticks. */
  ticks: number;
}

function readStat(pid: number | string): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces or parentheses itself: split after the last ')'.
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const f = text.slice(close + 2).split(' ');
    // f[0] is field 3 (state): ppid is field 4, utime/stime/cutime/cstime are fields 14–17.
    return { pid: Number(pid), comm, ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined; // gone, or no /proc here
  }
}

function allStats(): ProcStat[] {
  let names: string[];
  try {
    names = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return [];
  }
  return names.map(readStat).filter((s): s is ProcStat => s !== undefined);
}

/** CPU time (ms) of a process, its threads and its descendants (live or reaped); null where /proc is not readable. */
export function processTreeCpuMs(pid: number | undefined): number | null {
  if (pid === undefined || !readStat(pid)) return null;
  const stats = allStats();
  const kids = new Map<number, ProcStat[]>();
  for (const s of stats) kids.set(s.ppid, [...(kids.get(s.ppid) ?? []), s]);
  let ticks = 0;
  const stack = stats.filter((s) => s.pid === pid);
  while (stack.length) {
    const s = stack.pop()!;
    ticks += s.ticks;
    stack.push(...(kids.get(s.pid) ?? []));
  }
  return (ticks * 1000) / CLK_TCK;
}

/**
 * The scheduler's own accounting of one thread (/proc/PID/task/TID/schedstat): ms it ran on a CPU, and
 * ms it was runnable but waited for one. Null where the file does not exist (not Linux, or no schedstats).
 * A process's main thread has the process's id: that is the service's HTTP thread.
 */
export function threadSchedMs(pid: number | undefined, tid = pid): { onCpuMs: number; waitingMs: number; at: number } | null {
  if (pid === undefined) return null;
  const fields = readText(`/proc/${pid}/task/${tid}/schedstat`)?.trim().split(' ').map(Number);
  if (!fields || fields.length < 2 || !fields.every(Number.isFinite)) return null;
  return { onCpuMs: fields[0]! / 1e6, waitingMs: fields[1]! / 1e6, at: performance.now() };
}

/** Between two readings of threadSchedMs: ms per second on a CPU and waiting for one, or nothing. */
export function schedPerSecond(
  before: ReturnType<typeof threadSchedMs>,
  after: ReturnType<typeof threadSchedMs>,
): { onCpuMsPerS: number; waitingMsPerS: number } | undefined {
  if (!before || !after || after.at <= before.at) return undefined;
  const seconds = (after.at - before.at) / 1000;
  return { onCpuMsPerS: Math.round((after.onCpuMs - before.onCpuMs) / seconds), waitingMsPerS: Math.round((after.waitingMs - before.waitingMs) / seconds) };
}

/**
 * The machine's cores together, from /proc/stat's first line (in the kernel's ticks): busy (all but idle
 * and waiting for I/O) and all, over its first eight fields (the guests' time after them is counted in
 * user and nice already). Null where the file does not exist.
 */
export function machineTicks(): { busy: number; all: number } | null {
  const fields = readText('/proc/stat')?.split('\n', 1)[0]?.trim().split(/\s+/).slice(1, 9).map(Number);
  if (!fields || fields.length < 5 || !fields.every(Number.isFinite)) return null;
  const all = fields.reduce((a, b) => a + b, 0);
  return { busy: all - fields[3]! - fields[4]!, all };
}

/** Between two readings of machineTicks: the share of the machine's cores that was busy, in %. */
export function machineBusyPercent(before: ReturnType<typeof machineTicks>, after: ReturnType<typeof machineTicks>): number | undefined {
  if (!before || !after || after.all <= before.all) return undefined;
  return Math.round((100 * (after.busy - before.busy)) / (after.all - before.all));
}

/** Between two readings of machineTicks: the CPU time the machine's cores spent busy together, in ms. */
export function machineBusyMs(before: ReturnType<typeof machineTicks>, after: ReturnType<typeof machineTicks>): number | undefined {
  if (!before || !after || after.busy < before.busy) return undefined;
  return Math.round(((after.busy - before.busy) * 1000) / CLK_TCK);
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Local ports of the TCP connections these processes hold to `remotePort` (their sockets' inodes, looked up in /proc/net/tcp{,6}). */
function localPorts(pids: number[], remotePort: number): Set<number> {
  const inodes = new Set<string>();
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6'])
    for (const line of (readText(table) ?? '').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && inodes.has(f[9]!) && parseInt(f[2]!.split(':')[1]!, 16) === remotePort) ports.add(parseInt(f[1]!.split(':')[1]!, 16));
    }
  return ports;
}

function treePids(pid: number, stats: ProcStat[]): number[] {
  const kids = new Map<number, number[]>();
  for (const s of stats) kids.set(s.ppid, [...(kids.get(s.ppid) ?? []), s.pid]);
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(kids.get(p) ?? []));
  }
  return out;
}

/**
 * CPU time spent by PostgreSQL for one service, sampled twice a second: the backends whose client is one
 * of the service's connections (matched by port: a backend's title names its client's address and port)
 * plus the server's shared processes (postmaster, WAL writer, checkpointer, …), so that other clients of
 * the same server (tests running beside the benchmark) are not counted. A backend that appears during the
 * measure counts from zero; one that ends counts up to its last sample. Where no backend can be matched
 * (a database reached through a Unix socket, or /proc not readable), every postgres process is counted
 * instead, and `method` says so.
 */
export class DatabaseCpuMeter {
  private readonly first = new Map<number, number>();
  private readonly last = new Map<number, number>();
  private matched = false;
  private readonly allBefore: number | null;
  private readonly timer: NodeJS.Timeout;

  private readonly databasePort = Number(new URL(DATABASE).port || 5432);

  constructor(private readonly servicePid: number | undefined) {
    this.allBefore = postgresCpuMs();
    this.sample(true);
    this.timer = setInterval(() => this.sample(false), 500);
  }

  private sample(initial: boolean): void {
    if (this.servicePid === undefined) return;
    const stats = allStats();
    const ports = localPorts(treePids(this.servicePid, stats), this.databasePort);
    for (const s of stats) {
      if (!s.comm.startsWith('postgres')) continue;
      const title = (readText(`/proc/${s.pid}/cmdline`) ?? '').replaceAll('\0', ' ');
      const client = /\((\d+)\)/.exec(title);
      if (client && !ports.has(Number(client[1]))) continue;
      if (client) this.matched = true;
      // Own time only: the postmaster's reaped-children time holds other clients' backends too.
      const own = readOwnTicks(s.pid);
      if (own === undefined) continue;
      if (!this.first.has(s.pid)) this.first.set(s.pid, initial ? own : 0);
      this.last.set(s.pid, own);
    }
  }

  /** CPU time (ms) since the meter started; null when no postgres process is visible. */
  read(): { ms: number | null; method: 'attributed' | 'all postgres processes' } {
    this.sample(false);
    if (!this.matched) {
      const now = postgresCpuMs();
      return { ms: now === null || this.allBefore === null ? null : now - this.allBefore, method: 'all postgres processes' };
    }
    let ticks = 0;
    for (const [pid, last] of this.last) ticks += last - (this.first.get(pid) ?? 0);
    return { ms: (ticks * 1000) / CLK_TCK, method: 'attributed' };
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

function readOwnTicks(pid: number): number | undefined {
  const text = readText(`/proc/${pid}/stat`);
  if (!text) return undefined;
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

/**
 * CPU time (ms) of every PostgreSQL process on this machine (the server and its backends; backends that
 * ended are in the server's reaped-children time); null when none is visible (a database elsewhere).
 */
export function postgresCpuMs(): number | null {
  const stats = allStats().filter((s) => s.comm.startsWith('postgres'));
  return stats.length ? (stats.reduce((sum, s) => sum + s.ticks, 0) * 1000) / CLK_TCK : null;
}
