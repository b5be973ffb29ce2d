import type { Queryable } from '../store/db.js';
import type { Queue } from './queues.js';
import { agentServesQueueSql } from './presence.js';
import { isOpenAt, nextOpenAt } from './opening-hours.js';
import type { LatencyVerdict } from '../resilience/connector-latency.js';

export const unavailableReasons = ['closed', 'no_agents', 'at_capacity', 'degraded'] as const;
export type UnavailableReason = (typeof unavailableReasons)[number];
/** Why an external system is `degraded`: not answering (circuit open), slow, or far behind. */
export const degradedCauses = ['failing', 'slow', 'backlog'] as const;
export type DegradedCause = (typeof degradedCauses)[number];

export interface Availability {
  available: boolean;
  reason?: UnavailableReason;
  /** With `degraded`: what is wrong with the agent side. */
  cause?: DegradedCause;
  /** With `degraded`: the measured figures behind the cause. */
  details?: Record<string, number | null>;
  /** null when the agent side is an external system that does not tell. */
  agentsOnline: number | null;
  queueLength: number;
  estimatedWaitSeconds: number | null;
  nextOpenAt: string | null;
}

/**
 * Can a user who asks now reach a person? Checked before a handover is accepted so the bot can fall
 * back at once instead of parking the user in a line nobody serves.
 */
export interface AgentSideHealth {
  connectorState(connectorId: string): 'closed' | 'half_open' | 'open';
  maxBacklog: number;
  /** Items waiting for the system (the outbox's last sample; never waits); null: not sampled yet. */
  connectorBacklog(connectorId: string): number | null;
  /** How fast the system answers, as measured here (absent: not judged). */
  connectorLatency?(connectorId: string): LatencyVerdict;
  /** What the system last said about its agents (from a cache: never waits); null: unknown. */
  agentAvailability?(connectorId: string): { agentsOnline: number; byQueue?: Record<string, number> } | null;
}

export function agentSideHealth(deps: {
  connectorState: AgentSideHealth['connectorState'];
  connectorBacklog: AgentSideHealth['connectorBacklog'];
  agentAvailability?: AgentSideHealth['agentAvailability'];
  connectorLatency?: AgentSideHealth['connectorLatency'];
  config: { connectors: { maxBacklog: number } };
}): AgentSideHealth {
  const health: AgentSideHealth = {
    connectorState: (id) => deps.connectorState(id),
    connectorBacklog: (id) => deps.connectorBacklog(id),
    maxBacklog: deps.config.connectors.maxBacklog,
  };
  const agentAvailability = deps.agentAvailability;
  if (agentAvailability) health.agentAvailability = (id) => agentAvailability(id);
  const connectorLatency = deps.connectorLatency;
  if (connectorLatency) health.connectorLatency = (id) => connectorLatency(id);
  return health;
}

export async function checkAvailability(q: Queryable, queue: Queue, now: Date, health: AgentSideHealth): Promise<Availability> {
  const queueLength = await countWaiting(q, queue.id);
  const open = isOpenAt(queue.schedule, now);
  const next = open ? null : nextOpenAt(queue.schedule, now);
  const base = { queueLength, nextOpenAt: next ? next.toISOString() : null };
  if (!open) return { available: false, reason: 'closed', agentsOnline: null, estimatedWaitSeconds: null, ...base };
  if (queue.connectorId) {
    // A system that is not answering, or far behind, is not offered: bots fall back instead of
    // handing users into a black hole.
    const degraded = { available: false, reason: 'degraded', agentsOnline: null, estimatedWaitSeconds: null, ...base } as const;
    if (health.connectorState(queue.connectorId) === 'open') return { ...degraded, cause: 'failing' };
    // Answering, but slowly: a user handed over now would wait on every message (unless the
    // connector is set to be offered while slow).
    const latency = health.connectorLatency?.(queue.connectorId);
    if (latency?.slow && !latency.objective.offerWhileSlow) {
      return {
        ...degraded,
        cause: 'slow',
        details: {
          callP99Ms: latency.callP99Ms,
          normalCallP99Ms: latency.normalCallP99Ms === null ? null : Math.round(latency.normalCallP99Ms),
          callObjectiveMs: latency.objective.callP99Ms,
          deliveryLagP99Ms: latency.lagP99Ms,
          lagObjectiveMs: latency.objective.lagP99Ms,
        },
      };
    }
    // As last sampled (every HANDOVER_STATUS_SAMPLE_MS): a check must not wait on a count that grows
    // with the backlog, least of all when the backlog is what is wrong. Not sampled yet: not judged.
    const backlog = health.connectorBacklog(queue.connectorId) ?? 0;
    if (backlog >= health.maxBacklog) return { ...degraded, cause: 'backlog', details: { pending: backlog, maxBacklog: health.maxBacklog } };
    // A system that says nobody is there is believed; one that does not tell (no availability
    // capability, no fresh answer) is taken at its word: open means open.
    // A system that counts the queue's own agents (its team) is judged by that count.
    const reported = health.agentAvailability?.(queue.connectorId) ?? null;
    const online = reported ? (reported.byQueue?.[queue.name] ?? reported.agentsOnline) : null;
    if (online === 0) return { available: false, reason: 'no_agents', agentsOnline: 0, estimatedWaitSeconds: null, ...base };
    return { available: true, agentsOnline: online, estimatedWaitSeconds: await estimateWait(q, queue.id, queueLength + 1), ...base };
  }
  const capacity = await deskCapacity(q, queue.id);
  const estimatedWaitSeconds = await estimateWait(q, queue.id, queueLength + 1);
  if (capacity.agentsOnline === 0) return { available: false, reason: 'no_agents', agentsOnline: 0, estimatedWaitSeconds: null, ...base };
  if (queueLength >= capacity.freeSlots + queue.maxWaiting) {
    return { available: false, reason: 'at_capacity', agentsOnline: capacity.agentsOnline, estimatedWaitSeconds, ...base };
  }
  return { available: true, agentsOnline: capacity.agentsOnline, estimatedWaitSeconds, ...base };
}

export async function countWaiting(q: Queryable, queueId: string): Promise<number> {
  const { rows } = await q.query<{ n: number }>(`select count(*)::int as n from handovers where queue_id = $1 and state = 'queued'`, [queueId]);
  return rows[0]?.n ?? 0;
}

async function deskCapacity(q: Queryable, queueId: string): Promise<{ agentsOnline: number; freeSlots: number }> {
  const { rows } = await q.query<{ online: number; free: number }>(
    `select count(*)::int as online,
            coalesce(sum(greatest(a.max_chats - (select count(*) from handovers h where h.agent_id = a.id and h.state = 'active'), 0)), 0)::int as free
     from agents a where ${agentServesQueueSql('$1')}`,
    [queueId],
  );
  return { agentsOnline: rows[0]?.online ?? 0, freeSlots: rows[0]?.free ?? 0 };
}

/**
 * Estimated wait at a position, from the queue's recent real waits: over the last 20 users answered
 * in 24 h, the seconds each waited per place they had in line, times the given place. null when
 * there is no recent history — an honest "unknown" beats an invented number — and for a desk queue
 * that no agent online serves now: no wait ends while nobody is at a desk.
 */
export async function estimateWait(q: Queryable, queueId: string, position: number): Promise<number | null> {
  return estimateAt(await waitPerPlace(q, queueId), position);
}

/** The estimate at a position from the queue's `waitPerPlace` (read once for a whole line). */
export function estimateAt(perPlace: number | null, position: number): number | null {
  return perPlace === null ? null : Math.max(0, Math.round(perPlace * position));
}

/** Seconds waited per place in line, as `estimateWait` explains; null: unknown or nobody online. */
export async function waitPerPlace(q: Queryable, queueId: string): Promise<number | null> {
  const { rows } = await q.query<{ wait: number | null; places: number | null; served: boolean }>(
    `select sum(extract(epoch from accepted_at - queued_at))::float8 as wait, sum(greatest(queue_position_at_start, 1))::float8 as places,
            (select connector_id is not null or exists (select 1 from agents a where ${agentServesQueueSql('$1')}) from queues where id = $1) as served
     from (select accepted_at, queued_at, queue_position_at_start from handovers
           where queue_id = $1 and accepted_at is not null and accepted_at > now() - interval '24 hours'
           order by accepted_at desc limit 20) recent`,
    [queueId],
  );
  const { wait, places, served } = rows[0] ?? { wait: null, places: null, served: false };
  if (wait === null || !places || !served) return null;
  return wait / places;
}

/** 1-based place in line of a queued handover. */
export async function positionInQueue(q: Queryable, queueId: string, queuedAt: Date, handoverId: string): Promise<number> {
  const { rows } = await q.query<{ n: number }>(
    `select count(*)::int as n from handovers where queue_id = $1 and state = 'queued' and (queued_at, id) <= ($2, $3)`,
    [queueId, queuedAt, handoverId],
  );
  return rows[0]?.n ?? 1;
}
