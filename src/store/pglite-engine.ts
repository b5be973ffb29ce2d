import { parse, PGlite, protocol, type Results } from '@electric-sql/pglite';
import { PLANNER_SETTINGS, type NamedStatement, type QueryResult, type Sql } from './db.js';

/**
 * Where PGlite runs, behind the embedded adapter (pglite-db.ts): in this thread, or in a worker
 * thread of its own (pglite-thread-engine.ts) so that its statements never take the time of the
 * thread that answers HTTP. Both run one statement at a time, in the order given, and throw the
 * database's own errors (with `code`, `constraint`, ...), which the adapter translates.
 */
export interface PgliteEngine {
  /**
   * With parameters: one statement (extended protocol); a named one is parsed and planned once, then
   * only bound and executed. Without: the simple protocol (several statements).
   */
  query(sql: Sql, params?: readonly unknown[]): Promise<QueryResult<unknown>>;
  /** A statement without parameters, answered within `timeoutMs` where the engine bounds its answers (its thread). */
  queryWithin?(sql: string, timeoutMs: number): Promise<QueryResult<unknown>>;
  dump(): Promise<Blob>;
  close(): Promise<void>;
  /** In a thread of its own: that thread's CPU time (seconds) as it last told it; null until it has. */
  threadCpuSeconds?(): number | null;
}

export interface PgliteEngineOptions {
  /** Directory of the database files; undefined keeps the database in memory. */
  dataDir?: string;
  /** Start from a dump instead of an empty database. */
  loadDataDir?: Blob;
}

// Same contract as the pg adapter: int8 and numeric as JS numbers (PGlite gives BigInt above 2^53
// and strings for numeric). jsonb and timestamptz already parse to values and Dates.
const parsers = { 20: Number, 1700: Number };

export async function createPgliteInProcess(options: PgliteEngineOptions): Promise<PgliteEngine> {
  const pglite = await PGlite.create({
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    ...(options.loadDataDir !== undefined ? { loadDataDir: options.loadDataDir } : {}),
    parsers,
  });
  // The one session's planner settings, as the PostgreSQL adapter's connections have them.
  for (const [name, value] of PLANNER_SETTINGS) await pglite.exec(`set ${name} = ${value}`);
  const named = preparedStatements(pglite);
  return {
    async query(sql, params) {
      if (params === undefined || params.length === 0) {
        const results = await pglite.exec(typeof sql === 'string' ? sql : sql.text);
        return toResult(results[results.length - 1]);
      }
      if (typeof sql !== 'string') return toResult(await named(sql, params));
      return toResult(await pglite.query(sql, [...params]));
    },
    // Uncompressed: gzip would cost more time than the 41 MB in memory is worth.
    dump: () => pglite.dumpDataDir('none') as Promise<Blob>,
    close: () => pglite.close(),
  };
}

/**
 * Named statements on the one connection PGlite has: Parse and Describe once (which keeps the statement
 * and its parameter types for the session), then Bind, Describe, Execute and Sync in one message per
 * call. `pglite.query` parses and plans its statement every time, in five calls into the database, and
 * SQL's PREPARE cannot help: EXECUTE, a utility statement, takes no protocol parameters. Parameters are
 * sent as text through PGlite's own serializers, results read by its own parser, as `query` does.
 */
function preparedStatements(pglite: PGlite): (statement: NamedStatement, params: readonly unknown[]) => Promise<Results<unknown>> {
  const { serialize } = protocol;
  /** Parameter types of each statement prepared in this session. */
  const prepared = new Map<string, number[]>();
  const exchange = async (parts: Uint8Array[]) => {
    const message = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) {
      message.set(part, at);
      at += part.length;
    }
    // Errors are read from the answer once the whole message (through Sync) has been processed.
    const { messages } = await pglite.execProtocol(message, { throwOnError: false });
    const error = messages.find((m) => m.name === 'error');
    if (error) throw error;
    return messages;
  };
  return async (statement, params) => {
    let types = prepared.get(statement.name);
    if (!types) {
      const answer = await exchange([
        serialize.parse({ name: statement.name, text: statement.text }),
        serialize.describe({ type: 'S', name: statement.name }),
        serialize.sync(),
      ]);
      types = parse.parseDescribeStatementResults(answer);
      prepared.set(statement.name, types);
    }
    const values = params.map((value, i) => {
      if (value === null || value === undefined) return null;
      const serializer = pglite.serializers[types[i]!];
      return serializer ? (serializer(value) as string) : String(value);
    });
    const answer = await exchange([
      serialize.bind({ statement: statement.name, values }),
      serialize.describe({ type: 'P' }),
      serialize.execute({}),
      serialize.sync(),
    ]);
    return parse.parseResults(answer, pglite.parsers)[0]!;
  };
}

function toResult(res: Results<unknown> | undefined): QueryResult<unknown> {
  if (!res) return { rows: [], rowCount: 0 };
  // rowCount is the command tag's count (rows of a SELECT, rows changed by DML); affectedRows is 0 for SELECT.
  return { rows: res.rows, rowCount: res.rowCount ?? res.affectedRows ?? 0 };
}
