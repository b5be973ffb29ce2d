/**
 * The store port: the only way the rest of the service talks to the database.
 *
 * Two adapters implement it with the same SQL and the same migrations:
 * - `pg-db.ts`: a real PostgreSQL server through a bounded `pg` pool (DATABASE_URL set);
 * - `pglite-db.ts`: PGlite, PostgreSQL compiled to WASM, in-process (the embedded default).
 *
 * Conventions every caller can rely on, whichever adapter runs:
 * - parameters are `$1, $2, ...`; pass JSON values already stringified and cast them (`$1::jsonb`);
 * - `int8`/`bigint` columns come back as JS numbers (safe up to 2^53), `jsonb` as parsed values,
 *   `timestamptz` as `Date`;
 * - every call is bounded: pool checkout, statement and idle-in-transaction timeouts come from config;
 *   failures are thrown as `AppError` with a code that names the real cause
 *   (`database_unavailable`, `database_pool_exhausted`, `database_timeout`), never a raw driver message.
 */
export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

/**
 * A statement of the hot path, named so that the PostgreSQL adapter prepares it once per connection and
 * then only binds and executes it: parsing and planning the accept statement took about three times
 * as long as running it. Only for statements whose result columns are named (no `select *` of a
 * table): a prepared statement fails once a migration changes the row type it returns. The embedded
 * store runs its text as any other statement.
 */
export interface NamedStatement {
  readonly name: string;
  readonly text: string;
}

export type Sql = string | NamedStatement;

const statementNames = new Map<string, string>();

/** Names a hot-path statement (see NamedStatement). A name stands for one text only. */
export function namedStatement(name: string, text: string): NamedStatement {
  const known = statementNames.get(name);
  if (known !== undefined && known !== text) throw new Error(`statement name ${name} is already used for another text`);
  statementNames.set(name, text);
  return { name, text };
}

export interface Queryable {
  query<T = Record<string, unknown>>(sql: Sql, params?: readonly unknown[]): Promise<QueryResult<T>>;
}

export interface Db extends Queryable {
  /** Which adapter runs: shown on the status page and in `doctor`. */
  readonly kind: 'postgres' | 'pglite';
  /**
   * Runs `fn` in one transaction (READ COMMITTED). Commits when `fn` resolves, rolls back when it throws
   * and rethrows. Never make a network call inside `fn`.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Cheap liveness probe used by readiness: `select 1` within the statement timeout. */
  ping(): Promise<void>;
  /** Pool figures for metrics; PGlite reports one connection. */
  poolStats(): { total: number; idle: number; waiting: number };
  /**
   * PostgreSQL: what another pool needs to reach the same database and schema (the delivery thread
   * opens its own); absent on the embedded store, which has one connection.
   */
  readonly connection?: PgConnection;
  /**
   * The embedded database's own thread: its CPU time (user + system, seconds), as it last told it (every
   * 250 ms; null before that or off Linux). Absent where the database is not a thread of this process.
   */
  threadCpuSeconds?(): number | null;
  /**
   * The embedded store only: one statement of the store's own upkeep (a vacuum, a checkpoint; see
   * embedded-maintenance.ts), answered within `timeoutMs` instead of the statement timeout: the first
   * vacuum of a store that was never vacuumed runs as long as it runs. Callers meanwhile wait for the
   * connection within their own bound, and are refused past it, as behind any statement.
   */
  upkeep?(sql: string, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** A PostgreSQL pool's settings, without its size and hooks. */
export interface PgConnection {
  url: string;
  searchPath?: string;
  poolTimeoutMs: number;
  statementTimeoutMs: number;
  idleInTransactionTimeoutMs: number;
  /** Idle connections closed after this long; 0 or absent: kept (see createPgDb). */
  idleTimeoutMs?: number;
  /** Connections closed once this old; 0 or absent: no limit. */
  maxLifetimeMs?: number;
  preparedStatements?: boolean;
}

/**
 * The planner settings of the service's sessions (PostgreSQL and the embedded store alike).
 *
 * `enable_seqscan = off`: the hot path's statements are prepared once per connection, and PostgreSQL
 * keeps the generic plan it made after their fifth run until the statistics of a table they read
 * change. Made while a table was small (an instance's first seconds; the outbox, whose live rows are
 * few, right after a vacuum), that plan reads the whole table where an index finds the rows — and it
 * kept doing so as the table grew between vacuums: in a closed loop the outbox reached 2,900 pages of
 * deleted items in 20 s, and every batch of completions read all of them to delete a few. The hot
 * path's statements are written for indexes, so with this setting their plans take them whatever the
 * tables' size; a statement with no index to use (erasure's and retention's deletions by conversation)
 * still scans, with the same plan (the setting only makes a scan the last choice). An operator's own
 * `options` (in the database URL) come after these and win (pg-db.ts, sessionOptions).
 *
 * `jit = off`: the setting makes a scan the last choice by adding a huge cost to it, and a plan that
 * still scans (a table with no index for the query) then looked costly enough for PostgreSQL to compile
 * it to machine code first, 100–200 ms for a count of a few rows. Compiling never pays for the
 * service's statements, which each read a few rows. docs/performance.md, "Plans made on small tables".
 *
 * `plan_cache_mode = force_generic_plan`: a prepared statement is planned once per connection. By
 * default PostgreSQL plans a statement's first five runs for their values and keeps planning each run
 * afresh while those plans look cheaper than the generic one; the accept statement's first runs are
 * batches of one message or two under light load, whose plans always look cheaper, so it was planned
 * again at every batch, about half the database's CPU per message at such batches. The service's
 * statements are written for the generic plan (every lookup by an index, whatever the values); a
 * statement sent without a name is planned once either way, now without its values too, so one whose
 * conditions are optional (the desk's history, the audit log, the next chat of a queue) is built with
 * only the conditions given, never as "$n is null or …", which no index can serve in such a plan.
 * docs/performance.md, "Planned at every batch".
 */
export const PLANNER_SETTINGS: ReadonlyArray<readonly [string, string]> = [
  ['enable_seqscan', 'off'],
  ['jit', 'off'],
  ['plan_cache_mode', 'force_generic_plan'],
];
