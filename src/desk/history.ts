import type { Queryable } from '../store/db.js';
import { AppError } from '../resilience/errors.js';
import { findHandover } from '../handover/queries.js';
import type { AgentInfo, EndReason, UserInfo } from '../model/handover.js';
import type { Agent } from '../model/agent.js';
import { likePattern } from './canned.js';
import { assertDeskVisible } from './visibility.js';

/**
 * The desk's history (docs/desk.md, "History"): closed chats of the built-in desk, the agent's own or
 * their team's, searched by user, text and date, a bounded page at a time. Each page is one statement,
 * whatever the number of chats or messages: the preview is a subquery of it, never a query per chat.
 */
export const historyScopes = ['mine', 'team'] as const;
export type HistoryScope = (typeof historyScopes)[number];

export const HISTORY_PAGE_MAX = 50;
export const EARLIER_MAX = 10;
const PREVIEW_CHARS = 200;

export interface HistoryItem {
  id: string;
  conversationId: string;
  user: UserInfo;
  queue: string;
  agent: AgentInfo | null;
  endReason: EndReason | null;
  createdAt: Date;
  endedAt: Date;
  /** The last message of the chat (or, with none, the last thing the user told the bot), cut short. */
  preview: string | null;
  /** The user's satisfaction rating, when the bot recorded one (docs/desk.md, "Satisfaction ratings"). */
  rating: { score: number; comment: string | null } | null;
}

interface HistoryRow {
  id: string;
  conversation_id: string;
  user_info: UserInfo;
  queue_name: string;
  agent_info: AgentInfo | null;
  end_reason: EndReason | null;
  created_at: Date;
  ended_at: Date;
  ended_key: string;
  preview: string | null;
  rating_score: number | null;
  rating_comment: string | null;
}

const toItem = (row: HistoryRow): HistoryItem => ({
  id: row.id,
  conversationId: row.conversation_id,
  user: row.user_info,
  queue: row.queue_name,
  agent: row.agent_info,
  endReason: row.end_reason,
  createdAt: row.created_at,
  endedAt: row.ended_at,
  preview: row.preview,
  rating: row.rating_score === null ? null : { score: Number(row.rating_score), comment: row.rating_comment },
});

const columns = `h.id, h.conversation_id, h.user_info, q.name as queue_name, h.agent_info, h.end_reason, h.created_at, h.ended_at,
  to_char(h.ended_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as ended_key,
  left(coalesce(
    (select m.text from messages m where m.handover_id = h.id order by m.seq desc limit 1),
    (select e->>'text' from jsonb_array_elements(h.transcript) with ordinality as t(e, n) order by n desc limit 1)
  ), ${PREVIEW_CHARS}) as preview,
  r.score as rating_score, r.comment as rating_comment`;

/** Where an agent's history reaches: a supervisor every desk queue, an agent the queues they serve. */
const visibleSql = `h.tenant_id = $1 and h.state = 'ended' and h.connector_id is null and q.connector_id is null
  and ($2::jsonb is null or h.agent_id = $3 or $2::jsonb ? h.queue_id)`;

const visibleParams = (agent: Pick<Agent, 'id' | 'tenantId' | 'role' | 'queueIds'>) => [
  agent.tenantId,
  agent.role === 'supervisor' || !agent.queueIds ? null : JSON.stringify(agent.queueIds),
  agent.id,
];

export interface HistorySearch {
  scope: HistoryScope;
  /** A user id (exactly), or part of a user's name or email. */
  user?: string | undefined;
  /** Part of a message's text or of the conversation with the bot. */
  text?: string | undefined;
  /** Ended at or after. */
  from?: Date | undefined;
  /** Ended before. */
  to?: Date | undefined;
  /** The `next` of the page before. */
  cursor?: string | undefined;
  limit: number;
}

/** One page of closed chats, newest first, and the cursor of the next page (null: no more). */
export async function searchHistory(
  q: Queryable,
  agent: Pick<Agent, 'id' | 'tenantId' | 'role' | 'queueIds'>,
  search: HistorySearch,
): Promise<{ items: HistoryItem[]; next: string | null }> {
  const limit = Math.min(Math.max(search.limit, 1), HISTORY_PAGE_MAX);
  const after = search.cursor ? parseCursor(search.cursor) : null;
  const user = search.user?.trim() || null;
  const text = search.text?.trim().toLowerCase() || null;
  // Only the conditions given: as "$n is null or …" the bounds on the time a chat ended (the range and
  // the cursor) could not be conditions of the index of ended chats in a plan made without the values
  // (the sessions' plans are: db.ts), and each page would read from the newest chat on.
  const params: unknown[] = visibleParams(agent);
  const arg = (value: unknown) => `$${params.push(value)}`;
  const where: string[] = [];
  if (search.scope === 'mine') where.push(`h.agent_id = $3`);
  if (user) {
    const exact = arg(user);
    const like = arg(likePattern(user.toLowerCase()));
    where.push(
      `(h.user_info->>'id' = ${exact} or lower(h.user_info->>'name') like ${like} escape '\\' or lower(h.user_info->>'email') like ${like} escape '\\')`,
    );
  }
  if (text) {
    const like = arg(likePattern(text));
    where.push(`(exists (select 1 from messages m where m.handover_id = h.id and lower(m.text) like ${like} escape '\\')
            or exists (select 1 from jsonb_array_elements(h.transcript) e where lower(e->>'text') like ${like} escape '\\'))`);
  }
  if (search.from) where.push(`h.ended_at >= ${arg(search.from)}`);
  if (search.to) where.push(`h.ended_at < ${arg(search.to)}`);
  if (after) where.push(`(h.ended_at, h.id) < (${arg(after.endedAt)}::timestamptz, ${arg(after.id)}::text)`);
  const { rows } = await q.query<HistoryRow>(
    `select ${columns}
     from handovers h join queues q on q.id = h.queue_id left join handover_ratings r on r.handover_id = h.id
     where ${visibleSql} ${where.map((w) => `and ${w}`).join(' ')}
     order by h.ended_at desc, h.id desc
     limit ${arg(limit + 1)}`,
    params,
  );
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { items: page.map(toItem), next: rows.length > limit && last ? cursorOf(last.ended_key, last.id) : null };
}

/** The earlier closed chats of the same user as a chat the agent can read, newest first. */
export async function earlierHandovers(q: Queryable, agent: Agent, handoverId: string): Promise<HistoryItem[]> {
  const handover = await findHandover(q, agent.tenantId, handoverId);
  assertDeskVisible(agent, handover);
  const { rows } = await q.query<HistoryRow>(
    `select ${columns}
     from handovers h join queues q on q.id = h.queue_id left join handover_ratings r on r.handover_id = h.id
     where ${visibleSql} and h.user_info->>'id' = $4 and h.id <> $5 and h.created_at <= $6
     order by h.ended_at desc, h.id desc
     limit $7`,
    [...visibleParams(agent), handover.user.id, handover.id, handover.createdAt, EARLIER_MAX],
  );
  return rows.map(toItem);
}

function cursorOf(endedKey: string, id: string): string {
  return Buffer.from(JSON.stringify([endedKey, id])).toString('base64url');
}

function parseCursor(cursor: string): { endedAt: string; id: string } {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      // The time this service wrote: an ISO time of years 1000 to 9999 (any other would reach the database unread).
      /^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$/.test(value[0]) &&
      !Number.isNaN(Date.parse(value[0])) &&
      typeof value[1] === 'string' &&
      value[1].length <= 64
    ) {
      return { endedAt: value[0], id: value[1] };
    }
  } catch {
    // answered below
  }
  throw new AppError('invalid_request', { message: 'The history cursor is not one this service gave; search again without `before`.' });
}
