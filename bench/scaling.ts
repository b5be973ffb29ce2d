/**
 * `npm run bench:scaling`: the figures behind docs/scaling.md, measured in one run on this machine —
 * PostgreSQL's write ceiling (one row per commit against 100 rows per statement), and the end-to-end
 * relay at one and at two service instances sharing one database, with the database transactions each
 * relayed message costs. Written to bench/results/scaling.{json,md}.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import pg from 'pg';
import {
  children,
  DATABASE,
  schemaUrl,
  drainDeliveries,
  firstLine,
  generate,
  HANDOVERS,
  helpdeskStats,
  pct,
  SECRET,
  setUpTenant,
  spawnNode,
  startService,
  STEP_MS,
  type Service,
} from './harness.js';

const WRITE_MS = Number(process.env.BENCH_WRITE_MS ?? 5000);
const RATES = (process.env.BENCH_SCALING_RATES ?? '250,500,750,1000,1500').split(',').map(Number);

interface WriteFigure {
  name: string;
  clients: number;
  rowsPerStatement: number;
  rowsPerSecond: number;
  commitsPerSecond: number;
}

interface RelayFigure {
  instances: number;
  offeredPerSecond: number;
  acceptedPerSecond: number;
  acceptedP99Ms: number | null;
  deliveredPerSecond: number;
  deliveryP99Ms: number | null;
  /** Database transactions committed per delivered message during the step (API and delivery). */
  commitsPerMessage: number | null;
}

async function commits(db: pg.Pool): Promise<number> {
  const { rows } = await db.query<{ n: string }>('select xact_commit::text as n from pg_stat_database where datname = current_database()');
  return Number(rows[0]!.n);
}

/** Inserts rows shaped like messages for `WRITE_MS`, from `clients` connections, `perStatement` rows at a time. */
async function writeCeiling(schema: string, clients: number, perStatement: number): Promise<WriteFigure> {
  const pool = new pg.Pool({ connectionString: schemaUrl(schema), max: clients });
  await pool.query(
    'create table if not exists w (id bigserial primary key, handover_id text not null, seq int not null, body jsonb not null, created_at timestamptz not null default now())',
  );
  const body = JSON.stringify({ text: 'a message of ordinary length, about as long as people write in chats', attachments: [] });
  const values = Array.from({ length: perStatement }, (_, i) => `($${i * 3 + 1}, $${i * 3 + 2}, $${i * 3 + 3}::jsonb)`).join(', ');
  const sql = `insert into w (handover_id, seq, body) values ${values}`;
  let rows = 0;
  let statements = 0;
  const until = performance.now() + WRITE_MS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      let seq = 0;
      while (performance.now() < until) {
        const params: unknown[] = [];
        for (let i = 0; i < perStatement; i++) params.push(`h-${c}`, seq++, body);
        await pool.query(sql, params);
        rows += perStatement;
        statements++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await pool.end();
  return {
    name: perStatement === 1 ? 'one row per commit' : `${perStatement} rows per statement`,
    clients,
    rowsPerStatement: perStatement,
    rowsPerSecond: Math.round(rows / seconds),
    commitsPerSecond: Math.round(statements / seconds),
  };
}

async function relayAt(instances: number, schema: string, db: pg.Pool, helpdeskUrl: string): Promise<RelayFigure[]> {
  const services: Service[] = [];
  for (let i = 0; i < instances; i++) services.push(await startService(schemaUrl(schema), {}));
  const tenant = await setUpTenant(services[0]!.url, `${helpdeskUrl}/fast`, `scale${instances}`, HANDOVERS);
  const figures: RelayFigure[] = [];
  try {
    let run = 0;
    for (const rate of RATES) {
      await fetch(`${helpdeskUrl}/reset`, { method: 'POST' });
      const before = await commits(db);
      // Round robin over the instances, as a load balancer would.
      const paths = tenant.handovers.map((h, i) => `${services[i % instances]!.url}/v1/handovers/${h}/messages`);
      const r = await generate({
        baseUrl: '',
        paths,
        body: '{"id":"{id}","text":"scaling {i}"}',
        headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json' },
        ratePerSecond: rate,
        durationMs: STEP_MS,
        idPrefix: `n${instances}-${run++}`,
      });
      const t0 = Date.now();
      const delivered = await drainDeliveries(helpdeskUrl, r.acceptedIds.length, 30_000);
      const after = await commits(db);
      const stats = await helpdeskStats(helpdeskUrl);
      const figure: RelayFigure = {
        instances,
        offeredPerSecond: rate,
        acceptedPerSecond: Math.round(r.okLatencies.length / (STEP_MS / 1000)),
        acceptedP99Ms: pct(r.okLatencies, 99) === null ? null : Math.round(pct(r.okLatencies, 99)!),
        deliveredPerSecond: Math.round(delivered / (STEP_MS / 1000 + (Date.now() - t0) / 1000)),
        deliveryP99Ms: pct(stats.deliveryLatencies, 99),
        commitsPerMessage: delivered > 0 ? Math.round(((after - before) / delivered) * 10) / 10 : null,
      };
      figures.push(figure);
      console.log(
        `${instances} instance(s) @${rate}/s: accepted ${figure.acceptedPerSecond}/s (p99 ${figure.acceptedP99Ms} ms), delivered ${figure.deliveredPerSecond}/s (p99 ${figure.deliveryP99Ms} ms), ${figure.commitsPerMessage} commits per message`,
      );
    }
  } finally {
    await Promise.all(services.map((s) => s.stop()));
  }
  return figures;
}

const meets = (f: RelayFigure) =>
  f.acceptedPerSecond >= f.offeredPerSecond * 0.99 && (f.acceptedP99Ms ?? Infinity) <= 250 && (f.deliveryP99Ms ?? Infinity) <= 1000;

function render(report: { machine: string; writes: WriteFigure[]; relay: RelayFigure[]; capacity: Record<number, number>; durationSeconds: number }): string {
  const lines = [
    '# Scaling figures',
    '',
    `Machine: ${report.machine}. PostgreSQL on the same machine; the load generator, the helpdesk and every service instance share its cores. Run took ${report.durationSeconds} s.`,
    '',
    '## PostgreSQL write ceiling',
    '',
    '| writes | clients | rows/s | commits/s |',
    '|---|---|---|---|',
    ...report.writes.map((w) => `| ${w.name} | ${w.clients} | ${w.rowsPerSecond} | ${w.commitsPerSecond} |`),
    '',
    '## Relay at one and two instances',
    '',
    'End to end: bot → service → helpdesk. Capacity: the highest offered rate with ≥ 99 % accepted, accepted p99 ≤ 250 ms and delivery p99 ≤ 1 s.',
    '',
    '| instances | offered/s | accepted/s | accepted p99 ms | delivered/s | delivery p99 ms | commits per message |',
    '|---|---|---|---|---|---|---|',
    ...report.relay.map(
      (f) =>
        `| ${f.instances} | ${f.offeredPerSecond} | ${f.acceptedPerSecond} | ${f.acceptedP99Ms ?? '–'} | ${f.deliveredPerSecond} | ${f.deliveryP99Ms ?? '–'} | ${f.commitsPerMessage ?? '–'} |`,
    ),
    '',
    ...Object.entries(report.capacity).map(([n, c]) =>
      c > 0 ? `Capacity with ${n} instance(s): **${c} msg/s**.` : `Capacity with ${n} instance(s): below the lowest step (${RATES[0]} msg/s).`,
    ),
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  mkdirSync('bench/results', { recursive: true });
  const startedAt = Date.now();
  const db = new pg.Pool({ connectionString: DATABASE, max: 2 });
  const schemas: string[] = [];
  const schema = async (): Promise<string> => {
    const name = `scale_${randomBytes(4).toString('hex')}`;
    await db.query(`create schema ${name}`);
    schemas.push(name);
    return name;
  };
  try {
    const writes: WriteFigure[] = [];
    for (const [clients, perStatement] of [
      [16, 1],
      [4, 100],
    ] as const) {
      writes.push(await writeCeiling(await schema(), clients, perStatement));
      console.log(`write ceiling: ${writes.at(-1)!.name}, ${clients} clients: ${writes.at(-1)!.rowsPerSecond} rows/s`);
    }
    const helpdesk = spawnNode(['--import', 'tsx', 'bench/helpdesk-server.ts', '0', SECRET, '5000']);
    const helpdeskUrl = `http://127.0.0.1:${JSON.parse(await firstLine(helpdesk)).port}`;
    const relay: RelayFigure[] = [];
    for (const instances of [1, 2]) relay.push(...(await relayAt(instances, await schema(), db, helpdeskUrl)));
    const capacity: Record<number, number> = {};
    for (const n of [1, 2]) capacity[n] = Math.max(0, ...relay.filter((f) => f.instances === n && meets(f)).map((f) => f.offeredPerSecond));
    const report = {
      machine: `${cpus().length} cores, Node ${process.version}`,
      writes,
      relay,
      capacity,
      durationSeconds: Math.round((Date.now() - startedAt) / 1000),
    };
    writeFileSync('bench/results/scaling.json', JSON.stringify(report, null, 2) + '\n');
    writeFileSync('bench/results/scaling.md', render(report));
    console.log(`\nwrote bench/results/scaling.json and .md in ${report.durationSeconds} s`);
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    for (const name of schemas) await db.query(`drop schema if exists ${name} cascade`).catch(() => {});
    await db.end();
  }
}

main().catch((err) => {
  console.error(err);
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  process.exit(1);
});
