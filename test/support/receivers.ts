/** First arrival of each event id, in arrival order: what a receiver that drops duplicates by id sees. */
export function firstArrivals<T extends Record<string, unknown>>(bodies: T[]): T[] {
  const seen = new Set<unknown>();
  return bodies.filter((b) => (seen.has(b.id) ? false : (seen.add(b.id), true)));
}

/** The texts of `message.created` events, in order of first arrival. */
export function messageTexts(bodies: Array<Record<string, unknown>>): string[] {
  return firstArrivals(bodies)
    .filter((b) => b.type === 'message.created')
    .map((b) => (b.data as { message: { text: string } }).message.text);
}

export const numbered = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix} ${i}`);
