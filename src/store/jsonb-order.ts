/**
 * A JSON value with its object keys in the order PostgreSQL's jsonb keeps them: shorter keys first,
 * then by their UTF-8 bytes. A payload built in memory and the same payload read back from a jsonb
 * column then serialise to the same text — which matters where both are sent: a delivery made from
 * memory and its repeat read from the outbox must be byte-for-byte the same event.
 */
export function inJsonbOrder<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v: unknown) => inJsonbOrder(v)) as T;
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  entries.sort(([a], [b]) => a.length - b.length || Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) out[k] = inJsonbOrder(v);
  return out as T;
}
