import type { ConnectorLatency } from '../resilience/connector-latency.js';
import type { Metrics } from '../monitoring/metrics.js';
import type { StatusService } from '../monitoring/status-service.js';
import type { Logger } from '../telemetry/logger.js';
import { createCheckMetrics } from '../monitoring/check-metrics.js';
import type { ServiceEvents } from './events.js';

const circuitStates = { closed: 0, half_open: 1, open: 2 } as const;

/** Metrics count what the parts tell (docs/observability.md). */
export function metricsObserve(events: ServiceEvents, metrics: Metrics): void {
  const checks = createCheckMetrics(metrics.registry);
  events.on('bus:publishFailed', () => metrics.busPublishFailures.inc());
  events.on('circuit:changed', ({ connectorId, state }) => metrics.connectorCircuitState.set({ connector_id: connectorId }, circuitStates[state]));
  events.on('backlog:sampled', ({ samples }) => metrics.delivery.setBacklog(samples));
  events.on('accept:batch', ({ messages, seconds, failed }) => metrics.acceptBatch(messages, seconds, failed));
  events.on('check:judged', ({ line }) => checks.record(line));
  events.on('thread:cpu', ({ thread, seconds }) => metrics.threadCpu(thread, seconds));
  events.on('check:gone', ({ connectorId }) => checks.forget(connectorId));
  events.on('delivery:attempted', ({ target, connectorId, createdAtMs, outcome, seconds }) => {
    if (target === 'agent') metrics.delivery.connectorCall(connectorId ?? '', outcome, seconds);
    else metrics.delivery.botWebhookCall(outcome, seconds);
    if (outcome !== 'ok') return;
    const lag = deliveryLagSeconds(createdAtMs);
    metrics.delivery.delivered(target === 'agent' ? 'to_agent' : 'to_bot', lag);
    metrics.delivery.lag(target === 'agent' ? (connectorId ?? '') : '', target, lag);
  });
}

/**
 * The status page lists every connector this instance called or whose circuit changed, and judges each
 * one's speed from the latency it measured.
 */
export function statusObserve(events: ServiceEvents, status: StatusService, latency: ConnectorLatency, log: Logger): void {
  events.on('circuit:changed', ({ connectorId, state }) => {
    status.connectorSeen(connectorId);
    log.warn({ connectorId, circuit: state }, `connector ${connectorId} circuit is now ${state}`);
  });
  events.on('delivery:attempted', ({ target, connectorId, createdAtMs, outcome, seconds }) => {
    if (target !== 'agent' || !connectorId) return;
    status.connectorSeen(connectorId);
    latency.call(connectorId, seconds * 1000);
    if (outcome === 'ok') latency.delivered(connectorId, deliveryLagSeconds(createdAtMs) * 1000);
  });
}

/** From the item's creation to now: what the user waited for it. */
function deliveryLagSeconds(createdAtMs: number): number {
  return Math.max(0, (Date.now() - createdAtMs) / 1000);
}
