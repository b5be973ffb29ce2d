/**
 * Fan-out of live signals between the parts of the service (and, with Redis, between instances).
 * The bus carries wake-ups and ephemeral signals (typing), never data that must not be lost: the
 * durable truth is always in the database, and every subscriber can re-read it.
 *
 * Channels:
 * - `outbox`: new outbox work was committed; workers wake up.
 * - `events:<tenantId>`: new bot events were committed; SSE streams re-read the event log.
 * - `desk:<tenantId>`: something an agent console shows changed (see DeskSignal).
 */
export interface Bus {
  publish(channel: string, message: unknown): void;
  /** Returns the unsubscribe function. */
  subscribe(channel: string, handler: (message: unknown) => void): () => void;
  close(): Promise<void>;
}
