import type { Queryable } from '../store/db.js';
import type { HandoverRow } from '../model/handover.js';

/**
 * The desk's lists: what an agent's console shows of the queues and chats, and the chats a supervisor
 * sees held. Each is one bounded statement, whatever the length of the queues.
 */

/** Users waiting, per queue of the tenant (queues with nobody waiting are absent). */
export async function waitingPerQueue(q: Queryable, tenantId: string): Promise<Map<string, number>> {
  const { rows } = await q.query<{ queue_id: string; n: number }>(
    `select queue_id, count(*)::int as n from handovers where tenant_id = $1 and state = 'queued' group by queue_id`,
    [tenantId],
  );
  return new Map(rows.map((r) => [r.queue_id, r.n]));
}

export type DeskHandoverRow = HandoverRow & { queue_name: string };

/**
 * Users waiting in the agent's queues (all of the tenant's desk queues when `queueIds` is null) and
 * the agent's own chats, longest waiting first; at most 500.
 */
export async function listDeskHandovers(q: Queryable, agent: { tenantId: string; id: string; queueIds: string[] | null }): Promise<DeskHandoverRow[]> {
  const { rows } = await q.query<DeskHandoverRow>(
    `select h.*, q.name as queue_name from handovers h join queues q on q.id = h.queue_id
     where h.tenant_id = $1 and q.connector_id is null
       and ((h.state = 'queued' and ($2::jsonb is null or $2::jsonb ? h.queue_id)) or (h.state = 'active' and h.agent_id = $3))
     order by h.queued_at, h.id limit 500`,
    [agent.tenantId, agent.queueIds ? JSON.stringify(agent.queueIds) : null, agent.id],
  );
  return rows;
}

export interface HeldChat {
  id: string;
  agentId: string;
  queue: string;
  acceptedAt: Date | null;
  userName: string | null;
}

/** Every chat an agent of the tenant holds on the desk, oldest accepted first; at most 1000. */
export async function listHeldChats(q: Queryable, tenantId: string): Promise<HeldChat[]> {
  const { rows } = await q.query<{ id: string; agent_id: string; queue_name: string; accepted_at: Date | null; user_name: string | null }>(
    `select h.id, h.agent_id, q.name as queue_name, h.accepted_at, h.user_info->>'name' as user_name
     from handovers h join queues q on q.id = h.queue_id
     where h.tenant_id = $1 and h.state = 'active' and h.agent_id is not null and h.connector_id is null
     order by h.accepted_at, h.id limit 1000`,
    [tenantId],
  );
  return rows.map((r) => ({ id: r.id, agentId: r.agent_id, queue: r.queue_name, acceptedAt: r.accepted_at, userName: r.user_name }));
}
