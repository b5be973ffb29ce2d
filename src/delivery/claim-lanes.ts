import { namedStatement, type Queryable } from '../store/db.js';
import type { OutboxRow } from './outbox.js';

/** Items read per lane at a time. */
export const LANE_BATCH = 20;

const itemColumns =
  'o.id, o.tenant_id, o.lane, o.seq, o.handover_id, o.target, o.connector_id, o.kind, o.payload, o.attempts, o.max_attempts, o.created_at, o.trace_parent, h.external_ref';
// The handover's external id comes with each item: a delivery then needs no query of its own.
const itemSource = 'outbox o left join handovers h on h.id = o.handover_id';

export interface ClaimedLane {
  lane: string;
  connectorId: string | null;
  /** Its first pending items, in seq order. */
  items: OutboxRow[];
}

export interface ClaimOptions {
  instanceId: string;
  leaseMs: number;
  limit: number;
  /** Connectors whose lanes are not taken now (circuit open, bulkhead full). */
  blocked: string[];
  /** Free bulkhead slots of connectors with lanes in work here; others get `maxPerConnector`. */
  remaining: { connectorIds: string[]; slots: number[] };
  maxPerConnector: number;
  /** Where the walk of lanes with pending items starts: after this lane ('' from the first). */
  after: string;
  /** Most lanes the walk looks at (defaults to WALK_LANES). */
  walkLanes?: number;
}

/** Most lanes with pending items one claim looks at; the next claim goes on from the last one. */
export const WALK_LANES = 2000;

export interface Claim {
  lanes: ClaimedLane[];
  /**
   * The last lane the walk looked at when it stopped at its bound, where the next claim goes on from:
   * lanes after it were not looked at. null: the walk reached the last lane with pending items.
   */
  walkedTo: string | null;
}

/*
 * The lanes owed a claim are found through the index of pending outbox items (lane, seq), not through
 * an index of the lanes themselves: an index of lanes that tells the busy from the idle changes with
 * every message, twice, and kept the lanes' updates from being heap-only (migration 023). The walk
 * descends that index once per lane that has pending items (a loose index scan), from `$8` on, at
 * most `$9` lanes; of those, the due and free ones are candidates, oldest first, ranked per connector.
 */
export const CLAIM_LANES = namedStatement(
  'claim-lanes',
  `with recursive walk(lane, n) as (
       (select o.lane, 1 from outbox o where o.state = 'pending' and o.lane > $8 order by o.lane limit 1)
       union all
       select (select o.lane from outbox o where o.state = 'pending' and o.lane > w.lane order by o.lane limit 1), w.n + 1
       from walk w where w.lane is not null and w.n < $9
     ), walked as materialized (
       select lane, n from walk where lane is not null
     ), candidates as (
       select l.lane, l.connector_id, l.next_attempt_at,
              row_number() over (partition by l.connector_id order by l.next_attempt_at) as rn
       from walked w join outbox_lanes l on l.lane = w.lane
       where l.pending > 0 and l.next_attempt_at <= now() and (l.locked_until is null or l.locked_until < now())
         and (l.connector_id is null or not (l.connector_id = any($4::text[])))
     ), capped as (
       select c.lane from candidates c
       left join unnest($5::text[], $6::int[]) as cap(connector_id, slots) on cap.connector_id = c.connector_id
       where c.connector_id is null or c.rn <= coalesce(cap.slots, $7)
       order by c.next_attempt_at
       limit $3
     ), locked as materialized (
       select l.lane from outbox_lanes l
       where l.lane in (select lane from capped) and l.pending > 0 and (l.locked_until is null or l.locked_until < now())
       order by l.lane
       for update skip locked
     ), claimed as (
       update outbox_lanes l set locked_by = $1, locked_until = now() + $2 * interval '1 millisecond'
       from locked k where l.lane = k.lane
       returning l.lane, l.connector_id
     ), items as (
       select c.lane as claimed_lane, c.connector_id as lane_connector_id, o.*
       from claimed c
       left join lateral (
         select ${itemColumns} from ${itemSource}
         where o.lane = c.lane and o.state = 'pending' order by o.seq limit ${LANE_BATCH}
       ) o on true
     ), walk_end as (
       -- One row whatever was claimed: where the walk stopped, if its bound stopped it.
       select (select lane from walked where n = $9) as walked_to
     )
     select e.walked_to, i.* from walk_end e left join items i on true
     order by i.claimed_lane, i.seq`,
);

/**
 * Claims due lanes and reads their first items, in ONE round trip. Candidates are ranked per connector
 * (so no connector takes more than its free bulkhead slots), then locked with SKIP LOCKED — claimers on
 * other instances never wait for each other and never deadlock, and each lane goes to one of them —
 * and leased; the items of the leased lanes come back with them. A claim looks at a bounded number of
 * lanes with pending items; the caller goes on from `walkedTo` with its next claim.
 */
export async function claimLanes(db: Queryable, o: ClaimOptions): Promise<Claim> {
  const { rows } = await db.query<OutboxRow & { walked_to: string | null; claimed_lane: string | null; lane_connector_id: string | null }>(CLAIM_LANES, [
    o.instanceId,
    o.leaseMs,
    o.limit,
    o.blocked,
    o.remaining.connectorIds,
    o.remaining.slots,
    o.maxPerConnector,
    o.after,
    o.walkLanes ?? WALK_LANES,
  ]);
  const lanes = new Map<string, ClaimedLane>();
  for (const row of rows) {
    if (row.claimed_lane === null) continue;
    let lane = lanes.get(row.claimed_lane);
    if (!lane) lanes.set(row.claimed_lane, (lane = { lane: row.claimed_lane, connectorId: row.lane_connector_id, items: [] }));
    if (row.id === null || row.id === undefined) continue;
    const { claimed_lane: _lane, lane_connector_id: _connector, walked_to: _walked, ...item } = row;
    lane.items.push(item);
  }
  return { lanes: [...lanes.values()], walkedTo: rows[0]?.walked_to ?? null };
}

const READ_LANE = namedStatement(
  'read-lane',
  `select ${itemColumns} from ${itemSource} where o.lane = $1 and o.state = 'pending' and o.seq >= $2 order by o.seq limit ${LANE_BATCH}`,
);

/** The next pending items of a lane this instance holds, from `fromSeq` on. */
export async function readLane(db: Queryable, lane: string, fromSeq: number): Promise<OutboxRow[]> {
  const { rows } = await db.query<OutboxRow>(READ_LANE, [lane, fromSeq]);
  return rows;
}

const RECLAIM_LANE = namedStatement(
  'reclaim-lane',
  `update outbox_lanes set locked_by = $2, locked_until = now() + $3 * interval '1 millisecond'
   where lane = $1 and next_attempt_at <= now() and (locked_by is null or locked_until < now() or locked_by = $2)`,
);

/**
 * Takes (or renews) a lane's lease when it is free or already ours: for items handed over while the
 * lane was being given back, when it is not known who holds it now.
 */
export async function reclaimLane(db: Queryable, lane: string, instanceId: string, leaseMs: number): Promise<boolean> {
  const { rowCount } = await db.query(RECLAIM_LANE, [lane, instanceId, leaseMs]);
  return rowCount > 0;
}
