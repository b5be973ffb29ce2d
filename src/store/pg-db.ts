import pg from 'pg';
import { AppError } from '../resilience/errors.js';
import { assertTimeLeft, remainingMs } from '../resilience/deadline.js';
import { PLANNER_SETTINGS, type Db, type Queryable, type QueryResult, type Sql } from './db.js';
import { PG_ERROR, TX_MISUSE } from './pg-errors.js';

/**
 * The PostgreSQL adapter of the store port: one bounded `pg.Pool`.
 *
 * Every wait is bounded so that a sick database turns into fast, named errors instead of piled-up
 * requests: pool checkout (`poolTimeoutMs`), server-side statement and idle-in-transaction timeouts,
 * and a client-side read timeout for a server that stops answering without closing the socket.
 */
export interface PgDbOptions {
  url: string;
  poolSize: number;
  /** Longest wait for a free pool client, and for a new connection to be established. */
  poolTimeoutMs: number;
  /** Server-side `statement_timeout`; 0 disables it (and the client read timeout with it). */
  statementTimeoutMs: number;
  /** Server-side `idle_in_transaction_session_timeout`: frees locks held by a stuck transaction. */
  idleInTransactionTimeoutMs: number;
  /** How long a connection may sit idle in the pool before it is closed; 0 or absent: kept until the pool closes. */
  idleTimeoutMs?: number;
  /**
   * A connection is closed once this old (when idle, or as it is given back), so that connections
   * spread again over what serves them (pooler replicas added, a failover's new address); 0 or absent:
   * no limit. pg-pool counts it in whole seconds.
   */
  maxLifetimeMs?: number;
  /** Schema list for `search_path`, e.g. a per-test schema. */
  searchPath?: string;
  applicationName?: string;
  /** Errors of idle pool clients (e.g. the server restarted). The pool drops such clients by itself. */
  onIdleClientError?: (err: Error) => void;
  /** Prepare named statements once per connection (default true); false behind a pooler that cannot keep them. */
  preparedStatements?: boolean;
}

/** What translatePgError needs to word a pool error; absent, it uses generic wording. */
export interface PgErrorContext {
  poolTimeoutMs: number;
  poolSize: number;
  waiting: number;
}

// pg-pool's message when no client became free within connectionTimeoutMillis (not a network issue).
const poolCheckoutTimeout = 'timeout exceeded when trying to connect';
// pg's message when query_timeout fires: the server did not answer in time.
const readTimeout = 'Query read timeout';

const unavailableErrnos = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
]);
// 57P01-03: admin/crash shutdown, cannot connect now; 53300: too many connections;
// 28xxx: authentication; 3D000: no such database. All mean "no usable connection".
const unavailableSqlStates = new Set(['57P01', '57P02', '57P03', '53300', '28000', '28P01', '3D000']);
// 57014: statement timeout (or a cancel); 25P03: idle-in-transaction timeout; 25P04: transaction_timeout (PG 17+).
const timeoutSqlStates = new Set(['57014', '25P03', '25P04']);
const unavailableMessages = [
  'Connection terminated',
  'Client has encountered a connection error',
  'Client was closed and is not queryable',
  'Cannot use a pool after calling end on the pool',
  'PGlite is closed',
];

/**
 * Maps driver errors to the catalogue codes that name the real cause. Everything else (constraint
 * violations, syntax errors...) comes back unchanged: callers inspect `err.code === '23505'` and
 * `err.constraint` on the original driver error. Idempotent: an AppError passes through.
 */
export function translatePgError(err: unknown, context?: PgErrorContext): unknown {
  if (!(err instanceof Error) || err instanceof AppError) return err;
  const code = errorCode(err);
  if (err.message === poolCheckoutTimeout && code === undefined) {
    const message = context
      ? `waited ${context.poolTimeoutMs} ms for a free database connection; pool size ${context.poolSize}, ${context.waiting} waiting`
      : 'waited too long for a free database connection';
    return new AppError('database_pool_exhausted', { message, cause: err });
  }
  if (err.message === readTimeout) {
    return new AppError('database_timeout', {
      message: 'The database did not answer within the statement timeout plus grace; the connection was dropped.',
      cause: err,
    });
  }
  // 22021 / 22P05: text with a NUL character (or another that cannot be stored) came from a client.
  if (code === PG_ERROR.characterNotInRepertoire || code === PG_ERROR.untranslatableCharacter) {
    return new AppError('invalid_request', { message: 'The request holds text that cannot be stored (a NUL character, \\u0000).', cause: err });
  }
  if (code !== undefined && timeoutSqlStates.has(code)) {
    return new AppError('database_timeout', { message: `A database statement ran past its timeout: ${err.message}`, cause: err });
  }
  const unavailable =
    (code !== undefined && (unavailableErrnos.has(code) || unavailableSqlStates.has(code) || code.startsWith('08'))) ||
    unavailableMessages.some((m) => err.message.startsWith(m));
  if (unavailable) {
    return new AppError('database_unavailable', { message: `The database is not reachable: ${describe(err)}`, cause: err });
  }
  return err;
}

function errorCode(err: Error): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

// Node's happy-eyeballs connect fails with an AggregateError whose message is empty: use its parts.
function describe(err: Error): string {
  if (err.message) return err.message;
  if (err instanceof AggregateError && err.errors.length > 0) {
    return err.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))).join('; ');
  }
  return errorCode(err) ?? err.name;
}

/** Connection-level failures after which a checked-out client must be discarded, not reused. */
function isBroken(err: unknown): boolean {
  // tx.query has already translated its errors: look at the driver error underneath.
  const raw = err instanceof AppError ? err.cause : err;
  if (!(raw instanceof Error)) return false;
  if (raw.message === readTimeout) return true;
  const translated = translatePgError(raw);
  return translated instanceof AppError && translated.code === 'database_unavailable';
}

/** int8 (count(*), bigserial) and numeric (sum(bigint)) as JS numbers; exact up to 2^53. */
function numberTypes(): pg.CustomTypesConfig {
  const types = new pg.TypeOverrides();
  types.setTypeParser(20, 'text', Number);
  types.setTypeParser(1700, 'text', Number);
  return types;
}

// libpq `options` syntax: backslash escapes spaces and backslashes inside a value.
function optionValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/ /g, '\\ ');
}

/**
 * pg lets an `options` parameter in the URL replace the `options` config entirely, so the search path
 * goes into the URL, after whatever options the URL already carries.
 */
function withOption(url: string, option: string, first = false): string {
  const parsed = new URL(url);
  const existing = parsed.searchParams.get('options');
  parsed.searchParams.set('options', existing ? (first ? `${option} ${existing}` : `${existing} ${option}`) : option);
  return parsed.href;
}

export function withSearchPath(url: string, searchPath: string | undefined): string {
  return searchPath ? withOption(url, `-c search_path=${optionValue(searchPath)}`) : url;
}

/**
 * Where the sessions' planner settings (PLANNER_SETTINGS) go: before any `options` of the operator's, so
 * that theirs win (`-c enable_seqscan=on` turns the setting off). A URL carrying `options` replaces the
 * config's in pg, so ours are put into it; otherwise they go in the config (so pg no longer reads
 * `PGOPTIONS`, which it does only when the config has none). A URL without `options` is passed on as it
 * was: pg takes forms that are not WHATWG URLs (a socket directory as `?host=`, with no host before it).
 */
export function sessionOptions(url: string): { connectionString: string; options?: string } {
  const ours = PLANNER_SETTINGS.map(([name, value]) => `-c ${name}=${value}`).join(' ');
  if (/[?&]options=/.test(url)) {
    try {
      return { connectionString: withOption(url, ours, true) };
    } catch {
      // Not a URL this can edit: the operator's options apply alone.
      return { connectionString: url };
    }
  }
  return { connectionString: url, options: ours };
}

function toResult<T>(res: pg.QueryResult | pg.QueryResult[]): QueryResult<T> {
  // A parameterless query uses the simple protocol and may hold several statements: pg then returns
  // one result per statement. Keep the last, as PGlite's adapter does.
  const last = Array.isArray(res) ? res[res.length - 1] : res;
  return { rows: (last?.rows ?? []) as T[], rowCount: last?.rowCount ?? 0 };
}

export function createPgDb(options: PgDbOptions): Db {
  const statementTimeout = options.statementTimeoutMs;
  const prepare = options.preparedStatements ?? true;
  /** pg's form of a statement: a named one is parsed once per connection, then bound and executed. */
  const config = (sql: Sql, params: readonly unknown[] | undefined): pg.QueryConfig => {
    const values = params as unknown[] | undefined;
    if (typeof sql === 'string') return { text: sql, values };
    return prepare ? { name: sql.name, text: sql.text, values } : { text: sql.text, values };
  };
  /**
   * Runs a statement outside a transaction. A prepared statement whose result's row type a migration
   * changed (another instance's, during a rolling deploy) fails with 0A000 on every later call on that
   * connection: it runs again unprepared, which always answers with the current type.
   */
  const run = async (client: pg.Pool | pg.PoolClient, sql: Sql, params: readonly unknown[] | undefined): Promise<pg.QueryResult> => {
    try {
      return await client.query(config(sql, params));
    } catch (err) {
      if (typeof sql === 'string' || !prepare || errorCode(err as Error) !== '0A000') throw err;
      return client.query({ text: sql.text, values: params as unknown[] | undefined });
    }
  };
  const pool = new pg.Pool({
    ...sessionOptions(withSearchPath(options.url, options.searchPath)),
    max: options.poolSize,
    connectionTimeoutMillis: options.poolTimeoutMs,
    statement_timeout: statementTimeout > 0 ? statementTimeout : undefined,
    idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs > 0 ? options.idleInTransactionTimeoutMs : undefined,
    // statement_timeout only works while the server is alive; this bounds a silent network or host.
    // Twice the statement timeout (at least +1 s) so the server's own, clearer error normally wins.
    query_timeout: statementTimeout > 0 ? statementTimeout + Math.max(1000, statementTimeout) : undefined,
    application_name: options.applicationName,
    types: numberTypes(),
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // Kept by default (0), where pg-pool's own default closes a connection idle for 10 s. A connection
    // opened again costs a server process, its catalog caches and every named statement planned again,
    // and after a quiet spell the first burst paid that for every connection at once: at half the
    // capacity, from idle, a few hundred requests refused at its onset (docs/performance.md,
    // "Connections kept through a quiet spell"). A pool holds no more than its size either way.
    idleTimeoutMillis: options.idleTimeoutMs ?? 0,
    maxLifetimeSeconds: options.maxLifetimeMs ? Math.max(1, Math.round(options.maxLifetimeMs / 1000)) : 0,
  });
  // Without a listener, an idle client's error (server restart, network drop) crashes the process.
  pool.on('error', (err) => options.onIdleClientError?.(err));

  const translate = (err: unknown): unknown =>
    translatePgError(err, { poolTimeoutMs: options.poolTimeoutMs, poolSize: options.poolSize, waiting: pool.waitingCount });

  let closing: Promise<void> | undefined;

  // A single statement under a request deadline is not started once the deadline has passed, and waits
  // for a connection no longer than the time left; once started it is bounded by the statement timeout
  // (setting a shorter one would cost two round trips).
  const query = async <T>(sql: Sql, params?: readonly unknown[]): Promise<QueryResult<T>> => {
    assertTimeLeft('a database query');
    const left = remainingMs();
    if (left !== undefined && left < options.poolTimeoutMs) {
      let client: pg.PoolClient;
      try {
        client = await connectWithin(pool, left, options.poolTimeoutMs);
      } catch (err) {
        throw translate(err);
      }
      let broken: Error | undefined;
      // While checked out the pool does not listen for the client's errors: a dropped connection must
      // not crash the process (the query itself fails with it).
      const onError = (err: Error): void => {
        broken ??= err;
      };
      client.on('error', onError);
      try {
        return toResult<T>(await run(client, sql, params));
      } catch (err) {
        if (isBroken(err)) broken ??= err instanceof Error ? err : new Error('broken connection');
        throw translate(err);
      } finally {
        client.removeListener('error', onError);
        client.release(broken);
      }
    }
    try {
      return toResult<T>(await run(pool, sql, params));
    } catch (err) {
      throw translate(err);
    }
  };

  return {
    kind: 'postgres',
    query,

    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      assertTimeLeft('a database transaction');
      let client: pg.PoolClient;
      try {
        client = await connectWithin(pool, remainingMs(), options.poolTimeoutMs);
      } catch (err) {
        throw translate(err);
      }
      // Under a request deadline shorter than the statement timeout, the transaction's statements get
      // only the time that is left: the server cancels them (57014) instead of running on for nobody.
      const left = remainingMs();
      const deadlineBound = left !== undefined && (statementTimeout === 0 || left < statementTimeout);
      const begin = deadlineBound ? `BEGIN; SET LOCAL statement_timeout = ${Math.max(1, Math.floor(left))}` : 'BEGIN';
      const translateInTx = (err: unknown): unknown => {
        const translated = translate(err);
        if (deadlineBound && translated instanceof AppError && translated.code === 'database_timeout' && errorCode(err as Error) === '57014') {
          return new AppError('deadline_exceeded', {
            message: `The request's deadline cut a database statement short (${Math.floor(left)} ms were left when the transaction began).`,
            cause: err,
          });
        }
        return translated;
      };
      // pg-pool removes its error listener while a client is checked out: an error arriving between
      // our queries (e.g. the idle-in-transaction timeout killed the session) would otherwise crash.
      let connectionError: Error | undefined;
      const onError = (err: Error): void => {
        // The first error names the cause (25P03 idle timeout); "Connection terminated" follows it.
        connectionError ??= err;
      };
      client.on('error', onError);
      let open = true;
      const tx: Queryable = {
        async query<R>(sql: Sql, params?: readonly unknown[]): Promise<QueryResult<R>> {
          if (!open) throw new Error(TX_MISUSE.ended);
          if (connectionError) throw translate(connectionError);
          try {
            return toResult<R>(await client.query(config(sql, params)));
          } catch (err) {
            // The session error (e.g. 25P03) says more than "client is not queryable".
            throw translateInTx(connectionError ?? err);
          }
        },
      };
      let discard: Error | undefined;
      try {
        await client.query(begin);
        const result = await fn(tx);
        const commit = await client.query('COMMIT');
        // Postgres answers COMMIT of a transaction that hit an error with ROLLBACK, without an error.
        if (commit.command === 'ROLLBACK') {
          throw new Error(TX_MISUSE.commitRolledBack);
        }
        return result;
      } catch (err) {
        // A session the server ended (connectionError) has nothing left to roll back.
        discard = connectionError ?? (await rollback(client, err));
        throw translateInTx(connectionError ?? err);
      } finally {
        open = false;
        client.removeListener('error', onError);
        // A client with an error is destroyed by the pool instead of being handed to the next caller.
        client.release(discard);
      }
    },

    async ping(): Promise<void> {
      await query('select 1');
    },

    poolStats() {
      return { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount };
    },

    connection: {
      url: options.url,
      poolTimeoutMs: options.poolTimeoutMs,
      statementTimeoutMs: options.statementTimeoutMs,
      idleInTransactionTimeoutMs: options.idleInTransactionTimeoutMs,
      ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
      ...(options.maxLifetimeMs !== undefined ? { maxLifetimeMs: options.maxLifetimeMs } : {}),
      ...(options.searchPath !== undefined ? { searchPath: options.searchPath } : {}),
      ...(options.preparedStatements !== undefined ? { preparedStatements: options.preparedStatements } : {}),
    },

    close(): Promise<void> {
      closing ??= pool.end();
      return closing;
    },
  };
}

/**
 * A pool checkout that waits no longer than the request has left (the pool's own timeout bounds it
 * otherwise). A client that arrives after we gave up goes straight back to the pool.
 */
async function connectWithin(pool: pg.Pool, leftMs: number | undefined, poolTimeoutMs: number): Promise<pg.PoolClient> {
  if (leftMs === undefined || leftMs >= poolTimeoutMs) return pool.connect();
  const pending = pool.connect();
  let timer: NodeJS.Timeout | undefined;
  const late = new AppError('deadline_exceeded', {
    message: `The request's deadline passed while it waited ${Math.floor(leftMs)} ms for a free database connection (pool ${pool.totalCount} in use or idle, ${pool.waitingCount} waiting).`,
  });
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late), Math.max(0, leftMs));
  });
  try {
    return await Promise.race([pending, timeout]);
  } catch (err) {
    if (err === late)
      pending.then(
        (client) => client.release(),
        () => undefined,
      );
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Rolls back; returns an error when the client must be discarded rather than reused. */
async function rollback(client: pg.PoolClient, cause: unknown): Promise<Error | undefined> {
  // A dead or unanswering connection cannot roll back; closing it makes the server roll back.
  if (isBroken(cause)) return cause instanceof Error ? cause : new Error('broken connection');
  try {
    await client.query('ROLLBACK');
    return undefined;
  } catch (err) {
    return err instanceof Error ? err : new Error('ROLLBACK failed');
  }
}
