import { namedStatement, type Queryable } from '../store/db.js';
import type { ItemOutcome } from '../store/group-commit.js';
import type { HandedLane, LaneHandoff } from '../delivery/lane-handoff.js';
import type { OutboxRow } from '../delivery/outbox.js';
import { isRetryableConflict, isUniqueViolation, isUnstorableText } from '../store/pg-errors.js';
import { inJsonbOrder } from '../store/jsonb-order.js';
import type { Attachment } from '../model/handover.js';
import type { MessageWork } from '../connectors/connector.js';

/**
 * One user message as the bot sent it, ready to be written. Its delivery's payload (a `message.created`
 * event) is not carried: the accept statement builds it from these fields, in the database, and the
 * items handed to the worker in memory build the same (messageWork), so neither the thread hop nor the
 * statement's parameters carry the message's text twice.
 */
export interface UserMessageWrite {
  tenantId: string;
  handoverId: string;
  clientId: string | null;
  messageId: string;
  /** The id of the `message.created` event its delivery carries. */
  eventId: string;
  text: string;
  attachments: Attachment[];
  createdAt: Date;
  traceParent: string | null;
}

/** What was written for one message; null: nothing (a repeated client id, or no live handover). */
export type UserMessageWritten = {
  seq: number;
  connectorId: string | null;
  /** Its delivery went to this instance's worker in memory; false: it waits for a claim (wake the workers). */
  handed: boolean;
} | null;

interface Row {
  ord: number;
  seq: number;
  connector_id: string | null;
  conversation_id: string;
  external_ref: string | null;
  outbox_id: number | null;
  lane_seq: number | null;
  ours: boolean | null;
  lane_was_idle: boolean | null;
}

export const ACCEPT_USER_MESSAGES = namedStatement(
  'accept-user-messages',
  `with input as (
       -- created_at comes as the text the payload carries (JavaScript's ISO form), and is stored as a time.
       select i.*, i.created_text::timestamptz as created_at
       from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
         with ordinality as i(handover_id, tenant_id, client_id, message_id, text, attachments, event_id, trace_parent, created_text, ord)
     ), fresh as (
       -- One probe of the client-id index per message. Matching the batch's handovers and client ids
       -- as two arrays made the index descend once per pair of them (a batch of 38: 1,444 descents).
       -- "offset 0" keeps the probe per message: without it, a plan made while the table was small
       -- read all of it into a hash table instead, and kept doing so as it grew. The key is the array
       -- the index holds (migration 022), which no other index can serve.
       select i.* from input i
       where i.client_id is null or not exists (
         select 1 from messages m
         where array[m.handover_id, m.direction, m.client_id] = array[i.handover_id, 'to_agent', i.client_id] and m.client_id is not null
         offset 0
       )
     ), counts as (
       select handover_id, tenant_id, count(*)::int as n from fresh group by handover_id, tenant_id
     ), h as (
       update handovers hv set last_seq = hv.last_seq + c.n
       from counts c
       -- Found by the primary key alone: matched as columns, the tenant and the state also fit the index
       -- of live conversations (tenant, conversation), and plans made on small or mostly ended tables
       -- read every live conversation of the tenant for each one in the batch.
       where hv.id = any($14::text[]) and hv.id = c.handover_id and (hv.tenant_id = c.tenant_id and hv.state <> 'ended') is true
       returning hv.id, hv.tenant_id, hv.last_seq - c.n as base, hv.connector_id, hv.conversation_id, hv.user_info, hv.external_ref
     ), numbered as (
       select f.*, f.handover_id || ':agent' as lane, h.base, h.connector_id, h.conversation_id, h.user_info, h.external_ref,
              row_number() over (partition by f.handover_id order by f.ord) as rank,
              count(*) over (partition by f.handover_id) as cnt
       -- The tenant is part of the match: a message never lands in another tenant's handover.
       from fresh f join h on h.id = f.handover_id and h.tenant_id = f.tenant_id
     ), m as (
       insert into messages (id, tenant_id, handover_id, seq, direction, client_id, sender, text, attachments, created_at)
       select message_id, tenant_id, handover_id, base + rank, 'to_agent', client_id,
              jsonb_strip_nulls(jsonb_build_object('type', 'user', 'id', user_info->>'id', 'name', user_info->>'name')),
              text, attachments::jsonb, created_at
       from numbered
     ), lanes as (
       insert into outbox_lanes as l (lane, tenant_id, target, connector_id, last_seq, pending, next_attempt_at, locked_by, locked_until)
       select distinct on (lane) lane, tenant_id, 'agent', connector_id, cnt, cnt, now(),
              case when $11::text is not null and not (connector_id = any($13::text[])) then $11::text end,
              case when $11::text is not null and not (connector_id = any($13::text[])) then now() + $12::int * interval '1 millisecond' end
       from numbered where connector_id is not null
       order by lane
       on conflict (lane) do update set
         last_seq = l.last_seq + excluded.last_seq,
         pending = l.pending + excluded.pending,
         locked_by = case when excluded.locked_by is not null
                           and ((l.pending = 0 and (l.locked_until is null or l.locked_until < now()))
                                or (l.locked_by = excluded.locked_by and l.locked_until > now()))
                          then excluded.locked_by else l.locked_by end,
         locked_until = case when excluded.locked_by is not null
                              and ((l.pending = 0 and (l.locked_until is null or l.locked_until < now()))
                                   or (l.locked_by = excluded.locked_by and l.locked_until > now()))
                             then excluded.locked_until else l.locked_until end
       returning l.lane, l.last_seq, l.pending, (l.locked_by is not null and l.locked_by = $11::text and l.locked_until > now()) as ours
     ), planned as (
       select n.ord, n.lane, n.handover_id, n.tenant_id, n.connector_id, n.conversation_id, n.external_ref, n.trace_parent, n.created_at,
              n.message_id, n.text, n.attachments, n.event_id, n.created_text,
              n.base + n.rank as seq, ln.last_seq - n.cnt + n.rank as lane_seq, ln.ours, ln.pending = n.cnt as lane_was_idle
       from numbered n left join lanes ln on ln.lane = n.lane
     ), item as (
       insert into outbox (tenant_id, lane, seq, handover_id, target, connector_id, kind, payload, max_attempts, trace_parent, created_at)
       -- The payload as messageWork builds it for the items handed in memory.
       select tenant_id, lane, lane_seq, handover_id, 'agent', connector_id, 'message.created',
              jsonb_build_object('kind', 'message.created', 'eventId', event_id, 'handoverId', handover_id, 'conversationId', conversation_id,
                                 'message', jsonb_build_object('id', message_id, 'text', text, 'attachments', attachments::jsonb, 'createdAt', created_text)),
              $10::int, trace_parent, created_at
       from planned where lane_seq is not null
       returning id, lane, seq
     )
     select p.ord::int as ord, p.seq::int as seq, p.connector_id, p.conversation_id, p.external_ref,
            it.id as outbox_id, p.lane_seq::int as lane_seq, p.ours, p.lane_was_idle
     from planned p left join item it on it.lane = p.lane and it.seq = p.lane_seq`,
);

/**
 * Writes a batch of user messages in ONE statement — one round trip, one commit, atomic — and, when
 * this instance's delivery worker has room, takes the lease of each idle lane it fills so the new items
 * go to that worker in memory (see LaneHandoff).
 *
 * Per handover, in the order of the batch: it skips client ids already stored (a retry), takes the
 * next sequence numbers (the handover row's lock orders the conversation), stores the messages, and
 * queues their delivery in the handover's agent lane when a helpdesk is connected; lanes are upserted
 * in lane order. A handover that is ended, unknown or of another tenant writes nothing; the caller
 * finds out why. Every lookup goes through an index whatever the planner guesses of the batch (`= any`
 * of the batch's ids): tables that grow, or rows updated thousands of times, never turn a batch into
 * a scan.
 *
 * Two batches of one instance never share a handover (GroupCommit keys). Batches of two instances may,
 * and then may deadlock; PostgreSQL breaks that by failing one, which is written again (see
 * writeUserMessagesOrEach).
 *
 * The caller must not put two messages with the same handover and client id in one batch.
 */
export async function writeUserMessages(
  q: Queryable,
  batch: UserMessageWrite[],
  maxAttempts: number,
  handoff: LaneHandoff | null,
): Promise<UserMessageWritten[]> {
  const claim = handoff?.claim() ?? null;
  const { rows } = await q.query<Row>(ACCEPT_USER_MESSAGES, [
    batch.map((w) => w.handoverId),
    batch.map((w) => w.tenantId),
    batch.map((w) => w.clientId),
    batch.map((w) => w.messageId),
    batch.map((w) => w.text),
    batch.map((w) => JSON.stringify(w.attachments)),
    batch.map((w) => w.eventId),
    batch.map((w) => w.traceParent),
    batch.map((w) => w.createdAt.toISOString()),
    maxAttempts,
    claim?.instanceId ?? null,
    claim?.leaseMs ?? 0,
    claim?.blocked ?? [],
    [...new Set(batch.map((w) => w.handoverId))],
  ]);
  const written: UserMessageWritten[] = batch.map(() => null);
  const handed = new Map<string, HandedLane>();
  for (const row of rows.sort((a, b) => a.ord - b.ord)) {
    const w = batch[row.ord - 1]!;
    const handedHere = row.ours === true && row.outbox_id !== null && row.lane_seq !== null && row.connector_id !== null && handoff !== null;
    written[row.ord - 1] = { seq: row.seq, connectorId: row.connector_id, handed: handedHere };
    if (!handedHere) continue;
    const lane = `${w.handoverId}:agent`;
    let entry = handed.get(lane);
    if (!entry) handed.set(lane, (entry = { lane, connectorId: row.connector_id, items: [], wasIdle: row.lane_was_idle === true }));
    entry.items.push(outboxRowOf(w, row, maxAttempts));
  }
  // When no worker takes them any more (it stopped meanwhile), the worker that stopped gives their
  // leases back, and an ordinary claim delivers them.
  if (handed.size > 0 && !handoff!.hand([...handed.values()])) {
    for (const entry of written) if (entry) entry.handed = false;
  }
  return written;
}

function outboxRowOf(w: UserMessageWrite, row: Row, maxAttempts: number): OutboxRow {
  return {
    id: Number(row.outbox_id),
    tenant_id: w.tenantId,
    lane: `${w.handoverId}:agent`,
    seq: row.lane_seq!,
    handover_id: w.handoverId,
    target: 'agent',
    connector_id: row.connector_id,
    kind: 'message.created',
    payload: messageWork(w, row.conversation_id),
    attempts: 0,
    max_attempts: maxAttempts,
    created_at: w.createdAt,
    trace_parent: w.traceParent,
    external_ref: row.external_ref,
  };
}

/**
 * The delivery's payload of a user's message, as the accept statement stores it: with its keys in the
 * order jsonb keeps them (shorter first, then by their bytes; see inJsonbOrder), written out here rather
 * than sorted per message, so that a delivery made from memory and its repeat read from the outbox are
 * the same text.
 */
export function messageWork(w: UserMessageWrite, conversationId: string): MessageWork {
  return {
    kind: 'message.created',
    eventId: w.eventId,
    message: {
      id: w.messageId,
      text: w.text,
      createdAt: w.createdAt.toISOString(),
      attachments: w.attachments.length === 0 ? [] : inJsonbOrder(w.attachments),
    },
    handoverId: w.handoverId,
    conversationId,
  };
}

/**
 * Runs a batch; when it fails on a unique index (the same client id raced in from another request
 * while the batch was in flight), each message is written on its own so one repeat cannot fail the
 * others: the repeat then answers as a repeat. The same when the database refuses a message's text
 * (a NUL character, which postUserMessage refuses before a message joins a batch): that message's
 * caller gets the refusal, and the others of the batch, of any tenant, are stored.
 */
export async function writeUserMessagesOrEach(
  q: Queryable,
  batch: UserMessageWrite[],
  maxAttempts: number,
  handoff: LaneHandoff | null,
): Promise<Array<ItemOutcome<UserMessageWritten>>> {
  try {
    try {
      return (await writeUserMessages(q, batch, maxAttempts, handoff)).map((value) => ({ ok: true, value }));
    } catch (err) {
      // A deadlock with another instance's batch: it did nothing; once more, and the other has gone.
      if (!isRetryableConflict(err)) throw err;
      return (await writeUserMessages(q, batch, maxAttempts, handoff)).map((value) => ({ ok: true, value }));
    }
  } catch (err) {
    if (!(isUniqueViolation(err) || isUnstorableText(err)) || batch.length === 1) {
      if (isUniqueViolation(err)) return [{ ok: true, value: null }];
      throw err;
    }
  }
  const outcomes: Array<ItemOutcome<UserMessageWritten>> = [];
  for (const w of batch) {
    try {
      outcomes.push({ ok: true, value: (await writeUserMessages(q, [w], maxAttempts, handoff))[0] ?? null });
    } catch (err) {
      if (isUniqueViolation(err)) outcomes.push({ ok: true, value: null });
      else outcomes.push({ ok: false, error: err as Error });
    }
  }
  return outcomes;
}
