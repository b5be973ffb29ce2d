import type { Db } from './db.js';
import type { Logger } from '../telemetry/logger.js';

/**
 * The embedded store's autovacuum. PostgreSQL's server vacuums and analyses its tables in background
 * workers; the embedded store (PGlite, one backend in one thread) has no such workers, so without this
 * nothing ever did:
 *
 * - every message leaves a deleted outbox item and an old row version of its lane behind, and their
 *   space is never made reusable: the files grow by a few hundred bytes per message for good, and the
 *   indexes with them;
 * - no table is ever analysed, so the planner estimates every table from defaults, and its choices
 *   between two indexes are ties decided by the order the indexes were made in.
 *
 * Every `intervalMs` it reads the tables' counters and vacuums those whose dead rows exceed 50 + 20 % of
 * their rows, and analyses those changed by more than 50 + 10 % since their last analysis (autovacuum's
 * default thresholds). It runs on the store's one connection like any statement, so it is kept short by
 * running often: each run has only the last interval's dead rows to clear. On PostgreSQL it does
 * nothing: the server's autovacuum does this.
 *
 * Tables only written to (messages, events, the audit log) are never vacuumed by those thresholds, and
 * PostgreSQL stops a database whose oldest unfrozen transaction id is about two billion transactions
 * old. So once the database's age passes `freezeAge` (150 million, autovacuum's
 * `autovacuum_freeze_max_age` is 200 million) a pass freezes the whole database: a long one, about once
 * every 150 million transactions, logged.
 *
 * Nor does the embedded database make checkpoints of its own (a server's checkpointer does, every
 * `checkpoint_timeout` or `max_wal_size`): its write-ahead log grew without end, 1.3 GB in a minute of
 * writes past a `max_wal_size` of 1 GB, and a restart after a crash would replay all of it. A pass makes
 * one as a server would, with its defaults: once `checkpointMs` (5 minutes, `checkpoint_timeout`) passed
 * since the last and some log was written (a megabyte), or once `checkpointBytes` (512 MB, about where
 * `max_wal_size` of 1 GB starts one) were written. A checkpoint holds the store's connection while it
 * writes out what changed and syncs it to disk (in a closed loop, checkpoints every 64 MB cost about 4 %
 * of the throughput, measured before the store synced its files at all), so it is not made more often
 * than a server would.
 */
/** Longest one vacuum, analysis or checkpoint of the embedded store may take before it is reported failed. */
const UPKEEP_TIMEOUT_MS = 15 * 60_000;

export interface StoreMaintenance {
  /** One pass now (also used by tests instead of waiting for the interval): the tables it vacuumed or analysed. */
  run(): Promise<MaintenanceRun>;
  /**
   * Stops the timer; a pass in progress ends after its current statement. Waits for that at most
   * `graceMs` (the part's share of the service's stop; unbounded without it): a vacuum can run for
   * minutes, and the store's close then waits for it within its own bound.
   */
  stop(options?: { graceMs: number }): Promise<void>;
}

export interface MaintenanceRun {
  vacuumed: string[];
  analysed: string[];
  /** The whole database was frozen (its age had passed `freezeAge`). */
  frozen?: boolean;
  /** A checkpoint was made (`checkpointMs` since the last, or `checkpointBytes` of log written since). */
  checkpointed?: boolean;
  ms: number;
}

interface TableCounters {
  name: string;
  dead: number;
  changed: number;
  rows: number;
}

export function startStoreMaintenance(
  db: Db,
  intervalMs: number,
  log: Logger,
  {
    freezeAge = 150_000_000,
    checkpointMs = 300_000,
    checkpointBytes = 512 * 1024 * 1024,
  }: { freezeAge?: number; checkpointMs?: number; checkpointBytes?: number } = {},
): StoreMaintenance {
  const embedded = db.kind === 'pglite';
  let running: Promise<MaintenanceRun> | null = null;
  let stopped = false;

  // A vacuum runs as long as the dead rows it clears take: the first of a store that was never vacuumed
  // can take minutes. Bounded on its own, not by the statement timeout (which it would outlive while
  // the database still ran it).
  const upkeep = (sql: string) => (db.upkeep ? db.upkeep(sql, UPKEEP_TIMEOUT_MS) : db.query(sql).then(() => undefined));

  async function pass(): Promise<MaintenanceRun> {
    const started = performance.now();
    // The one backend's own counts reach the shared counters it reads at most once a second, and at once
    // after this (at the end of its statement).
    await db.query('select pg_stat_force_next_flush()');
    // Analyses sample 3,000 rows a table instead of 30,000: a table of messages growing by thousands a
    // second was analysed at every pass, and with the default sample that alone held the store's one
    // connection for 130-230 ms. The service's plans need sizes, not fine distributions. (Only these
    // passes analyse, so the session-wide setting changes nothing else.)
    await db.query('set default_statistics_target = 10');
    const { rows } = await db.query<TableCounters>(
      `select s.relname as name, s.n_dead_tup::float8 as dead, s.n_mod_since_analyze::float8 as changed, greatest(c.reltuples, 0)::float8 as rows
       from pg_stat_user_tables s join pg_class c on c.oid = s.relid
       where s.schemaname = current_schema()`,
    );
    const vacuumed: string[] = [];
    const analysed: string[] = [];
    const took: Record<string, number> = {};
    for (const t of rows) {
      if (stopped) break;
      const vacuum = t.dead > 50 + 0.2 * t.rows;
      const analyse = t.changed > 50 + 0.1 * t.rows;
      if (!vacuum && !analyse) continue;
      const table = `"${t.name.replaceAll('"', '""')}"`;
      const at = performance.now();
      await upkeep(vacuum ? `vacuum (analyze) ${table}` : `analyze ${table}`);
      took[t.name] = Math.round(performance.now() - at);
      if (vacuum) vacuumed.push(t.name);
      analysed.push(t.name);
    }
    const age = await db.query<{ age: number }>('select age(datfrozenxid)::float8 as age from pg_database where datname = current_database()');
    const frozen = !stopped && (age.rows[0]?.age ?? 0) > freezeAge;
    if (frozen) {
      log.info({ age: age.rows[0]!.age }, 'embedded store: freezing the whole database, as its oldest transaction ids are getting old');
      await upkeep('vacuum (freeze)');
    }
    const wal = await db.query<{ bytes: number; ms: number }>(
      `select pg_wal_lsn_diff(pg_current_wal_lsn(), c.redo_lsn)::float8 as bytes, (extract(epoch from now() - c.checkpoint_time) * 1000)::float8 as ms
       from pg_control_checkpoint() c`,
    );
    const since = wal.rows[0] ?? { bytes: 0, ms: 0 };
    const checkpointed = !stopped && (since.bytes >= checkpointBytes || (since.ms >= checkpointMs && since.bytes >= 1024 * 1024));
    if (checkpointed) {
      const at = performance.now();
      await upkeep('checkpoint');
      took.checkpoint = Math.round(performance.now() - at);
    }
    const ms = Math.round(performance.now() - started);
    // Every other statement waits while it runs: a long one is worth knowing about.
    if (ms >= 1000) log.info({ vacuumed, analysed, ms, took }, 'embedded store: vacuuming and analysing took a second or more');
    else if (vacuumed.length > 0 || analysed.length > 0) log.debug({ vacuumed, analysed, ms, took }, 'embedded store: tables vacuumed and analysed');
    return { vacuumed, analysed, ...(frozen ? { frozen } : {}), ...(checkpointed ? { checkpointed } : {}), ms };
  }

  const run = (): Promise<MaintenanceRun> => {
    if (!embedded) return Promise.resolve({ vacuumed: [], analysed: [], ms: 0 });
    running ??= pass().finally(() => {
      running = null;
    });
    return running;
  };

  const timer =
    embedded && intervalMs > 0
      ? setInterval(
          () =>
            void run().catch((err: unknown) => {
              if (!stopped) log.warn({ err }, 'embedded store: vacuuming and analysing its tables failed; the next run tries again');
            }),
          intervalMs,
        )
      : null;
  timer?.unref();

  return {
    run,
    async stop(options) {
      stopped = true;
      if (timer) clearInterval(timer);
      const pass = running?.then(
        () => undefined,
        () => undefined,
      );
      if (!pass) return;
      if (!options) return pass;
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([pass, new Promise<void>((resolve) => (grace = setTimeout(resolve, options.graceMs)))]);
      clearTimeout(grace);
    },
  };
}
