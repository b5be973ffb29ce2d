/**
 * Fan-out of live signals between the parts of the service (and, with Redis, between instances).
 * The bus carries wake-ups and ephemeral signals (typing), never data that must not be lost: the
 * durable truth is always in the database, and every subscriber can re-read it.
 *
 * Channels:
 * - `outbox`: new outbox work was committed; workers wake up.
 * - `events:<tenantId>`: new bot events were committed; SSE streams re-read the event log.
 * - `desk:<tenantId>`: something an agent console shows changed (see DeskSignal).
 * - `credentials`: an API key was revoked (ApiKeyRevoked); caches forget it, its open event streams end.
 *
 * Besides what publishers send, a subscriber may receive `RESYNC` on any channel.
 */
export interface Bus {
  publish(channel: string, message: unknown): void;
  /** Returns the unsubscribe function. */
  subscribe(channel: string, handler: (message: unknown) => void): () => void;
  /** Whether signals from other instances arrive now (always true in process). */
  health(): BusHealth;
  close(): Promise<void>;
}

export interface BusHealth {
  kind: 'local' | 'redis';
  /** False while signals between instances may be lost: subscribers are woken to poll instead. */
  connected: boolean;
  /** When `connected` last changed. */
  since: Date;
  lastError?: string;
}

/**
 * Sent by the bus itself on every channel when signals may have been lost (Redis away, or just back):
 * subscribers re-read the truth from the database, as they do after any wake-up.
 */
export const RESYNC = Object.freeze({ type: 'resync' });
