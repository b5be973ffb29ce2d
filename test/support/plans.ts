import type { Db } from '../../src/store/db.js';

/** A node of an `EXPLAIN (FORMAT JSON)` plan, with the type of the node above it ('' at the top). */
export type PlanNode = Record<string, unknown> & { parent: string };

/**
 * The generic plan of a statement (what a prepared statement runs after its first planning, and what
 * the service's sessions always run: PLANNER_SETTINGS), every node of it, top down. `params` are SQL
 * literals for its `$n`. In one transaction, so every step runs on one connection.
 */
export async function genericPlan(db: Db, text: string, params: string[]): Promise<PlanNode[]> {
  const json = await db.transaction(async (q) => {
    await q.query(`set local plan_cache_mode = force_generic_plan`);
    await q.query(`prepare plan_under_test as ${text}`);
    const explained = await q.query<{ 'QUERY PLAN': unknown }>(`explain (format json) execute plan_under_test(${params.join(', ')})`);
    await q.query(`deallocate plan_under_test`);
    return JSON.stringify(explained.rows[0]!['QUERY PLAN']);
  });
  const nodes: PlanNode[] = [];
  const walk = (node: Record<string, unknown>, parent: string) => {
    nodes.push({ ...node, parent });
    for (const child of (node.Plans as Array<Record<string, unknown>> | undefined) ?? []) walk(child, node['Node Type'] as string);
  };
  for (const top of JSON.parse(json) as Array<{ Plan: Record<string, unknown> }>) walk(top.Plan, '');
  return nodes;
}

/** A JavaScript value as an SQL literal, for `genericPlan`'s parameters. */
export function sqlLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (value instanceof Date) return `'${value.toISOString()}'`;
  return `'${String(value).replaceAll("'", "''")}'`;
}
