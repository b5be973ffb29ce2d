import type { Queryable } from '../../src/store/db.js';

/**
 * Every row of every table of the current schema, as one string: for tests that must show a value is
 * nowhere in the database (a secret in clear, an erased user's data).
 */
export async function dumpSchema(db: Queryable): Promise<string> {
  return Object.values(await dumpTables(db))
    .map((rows) => JSON.stringify(rows))
    .join('');
}

/** Every row of every table of the current schema, by table: for checks that allow a value in some places only. */
export async function dumpTables(db: Queryable): Promise<Record<string, Array<Record<string, unknown>>>> {
  const { rows: tables } = await db.query<{ table_name: string }>(
    `select table_name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE'`,
  );
  // An empty dump would make every "not in the database" check pass: make sure the schema is there.
  if (!tables.some((t) => t.table_name === 'connectors')) throw new Error('the test schema has no tables to dump');
  const dump: Record<string, Array<Record<string, unknown>>> = {};
  for (const { table_name } of tables) dump[table_name] = (await db.query<Record<string, unknown>>(`select * from "${table_name}"`)).rows;
  return dump;
}
