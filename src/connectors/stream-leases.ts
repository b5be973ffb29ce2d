import type { Queryable } from '../store/db.js';

/**
 * The SQL of stream leases (table `connector_sessions`). A lease is taken with a conditional update
 * that re-checks the holder and expiry after waiting for the row, so of several instances claiming at
 * once each stream goes to exactly one (as outbox lanes are claimed in delivery/worker.ts).
 */
export interface ClaimedStream {
  handoverId: string;
  tenantId: string;
  connectorId: string;
}

export async function claimStreams(q: Queryable, holder: string, leaseMs: number, limit: number): Promise<ClaimedStream[]> {
  if (limit <= 0) return [];
  const { rows } = await q.query<{ handover_id: string; tenant_id: string; connector_id: string }>(
    `update connector_sessions set stream_holder = $1, stream_lease_until = now() + $2 * interval '1 millisecond'
     where handover_id in (
       select s.handover_id from connector_sessions s join handovers h on h.id = s.handover_id
       where s.stream_open and h.state <> 'ended' and (s.stream_lease_until is null or s.stream_lease_until < now())
       order by s.updated_at limit $3
     ) and stream_open and (stream_lease_until is null or stream_lease_until < now())
     returning handover_id, tenant_id, connector_id`,
    [holder, leaseMs, limit],
  );
  return rows.map((r) => ({ handoverId: r.handover_id, tenantId: r.tenant_id, connectorId: r.connector_id }));
}

/**
 * Extends the leases this holder still has; answers which it kept and whether their handover ended.
 * A stream missing from the answer was lost (the lease ran out and another instance took it).
 */
export async function renewStreams(q: Queryable, holder: string, leaseMs: number, handoverIds: string[]): Promise<Map<string, { ended: boolean }>> {
  if (handoverIds.length === 0) return new Map();
  const { rows } = await q.query<{ handover_id: string; state: string }>(
    `update connector_sessions s set stream_lease_until = now() + $2 * interval '1 millisecond'
     from handovers h
     where h.id = s.handover_id and s.stream_holder = $1 and s.stream_lease_until >= now() and s.handover_id = any($3::text[])
     returning s.handover_id, h.state`,
    [holder, leaseMs, handoverIds],
  );
  return new Map(rows.map((r) => [r.handover_id, { ended: r.state === 'ended' }]));
}

/** Gives one stream up so another instance can take it at once; `close` also stops it for good. */
export async function releaseStream(q: Queryable, holder: string, handoverId: string, close: boolean): Promise<void> {
  await q.query(
    `update connector_sessions set stream_holder = null, stream_lease_until = null, stream_open = stream_open and not $3
     where handover_id = $1 and stream_holder = $2`,
    [handoverId, holder, close],
  );
}

/** Locks the lease row in the caller's transaction; false when this holder no longer has a live lease. */
export async function lockHeldStream(q: Queryable, holder: string, handoverId: string): Promise<boolean> {
  const { rows } = await q.query('select 1 from connector_sessions where handover_id = $1 and stream_holder = $2 and stream_lease_until >= now() for update', [
    handoverId,
    holder,
  ]);
  return rows.length > 0;
}

export async function savePosition(q: Queryable, handoverId: string, position: string): Promise<void> {
  await q.query('update connector_sessions set stream_position = $2 where handover_id = $1', [handoverId, position]);
}

/** Streams nobody holds whose handover ended (e.g. while no instance ran): marked closed for good. */
export async function closeEndedStreams(q: Queryable): Promise<number> {
  const { rowCount } = await q.query(
    `update connector_sessions s set stream_open = false
     from handovers h
     where h.id = s.handover_id and s.stream_open and h.state = 'ended' and (s.stream_lease_until is null or s.stream_lease_until < now())`,
  );
  return rowCount;
}
