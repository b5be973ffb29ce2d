import { namedStatement, type Queryable } from '../store/db.js';
import { idPrefixes } from '../store/ids.js';
import type { OutboxRow } from './outbox.js';

/**
 * Rowless items: a user's message whose lane the accept statement leased to this instance's worker
 * (src/handover/accept-user-messages.ts) has no outbox row. Its lane's row says it is owed — a lane's
 * pending items are its tail, the sequence numbers after `last_seq - pending`, since items settle in
 * lane order — and its content is its row in `messages` (`lane_seq`). The item would otherwise be
 * inserted, indexed three times and deleted again within milliseconds: the largest part of the
 * database's work for a message (docs/performance.md, "Messages without outbox rows").
 *
 * - **Found by claims** through a marker: the lane's item of sequence number 0, in state `marker`,
 *   written (if missing) by the statement that hands the lane over without rows. The index of owed items
 *   then leads a claim to the lane once its lease runs out (the instance died) or it is given back with
 *   items left, and the lane's items are read merged from the outbox and from `messages` (claim-lanes.ts).
 *   Markers of lanes idle for a while are swept (below).
 * - **Completed by a watermark**: a rowless item has no row to delete, and two workers that both
 *   delivered it (one after the other's lease ran out) must not lower the lane's count twice, so the
 *   completion lowers `pending` to at most `last_seq - seq` (completions.ts): idempotent, never backwards.
 * - **Given a row when it fails** (`materialize`), with the payload it was delivered with: from then on
 *   it is an item like any other (attempts, backoff, give-up).
 *
 * A rowless item's id is 0 (no row); its event id is derived from its message's id, as the accept path
 * derives it, so a redelivery from `messages` carries the same one.
 */
export const MARKER_SEQ = 0;
export const MARKER_KIND = 'lane.rowless';
/**
 * A marker's state: one of its own, which claims walk with `pending` (the index of owed items holds
 * both) and which no statement for pending items reads, those of the release before this one included.
 */
export const MARKER_STATE = 'marker';
/** The only kind that goes without a row: a user's message to the agent side. */
export const ROWLESS_KIND = 'message.created';

/** The event id of a user's message's delivery: its message id's own part, as an event id. */
export function messageEventId(messageId: string): string {
  return `${idPrefixes.event}_${messageId.slice(idPrefixes.message.length + 1)}`;
}

/**
 * The payload of a rowless item (SQL over `m`, its message, and `h`, its handover): what the accept
 * statement would have stored (`UserMessageWrite.work` and the conversation's id), in jsonb's order.
 */
export const ROWLESS_PAYLOAD = `jsonb_build_object(
    'kind', '${ROWLESS_KIND}',
    'eventId', '${idPrefixes.event}_' || substr(m.id, ${idPrefixes.message.length + 2}),
    'handoverId', m.handover_id,
    'message', jsonb_build_object('id', m.id, 'text', m.text, 'attachments', m.attachments,
      'createdAt', to_char(m.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
    'conversationId', h.conversation_id)`;

const MATERIALIZE = namedStatement(
  'materialize-rowless-item',
  `with owed as (
     -- Locked, as the accept statement and the completions lock it: the item's place in the tail is
     -- judged on the lane as it is now.
     select l.lane from outbox_lanes l where l.lane = $2 and $3 > l.last_seq - l.pending for update
   ), made as (
     insert into outbox (tenant_id, lane, seq, handover_id, target, connector_id, kind, payload, max_attempts, trace_parent, created_at)
     select $1, $2, $3, $4, 'agent', $5, '${ROWLESS_KIND}', $6::jsonb, $7, $8, $9 from owed
     on conflict (lane, seq) do nothing
     returning id
   )
   select id from made
   union all
   select o.id from outbox o where o.lane = $2 and o.seq = $3 and o.seq > 0 and exists (select 1 from owed) and not exists (select 1 from made)`,
);

/**
 * Gives a rowless item its row, in the caller's transaction, so its failed attempt can be recorded;
 * answers the row's id, or null when the item is no longer pending (delivered by another worker that
 * took the lane after this one's lease ran out, or the lane's items were dropped): then nothing is
 * recorded for it, as for an item whose row is gone.
 */
export async function materialize(q: Queryable, row: OutboxRow): Promise<number | null> {
  const { rows } = await q.query<{ id: number }>(MATERIALIZE, [
    row.tenant_id,
    row.lane,
    row.seq,
    row.handover_id,
    row.connector_id,
    JSON.stringify(row.payload),
    row.max_attempts,
    row.trace_parent,
    row.created_at,
  ]);
  return rows[0]?.id ?? null;
}

/**
 * Deletes the markers of lanes with nothing pending and no lease, written more than `idleMs` ago, so
 * that claims do not walk lanes long done. Each lane is locked first, and judged again as it is once
 * locked; the accept statement writes a lane's marker only after it has locked the lane, so it never
 * relies on a marker removed under it. Lanes locked elsewhere are left for the next sweep. Answers how
 * many were removed.
 */
export async function sweepIdleMarkers(q: Queryable, idleMs: number, limit = 1000): Promise<number> {
  const { rowCount } = await q.query(
    `with idle as (
       select l.lane from outbox mk join outbox_lanes l on l.lane = mk.lane
       where mk.state = '${MARKER_STATE}' and mk.created_at < now() - $1 * interval '1 millisecond'
         and l.pending = 0 and (l.locked_until is null or l.locked_until < now())
       order by mk.created_at limit $2
       for update of l skip locked
     )
     delete from outbox o using idle i where o.lane = i.lane and o.seq = ${MARKER_SEQ} and o.state = '${MARKER_STATE}'`,
    [idleMs, limit],
  );
  return rowCount;
}
