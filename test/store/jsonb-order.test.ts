import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inJsonbOrder } from '../../src/store/jsonb-order.js';
import { createTestDb, dbKinds, type DbKind, type TestDb } from '../support/test-db.js';

/**
 * inJsonbOrder puts an object's keys in the order the database's jsonb keeps them, so that an event
 * sent from memory and the same event read back from the outbox are the same bytes. Checked against
 * the database itself, with keys of every kind: ASCII of equal and different lengths, and keys whose
 * UTF-8 length differs from their length in JavaScript's UTF-16 (accents, CJK, an emoji).
 */
describe.each<DbKind>(dbKinds)('jsonb key order (%s)', (kind) => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb(kind, { migrate: false });
  });
  afterAll(async () => {
    await db.dropAndClose();
  });

  it('is the order the database keeps, nested too', async () => {
    const keys = ['id', 'kind', 'text', 'b', 'a', 'aa', 'Z', 'é', 'éé', 'ab', 'zz', '日本', '日', 'x😀', '😀', 'ÿ', 'conversationId', 'createdAt', 'eventId'];
    const value = Object.fromEntries(keys.map((k, i) => [k, i]));
    const nested = { outer: value, list: [value, { b: 1, a: 2 }] };
    const { rows } = await db.query<{ text: string }>('select $1::jsonb::text as text', [JSON.stringify(nested)]);
    // The database's own text, parsed, keeps its key order: the same text as ours, byte for byte.
    expect(JSON.stringify(inJsonbOrder(nested))).toBe(JSON.stringify(JSON.parse(rows[0]!.text)));
    expect(JSON.stringify(inJsonbOrder(nested))).not.toBe(JSON.stringify(nested));
  });
});
