import type { Queryable } from '../store/db.js';
import { inTransaction } from '../store/unit-of-work.js';
import { AppError } from '../resilience/errors.js';
import type { Deps } from '../deps.js';
import { lockHandover } from '../handover/handover-lock.js';
import { markAgentJoined } from '../handover/lifecycle.js';
import type { Handover, UserInfo } from '../model/handover.js';
import { listTeam } from './agents.js';
import type { Agent } from '../model/agent.js';
import { agentServesQueueSql } from '../routing/presence.js';

/**
 * The supervisor's view of the desk (docs/desk.md, "Supervisors"): the figures of each queue, who is
 * online with how many chats, every live chat (each readable), and taking over a chat from its agent.
 * Each figure set is one statement, bounded, whatever the number of chats.
 */
export interface QueueFigures {
  id: string;
  name: string;
  waiting: number;
  /** When the user waiting longest started waiting (null: nobody waits). */
  oldestQueuedAt: Date | null;
  /** Chats of the queue an agent holds. */
  activeChats: number;
  /** Agents of the queue who can answer now: available, signed in, at a desk. */
  agentsOnline: number;
}

export interface LiveChat {
  id: string;
  state: 'queued' | 'active';
  queue: string;
  user: UserInfo;
  agent: { id: string; name: string } | null;
  /** Waiting since (queued) or held since (active). */
  since: Date;
}

export interface DeskOverview {
  queues: QueueFigures[];
  /** Agents of the tenant who can answer now (each counted once, whatever their queues). */
  agentsOnline: number;
  agents: Array<{ id: string; name: string; presence: string; online: boolean; activeChats: number; maxChats: number }>;
  chats: LiveChat[];
}

/** The most live chats one overview lists (longest waiting first, then held longest). */
export const OVERVIEW_CHATS_MAX = 500;

export async function deskOverview(q: Queryable, tenantId: string): Promise<DeskOverview> {
  const [queues, team, chats] = await Promise.all([
    q.query<{ id: string; name: string; waiting: number; oldest: Date | null; active: number; agents_online: number }>(
      `select q.id, q.name,
              (select count(*)::int from handovers h where h.queue_id = q.id and h.state = 'queued') as waiting,
              (select min(h.queued_at) from handovers h where h.queue_id = q.id and h.state = 'queued') as oldest,
              (select count(*)::int from handovers h where h.queue_id = q.id and h.state = 'active') as active,
              (select count(*)::int from agents a where ${agentServesQueueSql('q.id')}) as agents_online
       from queues q where q.tenant_id = $1 and q.connector_id is null order by q.name limit 200`,
      [tenantId],
    ),
    listTeam(q, tenantId),
    q.query<{
      id: string;
      state: 'queued' | 'active';
      queue_name: string;
      user_info: UserInfo;
      agent_id: string | null;
      agent_name: string | null;
      since: Date;
    }>(
      `select h.id, h.state, q.name as queue_name, h.user_info, h.agent_id, h.agent_info->>'name' as agent_name,
              case when h.state = 'queued' then h.queued_at else coalesce(h.accepted_at, h.queued_at) end as since
       from handovers h join queues q on q.id = h.queue_id
       where h.tenant_id = $1 and h.state in ('queued', 'active') and h.connector_id is null and q.connector_id is null
       order by h.state desc, since, h.id limit $2`,
      [tenantId, OVERVIEW_CHATS_MAX],
    ),
  ]);
  return {
    queues: queues.rows.map((r) => ({
      id: r.id,
      name: r.name,
      waiting: r.waiting,
      oldestQueuedAt: r.oldest,
      activeChats: r.active,
      agentsOnline: r.agents_online,
    })),
    agentsOnline: team.filter((a) => a.online && a.presence === 'available').length,
    agents: team.map((a) => ({ id: a.id, name: a.name, presence: a.presence, online: a.online, activeChats: a.activeChats, maxChats: a.maxChats })),
    chats: chats.rows.map((r) => ({
      id: r.id,
      state: r.state,
      queue: r.queue_name,
      user: r.user_info,
      agent: r.agent_id ? { id: r.agent_id, name: r.agent_name ?? '' } : null,
      since: r.since,
    })),
  };
}

/**
 * A supervisor takes a live chat of the built-in desk: a waiting one, or one another agent holds (who
 * left, or needs help). The bot is told an agent joined (the supervisor); the agent who held it sees it
 * leave their chats. Neither presence nor the chat limit holds a supervisor back here: taking over is
 * a deliberate step. Taking a chat one already holds changes nothing.
 */
export async function takeHandover(deps: Deps, input: { supervisor: Agent; handoverId: string }): Promise<Handover> {
  const { supervisor } = input;
  if (supervisor.role !== 'supervisor') throw new AppError('forbidden_role');
  return inTransaction(deps.db, async (uow) => {
    const handover = await lockHandover(uow.q, supervisor.tenantId, input.handoverId);
    if (handover.connectorId) throw new AppError('handover_not_found');
    if (handover.state === 'ended') throw new AppError('handover_ended');
    if (handover.state === 'active' && handover.agentId === supervisor.id) return handover;
    return markAgentJoined(deps, uow, handover, { id: supervisor.id, name: supervisor.name }, supervisor.id, deps.now());
  });
}
