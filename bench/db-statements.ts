/**
 * What the hot path's two statements cost PostgreSQL per message, without the service around them: the
 * accept statement (src/handover/accept-user-messages.ts) and the completion statement
 * (src/delivery/completions.ts), run back to back from 4 connections in batches of 16 messages over 256
 * handovers, with the database's CPU read from /proc for those connections' backends. Far less noisy
 * than the whole benchmark, where the service, the helpdesk and the load generator share the cores.
 *
 *   npm run build && node --import tsx bench/db-statements.ts [variant...]
 *
 * BENCH_DB_CONNECTIONS and BENCH_DB_BATCH change the 4 connections and the batches of 16. Each round also
 * reports the write-ahead log written per message, and the client's CPU per message (this process's main
 * thread: building the statements' parameters and reading their rows).
 *
 * BENCH_DB_STORE=embedded measures the embedded store instead: PGlite in a thread of its own, as the
 * service runs it, with its one connection (the statements one after another), the CPU of this process's
 * other threads (that thread, with V8's and libuv's helpers) read from /proc.
 *
 * Variants, each in a schema (or embedded database) of its own, alternating (BENCH_DB_ROUNDS rounds, BENCH_DB_MS each):
 * - `as-is`: the statements and schema as they are;
 * - `no-outbox-rows`: the accept statement without its outbox insert, the completion without the delete
 *   (what a message would cost the database with no outbox row of its own);
 * - `indexed-lanes`: the lanes' two partial indexes on `pending` that migration 023 dropped, made again:
 *   what the two updates of a lane per message cost when they are not heap-only (as before 023);
 * - `default-planner`: the statements as they are, without the sessions' planner settings
 *   (PLANNER_SETTINGS in src/store/db.ts), as they ran before those;
 * - `extra-sql`: the statements as they are, with BENCH_DB_EXTRA_SQL run on the schema first (an index
 *   dropped, a storage parameter set: a quick measure of what a schema change would do).
 * `no-outbox-rows` and `extra-sql` measure designs not built, not something the service can run.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { DATABASE } from './harness.js';
import { ACCEPT_USER_MESSAGES } from '../src/handover/accept-user-messages.js';
import { RECORD_COMPLETIONS } from '../src/delivery/completions.js';
import { createPgDb } from '../src/store/pg-db.js';
import { namedStatement, PLANNER_SETTINGS } from '../src/store/db.js';
import { createPgliteDb } from '../src/store/pglite-db.js';
import { threadCpuSeconds } from '../src/telemetry/thread-cpu.js';
import { migrate } from '../src/store/migrate.js';

/** BENCH_DB_STORE=embedded: the embedded store (PGlite in its own thread, one connection) instead of PostgreSQL. */
const STORE = process.env.BENCH_DB_STORE === 'embedded' ? 'embedded' : 'postgres';
const CONNECTIONS = Number(process.env.BENCH_DB_CONNECTIONS ?? 4);
const BATCH = Number(process.env.BENCH_DB_BATCH ?? 16);
const HANDOVERS = 256;
const MS = Number(process.env.BENCH_DB_MS ?? 6000);
const ROUNDS = Number(process.env.BENCH_DB_ROUNDS ?? 3);
const variants = process.argv.length > 2 ? process.argv.slice(2) : ['as-is', 'no-outbox-rows', 'indexed-lanes'];

/** Replaces `from` in `text`, or fails: a statement that changed must not be measured as if it had not. */
function replaced(text: string, from: string | RegExp, to: string): string {
  const out = text.replace(from, to);
  if (out === text) throw new Error(`the statement no longer contains ${String(from)}: update bench/db-statements.ts`);
  return out;
}

const VARIANTS = ['as-is', 'no-outbox-rows', 'indexed-lanes', 'default-planner', 'extra-sql'];

/** The tenant, its helpdesk and its handovers; then what the variant changes in the schema. */
function setUp(variant: string): string[] {
  if (!VARIANTS.includes(variant)) throw new Error(`unknown variant ${variant}`);
  const statements = [
    `insert into tenants (id, name, webhook_secret) values ('t1', 't1', 's')`,
    `insert into connectors (id, tenant_id, type, name, config) values ('c1', 't1', 'webhook', 'c1', '{}')`,
    `insert into queues (id, tenant_id, name, connector_id) values ('q1', 't1', 'q1', 'c1')`,
    `insert into handovers (id, tenant_id, conversation_id, queue_id, connector_id, state, user_info)
       select 'ho_' || g, 't1', 'conv_' || g, 'q1', 'c1', 'active', '{"id":"u1","name":"U"}' from generate_series(1, ${HANDOVERS}) g`,
  ];
  if (variant === 'indexed-lanes')
    statements.push(
      'create index outbox_lanes_due on outbox_lanes (next_attempt_at) where pending > 0',
      'create index outbox_lanes_connector_pending on outbox_lanes (connector_id) where pending > 0 and connector_id is not null',
      'alter table outbox_lanes reset (fillfactor)',
    );
  if (variant === 'extra-sql') statements.push(process.env.BENCH_DB_EXTRA_SQL ?? 'select 1');
  return statements;
}

/** The accept statement as the variant runs it. */
function acceptText(variant: string): string {
  let accept = ACCEPT_USER_MESSAGES.text;
  if (variant === 'no-outbox-rows') {
    accept = replaced(accept, /, item as \([\s\S]*?returning id, lane, seq\s*\)/, '');
    accept = replaced(accept, 'left join item it on it.lane = p.lane and it.seq = p.lane_seq', '');
    accept = replaced(accept, 'it.id as outbox_id', 'null::bigint as outbox_id, $10::int as max_attempts');
  }
  return accept;
}

/** The accept statement's parameters for a batch: each message to its own handover. */
function acceptParams(batch: Array<{ handover: string; id: string }>): unknown[] {
  const at = new Date().toISOString();
  return [
    batch.map((b) => b.handover),
    batch.map(() => 't1'),
    batch.map((b) => `client_${b.id}`),
    batch.map((b) => b.id),
    batch.map(() => 'hello, I need help with my order'),
    batch.map(() => '[]'),
    batch.map((b) => `evt_${b.id}`),
    batch.map(() => null),
    batch.map(() => at),
    10,
    null,
    0,
    [],
    [...new Set(batch.map((b) => b.handover))],
  ];
}

/** The completion statement's parameters: the batch's items delivered at their first attempt, its lanes. */
function completionParams(variant: string, batch: Array<{ handover: string }>, outboxIds: string[]): unknown[] {
  const lanes = [...new Set(batch.map((b) => `${b.handover}:agent`))];
  // Without outbox rows the lanes are still released, as a run's end does.
  return [[], [], variant === 'no-outbox-rows' ? lanes : [], [], [], 'bench', lanes, [], outboxIds];
}

interface Figures {
  perSecond: number;
  /** CPU µs a message. */
  cpuUs: number;
  /** Bytes of write-ahead log a message. */
  walBytes: number;
  /** CPU µs a message of this process's main thread: the client's side (building parameters, reading rows). */
  clientUs: number;
}

/**
 * After 2 s of the load already running, its figures over the next BENCH_DB_MS: messages a second, CPU
 * (from `cpuSeconds`) and write-ahead log (read through `query`) per message.
 */
async function measureWindow(
  messages: () => number,
  cpuSeconds: () => number,
  query: (sql: string, params?: unknown[]) => Promise<{ rows: Array<Record<string, unknown>> }>,
): Promise<Figures> {
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const m0 = messages();
  const c0 = cpuSeconds();
  const t0 = threadCpuSeconds() ?? NaN;
  const wal0 = String((await query('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn);
  const started = Date.now();
  await new Promise((resolve) => setTimeout(resolve, MS));
  const m1 = messages();
  const c1 = cpuSeconds();
  const t1 = threadCpuSeconds() ?? NaN;
  const walBytes = Number((await query('select pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn) as bytes', [wal0])).rows[0]!.bytes);
  const seconds = (Date.now() - started) / 1000;
  const n = m1 - m0;
  return {
    perSecond: Math.round(n / seconds),
    cpuUs: Math.round(((c1 - c0) * 1e6) / n),
    walBytes: Math.round(walBytes / n),
    clientUs: Math.round(((t1 - t0) * 1e6) / n),
  };
}

async function measure(variant: string): Promise<Figures> {
  const schema = `dbstmt_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: DATABASE });
  await admin.connect();
  const clients: pg.Client[] = [];
  try {
    await admin.query(`create schema ${schema}`);
    const db = createPgDb({ url: DATABASE, poolSize: 2, poolTimeoutMs: 5000, statementTimeoutMs: 0, idleInTransactionTimeoutMs: 0, searchPath: schema });
    await migrate(db, () => {});
    await db.close();
    await admin.query(`set search_path = ${schema}`);
    for (const sql of setUp(variant)) await admin.query(sql);
    const accept = acceptText(variant);

    for (let i = 0; i < CONNECTIONS; i++) {
      const c = new pg.Client({ connectionString: DATABASE });
      await c.connect();
      clients.push(c);
      await c.query(`set search_path = ${schema}`);
      // The service's sessions' planner settings, except in the variant measuring the plans without them.
      if (variant !== 'default-planner') for (const [name, value] of PLANNER_SETTINGS) await c.query(`set ${name} = ${value}`);
    }
    const pids = await Promise.all(clients.map(async (c) => (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid));
    const cpuTicks = () =>
      pids.reduce((sum, pid) => {
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        return sum + Number(fields[11]) + Number(fields[12]);
      }, 0);

    let messages = 0;
    let seq = 0;
    let stop = false;
    const loop = async (c: pg.Client, k: number) => {
      // Each connection its own handovers, a batch's messages each to a different one.
      const mine = Array.from({ length: HANDOVERS / CONNECTIONS }, (_, i) => `ho_${k * (HANDOVERS / CONNECTIONS) + i + 1}`);
      let next = 0;
      while (!stop) {
        const batch = Array.from({ length: BATCH }, () => ({ handover: mine[next++ % mine.length]!, id: `msg_${k}_${++seq}` }));
        const { rows } = await c.query<{ outbox_id: string | null }>({ name: 'accept', text: accept, values: acceptParams(batch) });
        const ids = rows.map((r) => r.outbox_id).filter((id): id is string => id !== null);
        await c.query({ name: 'complete', text: RECORD_COMPLETIONS.text, values: completionParams(variant, batch, ids) });
        messages += BATCH;
      }
    };
    const running = clients.map((c, k) => loop(c, k));
    // Clock ticks of 10 ms (USER_HZ 100).
    const figures = await measureWindow(
      () => messages,
      () => cpuTicks() / 100,
      (sql, params) => admin.query(sql, params),
    );
    stop = true;
    await Promise.all(running);
    return figures;
  } finally {
    for (const c of clients) await c.end().catch(() => {});
    await admin.query(`drop schema if exists ${schema} cascade`).catch(() => {});
    await admin.end();
  }
}

/** CPU seconds of this process's threads other than this one: the embedded database's thread, mostly. */
function otherThreadsCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6 - (threadCpuSeconds() ?? 0);
}

/**
 * The embedded store: the same statements, one after another on its one connection, in its own thread as
 * the service runs it; the CPU is this process's other threads' (the database's thread, and V8's and
 * libuv's helpers, which the service has too).
 */
async function measureEmbedded(variant: string): Promise<Figures> {
  if (variant === 'default-planner') throw new Error('the embedded store has no default-planner variant');
  const dir = mkdtempSync(join(tmpdir(), 'dbstmt-'));
  const db = await createPgliteDb({ dataDir: dir, thread: { replyTimeoutMs: 60_000 } });
  try {
    await migrate(db, () => {});
    for (const sql of setUp(variant)) await db.query(sql);
    const accept = namedStatement(`accept-${variant}`, acceptText(variant));
    const complete = namedStatement('complete', RECORD_COMPLETIONS.text);
    let messages = 0;
    let seq = 0;
    let stop = false;
    const loop = async () => {
      let next = 0;
      while (!stop) {
        const batch = Array.from({ length: BATCH }, () => ({ handover: `ho_${(next++ % HANDOVERS) + 1}`, id: `msg_${++seq}` }));
        const { rows } = await db.query<{ outbox_id: string | null }>(accept, acceptParams(batch));
        const ids = rows.map((r) => r.outbox_id).filter((id): id is string => id !== null);
        await db.query(complete, completionParams(variant, batch, ids));
        messages += BATCH;
      }
    };
    const running = loop();
    const figures = await measureWindow(
      () => messages,
      otherThreadsCpuSeconds,
      (sql, params) => db.query(sql, params),
    );
    stop = true;
    await running;
    return figures;
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const results = new Map<string, number[]>(variants.map((v) => [v, []]));
for (let round = 1; round <= ROUNDS; round++) {
  for (const variant of variants) {
    const { perSecond, cpuUs, walBytes, clientUs } = STORE === 'embedded' ? await measureEmbedded(variant) : await measure(variant);
    results.get(variant)!.push(cpuUs);
    const whose = STORE === 'embedded' ? "the database's thread (and the process's helper threads)" : "the database's backends";
    console.log(
      `round ${round} ${variant}: ${perSecond} msg/s, CPU of ${whose} ${cpuUs} µs a message, ${walBytes} bytes of WAL a message; the client's thread ${clientUs} µs a message`,
    );
  }
}
for (const [variant, figures] of results) {
  const sorted = [...figures].sort((a, b) => a - b);
  console.log(`${variant}: ${sorted[0]}–${sorted[sorted.length - 1]} µs a message (median ${sorted[Math.floor(sorted.length / 2)]})`);
}
