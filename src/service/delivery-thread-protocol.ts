import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config/config.js';
import type { SecretKey } from '../config/secret-box.js';
import type { HandedLane } from '../delivery/lane-handoff.js';
import type { CircuitState } from '../resilience/circuit-breaker.js';
import type { LatencyObjective } from '../resilience/connector-latency.js';
import type { PgConnection } from '../store/db.js';
import type { DbAnswer, DbCall } from '../store/relayed-db.js';
import type { SerializedError } from '../resilience/errors-across-threads.js';
import type { OutboxRow } from '../delivery/outbox.js';
import type { AcceptColumns, AttemptColumns, OutcomeColumns } from './thread-columns.js';

/** Messages between the HTTP thread and the delivery thread (delivery-thread.ts, delivery-thread-host.ts). */

/** What the delivery thread starts from: the service's settings, its keys and the database it uses. */
export interface DeliveryThreadData {
  config: Config;
  /** The service logger's level (the thread's lines are written by the service's logger's destination). */
  logLevel: string;
  instanceId: string;
  secretKeys: SecretKey[];
  /**
   * PostgreSQL: the thread opens its own pool. null (the embedded store): its statements go on `dbPort`,
   * its own session of the database's thread, or, without one (a database in the HTTP thread), through
   * the HTTP thread (relayed-db.ts).
   */
  connection: PgConnection | null;
  /** The embedded store in a thread of its own: this thread's session of it (pglite-sessions.ts). */
  dbPort?: MessagePort;
}

export type ToDeliveryThread =
  /** Lanes the accept path leased to this instance, with their items (lane-handoff.ts). */
  | { type: 'lanes'; lanes: HandedLane[] }
  /** New work may be in the outbox (the bus's `outbox` channel). */
  | { type: 'wake' }
  /** A connector's config changed on the HTTP thread: its live instance is built again. */
  | { type: 'connector-changed'; connectorId: string }
  /** The address the service is reached at changed (it is known only once it listens). */
  | { type: 'public-url'; url: string }
  /** The HTTP thread finished handling a given-up item. */
  | { type: 'given-up'; id: number; error?: string }
  /** A batch of the accept path's group commit, to write with the thread's own connections (thread-columns.ts). */
  | { type: 'accept'; id: number; batch: AcceptColumns }
  /** The answer to a `db` call (the embedded store). */
  | { type: 'db-answer'; answer: DbAnswer }
  | { type: 'stop'; graceMs: number };

export type FromDeliveryThread =
  | { type: 'ready' }
  | { type: 'fatal'; message: string }
  /**
   * Once per turn of the thread's loop, in one message: the attempts made since the last note, and
   * the lanes in work with the connectors whose bulkheads are full (`load`, when they changed or
   * lanes were handed).
   */
  | { type: 'notes'; attempts: AttemptColumns; load: { runs: number; bulkheadFull: string[] } | null }
  | { type: 'circuit'; connectorId: string; state: CircuitState }
  | { type: 'latency-objective'; connectorId: string; objective: Partial<LatencyObjective> | undefined }
  /** An agent-side item was given up: the HTTP thread ends the conversation, then answers `given-up`. */
  | { type: 'give-up'; id: number; row: OutboxRow; failure: string }
  /** The answer to `accept`: an outcome per item, in order (thread-columns.ts), or the batch's error. */
  | { type: 'accepted'; id: number; outcomes: OutcomeColumns }
  | { type: 'accept-failed'; id: number; error: SerializedError }
  /** The thread's CPU time so far (seconds), every quarter second. */
  | { type: 'cpu'; seconds: number }
  /** A statement, or a transaction's step, for the database the HTTP thread holds (the embedded store). */
  | { type: 'db'; call: DbCall }
  /** A log line, made in the thread, for the service's log destination. */
  | { type: 'log'; line: string }
  | { type: 'stopped' };
