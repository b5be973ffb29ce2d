import { Counter, Histogram, type Registry } from 'prom-client';

/**
 * The handover funnel: requested → (rejected | queued) → accepted → ended, plus the time a user waited
 * for an agent and how many left before one came. Reasons are the catalogue's codes and the end
 * reasons of the public contract: bounded sets.
 */
export interface Funnel {
  requested(): void;
  /** Refused before queueing; `reason` is the error code (queue_closed, no_agents_available, ...). */
  rejected(reason: string): void;
  queued(): void;
  accepted(waitedSeconds: number): void;
  /** `whileWaiting`: no agent had joined yet, which counts it as abandoned too. */
  ended(reason: string, whileWaiting: boolean): void;
  /** A user rated an ended handover (CSAT, 1 to 5), counted per tenant: tenants are few and known. */
  rated(tenantId: string, score: number): void;
}

export function createFunnelMetrics(registry: Registry): Funnel {
  const requested = new Counter({
    name: 'handover_requested_total',
    help: 'Handovers requested by bots (new conversations, not replays).',
    registers: [registry],
  });
  const rejected = new Counter({
    name: 'handover_rejected_total',
    help: 'Handover requests refused before queueing, by reason (error code).',
    labelNames: ['reason'],
    registers: [registry],
  });
  const queued = new Counter({ name: 'handover_queued_total', help: 'Handovers placed in a queue.', registers: [registry] });
  const accepted = new Counter({ name: 'handover_accepted_total', help: 'Handovers an agent joined.', registers: [registry] });
  const ended = new Counter({ name: 'handover_ended_total', help: 'Handovers ended, by end reason.', labelNames: ['reason'], registers: [registry] });
  const abandoned = new Counter({
    name: 'handover_abandoned_total',
    help: 'Handovers that ended before any agent joined (user or bot left, no answer, failure).',
    registers: [registry],
  });
  const timeToAgent = new Histogram({
    name: 'handover_time_to_agent_seconds',
    help: 'Time from queueing to an agent joining.',
    buckets: [5, 15, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [registry],
  });
  const csat = new Histogram({
    name: 'handover_csat_score',
    help: 'Satisfaction ratings users gave ended handovers (1 to 5), per tenant; sum/count is the average.',
    labelNames: ['tenant_id'],
    buckets: [1, 2, 3, 4, 5],
    registers: [registry],
  });
  return {
    requested: () => requested.inc(),
    rejected: (reason) => rejected.inc({ reason }),
    queued: () => queued.inc(),
    accepted(waitedSeconds) {
      accepted.inc();
      timeToAgent.observe(Math.max(0, waitedSeconds));
    },
    ended(reason, whileWaiting) {
      ended.inc({ reason });
      if (whileWaiting) abandoned.inc();
    },
    rated: (tenantId, score) => csat.observe({ tenant_id: tenantId }, score),
  };
}
