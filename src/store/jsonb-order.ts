/**
 * A JSON value with its object keys in the order PostgreSQL's jsonb keeps them: shorter keys first (by
 * their length in UTF-8 bytes), then by their UTF-8 bytes. A payload built in memory and the same
 * payload read back from a jsonb column then serialise to the same text — which matters where both are
 * sent: a delivery made from memory and its repeat read from the outbox must be byte-for-byte the same
 * event.
 */
export function inJsonbOrder<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v: unknown) => inJsonbOrder(v)) as T;
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  entries.sort(byJsonbKeyOrder);
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) out[k] = inJsonbOrder(v);
  return out as T;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function byJsonbKeyOrder([a]: [string, unknown], [b]: [string, unknown]): number {
  // ASCII keys (every key of the service's own payloads): characters are bytes, so the strings
  // compare as they are, with nothing allocated; this runs for every message on the hot path.
  if (isAscii(a) && isAscii(b)) return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length - y.length || Buffer.compare(x, y);
}
