import type { Queryable } from '../store/db.js';
import { currentTraceparent } from '../telemetry/tracing.js';

/** Which side a lane delivers to. */
export type OutboxTarget = 'agent' | 'bot';

/** One item of a lane, as the worker delivers it. */
export interface OutboxRow {
  id: number;
  tenant_id: string;
  lane: string;
  seq: number;
  handover_id: string;
  target: OutboxTarget;
  connector_id: string | null;
  kind: string;
  payload: unknown;
  attempts: number;
  max_attempts: number;
  /** When the item was accepted (end-to-end delivery latency starts here). */
  created_at: Date;
  /** W3C traceparent of the request that queued it (tracing on), else null. */
  trace_parent: string | null;
  /**
   * The handover's id in the external system as it was when the item was read (null: not opened there
   * yet, or a bot-side item). Read with the item, so a delivery needs no query of its own.
   */
  external_ref: string | null;
}

export interface OutboxItem {
  tenantId: string;
  handoverId: string;
  target: OutboxTarget;
  connectorId: string | null;
  kind: string;
  payload: unknown;
  maxAttempts: number;
}

export function laneOf(handoverId: string, target: OutboxTarget): string {
  return `${handoverId}:${target}`;
}

/**
 * Adds work to its lane inside the caller's transaction. The lane row is locked until commit, so
 * sequence numbers of one lane commit in order and a worker can never see seq n+1 before seq n.
 * The trace context active now (the request's span, when tracing is on) is stored with the item, so
 * its delivery continues that trace.
 */
export async function enqueue(q: Queryable, item: OutboxItem): Promise<void> {
  const lane = laneOf(item.handoverId, item.target);
  const { rows } = await q.query<{ last_seq: number }>(
    `insert into outbox_lanes (lane, tenant_id, target, connector_id, last_seq, pending, next_attempt_at)
     values ($1, $2, $3, $4, 1, 1, now())
     on conflict (lane) do update set last_seq = outbox_lanes.last_seq + 1, pending = outbox_lanes.pending + 1
     returning last_seq`,
    [lane, item.tenantId, item.target, item.connectorId],
  );
  await q.query(
    `insert into outbox (tenant_id, lane, seq, handover_id, target, connector_id, kind, payload, max_attempts, trace_parent)
     values ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)`,
    [
      item.tenantId,
      lane,
      rows[0]!.last_seq,
      item.handoverId,
      item.target,
      item.connectorId,
      item.kind,
      JSON.stringify(item.payload),
      item.maxAttempts,
      currentTraceparent(),
    ],
  );
}
