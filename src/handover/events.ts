import type { Queryable } from '../store/db.js';
import type { UnitOfWork } from '../store/unit-of-work.js';
import { isOwnEventId, lowestIdAt, newId, timeOfId } from '../store/ids.js';
import { enqueue } from '../delivery/outbox.js';
import type { Bus } from '../bus/bus.js';
import type { BotEventType } from '../model/handover.js';

/** The envelope every bot receives, by webhook, SSE or poll. */
export interface BotEvent {
  id: string;
  type: BotEventType;
  handoverId: string;
  conversationId: string;
  createdAt: string;
  data: Record<string, unknown>;
}

export interface NewBotEvent {
  type: BotEventType;
  handoverId: string;
  conversationId: string;
  data: Record<string, unknown>;
}

/**
 * Delivery attempts of a bot webhook before it is given up: with the retry schedule (from 0.5 s,
 * doubling, at most a minute apart) 27 to 53 minutes of waits (about 40 on average, with the jitter), long enough for a bot's deploy or restart; the
 * event stays readable on the stream and the poll after that (the OpenAPI document's webhooks say so). It
 * was 12 (about 4 minutes), after which a receiver down for a deploy lost its events without a word.
 */
export const BOT_WEBHOOK_MAX_ATTEMPTS = 60;

/**
 * Records bot events and queues their webhooks. Call it as the last write of a transaction: it takes the
 * tenant's position row lock, which is then held only for the commit.
 */
export async function emitBotEvents(uow: UnitOfWork, bus: Bus, tenantId: string, events: NewBotEvent[], now: Date): Promise<BotEvent[]> {
  if (events.length === 0) return [];
  const { q } = uow;
  const { rows } = await q.query<{ last_pos: number; webhook_url: string | null }>(
    `update tenant_event_positions p set last_pos = p.last_pos + $2
     from tenants t where p.tenant_id = $1 and t.id = p.tenant_id
     returning p.last_pos, t.webhook_url`,
    [tenantId, events.length],
  );
  const head = rows[0];
  if (!head) throw new Error(`tenant ${tenantId} has no event position row`);
  const firstPos = head.last_pos - events.length + 1;
  const created: BotEvent[] = events.map((e) => ({
    id: newId('event', now.getTime()),
    type: e.type,
    handoverId: e.handoverId,
    conversationId: e.conversationId,
    createdAt: now.toISOString(),
    data: e.data,
  }));
  await insertEvents(q, tenantId, firstPos, created);
  if (head.webhook_url) {
    for (const event of created) {
      await enqueue(q, {
        tenantId,
        handoverId: event.handoverId,
        target: 'bot',
        connectorId: null,
        kind: event.type,
        payload: event,
        maxAttempts: event.type === 'agent.typing' ? 1 : BOT_WEBHOOK_MAX_ATTEMPTS,
      });
    }
    uow.afterCommit(() => bus.publish('outbox', { tenantId }));
  }
  uow.afterCommit(() => bus.publish(`events:${tenantId}`, { pos: head.last_pos }));
  return created;
}

async function insertEvents(q: Queryable, tenantId: string, firstPos: number, events: BotEvent[]): Promise<void> {
  const values: string[] = [];
  const params: unknown[] = [];
  events.forEach((e, i) => {
    const b = i * 8;
    values.push(`($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7}::jsonb, $${b + 8})`);
    params.push(e.id, tenantId, firstPos + i, e.handoverId, e.conversationId, e.type, JSON.stringify(e.data), e.createdAt);
  });
  await q.query(`insert into events (id, tenant_id, pos, handover_id, conversation_id, type, data, created_at) values ${values.join(', ')}`, params);
}

interface EventRow {
  id: string;
  pos: number;
  handover_id: string;
  conversation_id: string;
  type: BotEventType;
  data: Record<string, unknown>;
  created_at: Date;
}

export function toBotEvent(row: EventRow): BotEvent {
  return {
    id: row.id,
    type: row.type,
    handoverId: row.handover_id,
    conversationId: row.conversation_id,
    createdAt: row.created_at.toISOString(),
    data: row.data,
  };
}

/** The position of an event id, to resume after it; null when unknown for this tenant. */
export async function positionOf(q: Queryable, tenantId: string, eventId: string): Promise<number | null> {
  const { rows } = await q.query<{ pos: number }>('select pos from events where tenant_id = $1 and id = $2', [tenantId, eventId]);
  return rows[0]?.pos ?? null;
}

/** How far before an erased event's own time a resume from it starts (events there come again). */
const ERASED_CURSOR_MARGIN_MS = 5 * 60_000;

/**
 * Where to resume after an event that is no longer stored (its user's data erased, or past retention),
 * known only by its id: from the first event made up to ERASED_CURSOR_MARGIN_MS before it, so nothing
 * after it is missed (the few made just before it come again: at least once, as ever); from now when
 * none was made since. Null for an id that is not one of ours or was made in the future.
 */
export async function positionAfterErased(q: Queryable, tenantId: string, eventId: string, now = Date.now()): Promise<number | null> {
  const at = isOwnEventId(eventId) ? timeOfId(eventId) : null;
  if (at === null || at > now + 60_000) return null;
  const { rows } = await q.query<{ pos: number }>('select pos from events where tenant_id = $1 and id >= $2 order by pos limit 1', [
    tenantId,
    lowestIdAt('event', at - ERASED_CURSOR_MARGIN_MS),
  ]);
  return rows[0] ? rows[0].pos - 1 : latestPosition(q, tenantId);
}

export async function readEvents(
  q: Queryable,
  filter: { tenantId: string; afterPos: number; handoverId?: string; limit: number },
): Promise<Array<BotEvent & { pos: number }>> {
  const params: unknown[] = [filter.tenantId, filter.afterPos, filter.limit];
  const byHandover = filter.handoverId ? 'and handover_id = $4' : '';
  if (filter.handoverId) params.push(filter.handoverId);
  const { rows } = await q.query<EventRow>(
    `select id, pos, handover_id, conversation_id, type, data, created_at from events
     where tenant_id = $1 and pos > $2 ${byHandover} order by pos limit $3`,
    params,
  );
  return rows.map((r) => ({ ...toBotEvent(r), pos: r.pos }));
}

/** The latest position of a tenant: where a new stream without a cursor starts. */
export async function latestPosition(q: Queryable, tenantId: string): Promise<number> {
  const { rows } = await q.query<{ last_pos: number }>('select last_pos from tenant_event_positions where tenant_id = $1', [tenantId]);
  return rows[0]?.last_pos ?? 0;
}
