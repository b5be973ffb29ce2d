import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Queryable, QueryResult, Sql } from '../../src/store/db.js';
import { searchHistory } from '../../src/desk/history.js';
import { createTestDb, dbKinds, type DbKind, type TestDb } from '../support/test-db.js';
import { genericPlan, sqlLiteral } from '../support/plans.js';

/**
 * The sessions plan every statement without its values (plan_cache_mode, src/store/db.ts). A page of
 * the desk's history after a cursor, or within dates, must then still be bounded in the index of ended
 * chats, not read from the newest chat on: only the conditions given are in the statement.
 */
describe.each<DbKind>(dbKinds)('desk history search plan (%s)', (kind) => {
  let db: TestDb;
  beforeEach(async () => {
    db = await createTestDb(kind);
  });
  afterEach(async () => {
    await db.dropAndClose();
  });

  /** The statement searchHistory sends, and its values, without running it. */
  async function statementOf(search: Parameters<typeof searchHistory>[2]): Promise<{ text: string; values: unknown[] }> {
    let sent: { text: string; values: unknown[] } | undefined;
    const recorder: Queryable = {
      query<R>(sql: Sql, params?: readonly unknown[]): Promise<QueryResult<R>> {
        sent = { text: typeof sql === 'string' ? sql : sql.text, values: [...(params ?? [])] };
        return Promise.resolve({ rows: [], rowCount: 0 } as unknown as QueryResult<R>);
      },
    };
    await searchHistory(recorder, { id: 'agt_1', tenantId: 'ten_1', role: 'supervisor', queueIds: null }, search);
    return sent!;
  }

  async function indexConditions(search: Parameters<typeof searchHistory>[2]): Promise<string[]> {
    const { text, values } = await statementOf(search);
    const found: string[] = [];
    for (const node of await genericPlan(db, text, values.map(sqlLiteral))) {
      if (node['Index Name'] === 'handovers_ended') found.push(String(node['Index Cond'] ?? ''));
    }
    return found;
  }

  it('bounds the index of ended chats by the cursor and by the dates', async () => {
    const cursor = Buffer.from(JSON.stringify(['2026-01-02T00:00:00.000000Z', 'ho_9'])).toString('base64url');
    const paged = await indexConditions({ scope: 'team', cursor, limit: 20 });
    expect(paged).toHaveLength(1);
    expect(paged[0]).toContain('ended_at');
    const dated = await indexConditions({ scope: 'team', from: new Date('2026-01-01'), to: new Date('2026-01-02'), limit: 20 });
    expect(dated).toHaveLength(1);
    expect(dated[0]).toMatch(/ended_at >=/);
    expect(dated[0]).toMatch(/ended_at </);
  });
});
