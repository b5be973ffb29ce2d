/**
 * What the hot path's two statements cost PostgreSQL per message, without the service around them: the
 * accept statement (src/handover/accept-user-messages.ts) and the completion statement
 * (src/delivery/completions.ts), run back to back from 4 connections in batches of 16 messages over 256
 * handovers, with the database's CPU read from /proc for those connections' backends. Far less noisy
 * than the whole benchmark, where the service, the helpdesk and the load generator share the cores.
 *
 *   npm run build && node --import tsx bench/db-statements.ts [variant...]
 *
 * BENCH_DB_CONNECTIONS and BENCH_DB_BATCH change the 4 connections and the batches of 16.
 *
 * Variants, each in a schema of its own, alternating (BENCH_DB_ROUNDS rounds, BENCH_DB_MS each):
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
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { DATABASE } from './harness.js';
import { ACCEPT_USER_MESSAGES } from '../src/handover/accept-user-messages.js';
import { RECORD_COMPLETIONS } from '../src/delivery/completions.js';
import { createPgDb } from '../src/store/pg-db.js';
import { PLANNER_SETTINGS } from '../src/store/db.js';
import { migrate } from '../src/store/migrate.js';

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

async function measure(variant: string): Promise<{ perSecond: number; cpuUs: number }> {
  const schema = `dbstmt_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: DATABASE });
  await admin.connect();
  const clients: pg.Client[] = [];
  try {
    await admin.query(`create schema ${schema}`);
    const db = createPgDb({ url: DATABASE, poolSize: 2, poolTimeoutMs: 5000, statementTimeoutMs: 0, idleInTransactionTimeoutMs: 0, searchPath: schema });
    await migrate(db, () => {});
    await db.close();
    await admin.query(`set search_path = ${schema};
      insert into tenants (id, name, webhook_secret) values ('t1', 't1', 's');
      insert into connectors (id, tenant_id, type, name, config) values ('c1', 't1', 'webhook', 'c1', '{}');
      insert into queues (id, tenant_id, name, connector_id) values ('q1', 't1', 'q1', 'c1');
      insert into handovers (id, tenant_id, conversation_id, queue_id, connector_id, state, user_info)
        select 'ho_' || g, 't1', 'conv_' || g, 'q1', 'c1', 'active', '{"id":"u1","name":"U"}' from generate_series(1, ${HANDOVERS}) g`);
    let accept = ACCEPT_USER_MESSAGES.text;
    if (variant === 'no-outbox-rows') {
      accept = replaced(accept, /, item as \([\s\S]*?returning id, lane, seq\s*\)/, '');
      accept = replaced(accept, 'left join item it on it.lane = p.lane and it.seq = p.lane_seq', '');
      accept = replaced(accept, 'it.id as outbox_id', 'null::bigint as outbox_id, $10::int as max_attempts');
    }
    if (variant === 'indexed-lanes')
      await admin.query(`set search_path = ${schema};
        create index outbox_lanes_due on outbox_lanes (next_attempt_at) where pending > 0;
        create index outbox_lanes_connector_pending on outbox_lanes (connector_id) where pending > 0 and connector_id is not null;
        alter table outbox_lanes reset (fillfactor)`);
    if (variant === 'extra-sql') await admin.query(`set search_path = ${schema}; ${process.env.BENCH_DB_EXTRA_SQL ?? ''}`);
    if (!['as-is', 'no-outbox-rows', 'indexed-lanes', 'default-planner', 'extra-sql'].includes(variant)) throw new Error(`unknown variant ${variant}`);

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
        const at = new Date().toISOString();
        const { rows } = await c.query<{ outbox_id: string | null }>({
          name: 'accept',
          text: accept,
          values: [
            batch.map((b) => b.handover),
            batch.map(() => 't1'),
            batch.map((b) => `client_${b.id}`),
            batch.map((b) => b.id),
            batch.map(() => 'hello, I need help with my order'),
            batch.map(() => '[]'),
            batch.map((b) =>
              JSON.stringify({
                kind: 'message.created',
                eventId: `evt_${b.id}`,
                handoverId: b.handover,
                message: { id: b.id, text: 'hello', attachments: [], createdAt: at },
              }),
            ),
            batch.map(() => null),
            batch.map(() => at),
            10,
            null,
            0,
            [],
            [...new Set(batch.map((b) => b.handover))],
          ],
        });
        const lanes = [...new Set(batch.map((b) => `${b.handover}:agent`))];
        const ids = rows.map((r) => r.outbox_id).filter((id): id is string => id !== null);
        // Without outbox rows the lanes are still released, as a run's end does.
        await c.query({
          name: 'complete',
          text: RECORD_COMPLETIONS.text,
          values: [[], [], variant === 'no-outbox-rows' ? lanes : [], [], [], 'bench', lanes, [], ids],
        });
        messages += BATCH;
      }
    };
    const running = clients.map((c, k) => loop(c, k));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const m0 = messages;
    const t0 = cpuTicks();
    const started = Date.now();
    await new Promise((resolve) => setTimeout(resolve, MS));
    const m1 = messages;
    const t1 = cpuTicks();
    const seconds = (Date.now() - started) / 1000;
    stop = true;
    await Promise.all(running);
    // Clock ticks of 10 ms (USER_HZ 100).
    return { perSecond: Math.round((m1 - m0) / seconds), cpuUs: Math.round(((t1 - t0) * 10_000) / (m1 - m0)) };
  } finally {
    for (const c of clients) await c.end().catch(() => {});
    await admin.query(`drop schema if exists ${schema} cascade`).catch(() => {});
    await admin.end();
  }
}

const results = new Map<string, number[]>(variants.map((v) => [v, []]));
for (let round = 1; round <= ROUNDS; round++) {
  for (const variant of variants) {
    const { perSecond, cpuUs } = await measure(variant);
    results.get(variant)!.push(cpuUs);
    console.log(`round ${round} ${variant}: ${perSecond} msg/s, the database's CPU ${cpuUs} µs a message`);
  }
}
for (const [variant, figures] of results) {
  const sorted = [...figures].sort((a, b) => a - b);
  console.log(`${variant}: ${sorted[0]}–${sorted[sorted.length - 1]} µs a message (median ${sorted[Math.floor(sorted.length / 2)]})`);
}
