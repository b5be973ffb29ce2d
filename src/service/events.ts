import type { CircuitState } from '../resilience/circuit-breaker.js';
import type { OutboxRow, OutboxTarget } from '../delivery/outbox.js';
import type { BacklogSample } from '../telemetry/delivery-metrics.js';
import type { ConnectorCheckLine } from '../connectors/connector-checks.js';
import type { Logger } from '../telemetry/logger.js';

/** One delivery attempt, as metrics and the status page read it. */
export interface DeliveryAttempt {
  target: OutboxTarget;
  connectorId: string | null;
  /** When its item was created (ms since the epoch): what the user waited is measured from it. */
  createdAtMs: number;
  outcome: 'ok' | 'retry' | 'failed';
  seconds: number;
}

export function deliveryAttempt(
  row: Pick<OutboxRow, 'target' | 'connector_id' | 'created_at'>,
  outcome: DeliveryAttempt['outcome'],
  seconds: number,
): DeliveryAttempt {
  return { target: row.target, connectorId: row.connector_id, createdAtMs: createdAtMsOf(row), outcome, seconds };
}

/** An item's creation time in ms since the epoch (a time that reached here as text, as some drivers read one, is read as such). */
export function createdAtMsOf(row: Pick<OutboxRow, 'created_at'>): number {
  return row.created_at instanceof Date ? row.created_at.getTime() : new Date(row.created_at).getTime();
}

/**
 * What the parts of a running service tell whoever listens: metrics, the status page and the log
 * subscribe here (service/observers.ts) instead of being called by the parts. A part never waits on a
 * listener, and a listener that throws is logged without reaching the part (graphile-worker's
 * `WorkerEventMap` with `safeEmit`).
 */
export interface ServiceEventMap {
  /** A signal could not be published to Redis (the bus degrades to polling). */
  'bus:publishFailed': Record<string, never>;
  /** A connector's circuit moved to `state`. */
  'circuit:changed': { connectorId: string; state: CircuitState };
  /** The delivery worker made one attempt. */
  'delivery:attempted': DeliveryAttempt;
  /** The accept path wrote a batch of user messages (one statement and commit), or failed to. */
  'accept:batch': { messages: number; seconds: number; failed: boolean };
  /** The outbox backlog was sampled. */
  'backlog:sampled': { samples: BacklogSample[] };
  /** Another thread of the service reported its CPU time so far (seconds). */
  'thread:cpu': { thread: 'delivery'; seconds: number };
  /** A connector's own setup check was judged. */
  'check:judged': { line: ConnectorCheckLine };
  /** A connector that was checked is gone. */
  'check:gone': { connectorId: string };
}

export type ServiceEventName = keyof ServiceEventMap;
type Listener<K extends ServiceEventName> = (event: ServiceEventMap[K]) => void;

export class ServiceEvents {
  private readonly listeners = new Map<ServiceEventName, Listener<never>[]>();

  constructor(private readonly log: Logger) {}

  /** Returns the function that unsubscribes. */
  on<K extends ServiceEventName>(name: K, listener: Listener<K>): () => void {
    const list = (this.listeners.get(name) ?? []) as Listener<K>[];
    this.listeners.set(name, [...list, listener] as Listener<never>[]);
    return () => {
      const current = (this.listeners.get(name) ?? []) as Listener<K>[];
      this.listeners.set(name, current.filter((l) => l !== listener) as Listener<never>[]);
    };
  }

  /** Calls each listener in turn; one that throws is logged and the others still run. */
  emit<K extends ServiceEventName>(name: K, event: ServiceEventMap[K]): void {
    const list = this.listeners.get(name) as Listener<K>[] | undefined;
    if (!list) return;
    for (const listener of list) {
      try {
        listener(event);
      } catch (err) {
        this.log.error({ err, event: name }, `a listener of ${name} failed`);
      }
    }
  }
}
