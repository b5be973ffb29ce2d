import { Gauge, type Registry } from 'prom-client';
import { SeriesHistogram } from './series-histogram.js';

/** Where an outbox item goes: `to_agent` (a connector) or `to_bot` (the tenant's webhook). */
export type Direction = 'to_agent' | 'to_bot';
/** How one outbound call ended: delivered, failed and retried later, or failed for good. */
export type CallOutcome = 'ok' | 'retry' | 'failed';

export interface BacklogSample {
  target: 'agent' | 'bot';
  /** Empty for the bot side: one series for all tenants' webhooks keeps the label set bounded. */
  connectorId: string;
  items: number;
  oldestSeconds: number;
  /** Items per second more (or fewer, negative) than at the previous sample; absent on the first. */
  growthPerSecond?: number;
}

/**
 * Delivery through the outbox: how much waits and for how long, how long accepted work takes to reach
 * the other side, and how each connector's calls go. Connector ids are the only open-ended label, and
 * there is one per configured helpdesk, never one per handover.
 */
export interface DeliveryMetrics {
  setBacklog(samples: BacklogSample[]): void;
  /** An item reached the other side `seconds` after it was accepted. */
  delivered(direction: Direction, seconds: number): void;
  connectorCall(connectorId: string, outcome: CallOutcome, seconds: number): void;
  /** Accepted → delivered, per connector (empty for the bot side) and side. */
  lag(connectorId: string, side: 'agent' | 'bot', seconds: number): void;
  /** A connector's latency verdict over its window (resilience/connector-latency.ts). */
  setLatency(connectorId: string, verdict: { slow: boolean; callP99Ms: number | null; normalCallP99Ms: number | null; lagP99Ms: number | null }): void;
  botWebhookCall(outcome: CallOutcome, seconds: number): void;
}

/** Edges at the end-to-end delivery target (1 s at p99) and around it. */
const deliveryBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Outbound calls: fast helpdesks answer in tens of ms; the call deadline defaults to 10 s. */
const callBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function createDeliveryMetrics(registry: Registry): DeliveryMetrics {
  const backlogItems = new Gauge({
    name: 'handover_outbox_backlog_items',
    help: 'Outbox items not yet delivered, per side and connector (sampled periodically).',
    labelNames: ['target', 'connector_id'],
    registers: [registry],
  });
  const oldestAge = new Gauge({
    name: 'handover_outbox_oldest_pending_age_seconds',
    help: 'Age of the oldest undelivered outbox item, per side and connector (sampled periodically).',
    labelNames: ['target', 'connector_id'],
    registers: [registry],
  });
  const latency = new SeriesHistogram({
    name: 'handover_delivery_latency_seconds',
    help: 'Time from accepting an item (2xx to its sender) to delivering it to the other side.',
    labelNames: ['direction'],
    buckets: deliveryBuckets,
    registers: [registry],
  });
  const connectorCalls = new SeriesHistogram({
    name: 'handover_connector_call_duration_seconds',
    help: 'Duration of calls to agent-side systems, per connector and outcome (ok, retry, failed).',
    labelNames: ['connector_id', 'outcome'],
    buckets: callBuckets,
    registers: [registry],
  });
  const lag = new SeriesHistogram({
    name: 'handover_delivery_lag_seconds',
    help: "Time from accepting an item to delivering it, per connector (empty: the bots' webhooks) and side (agent, bot).",
    labelNames: ['connector_id', 'side'],
    buckets: deliveryBuckets,
    registers: [registry],
  });
  const slow = new Gauge({
    name: 'handover_connector_slow',
    help: 'Whether a connector answers slower than its latency objective over the window (1: slow), as this instance measures it.',
    labelNames: ['connector_id'],
    registers: [registry],
  });
  const windowCallP99 = new Gauge({
    name: 'handover_connector_window_call_p99_seconds',
    help: 'p99 duration of calls to a connector over the latency window (absent with no calls).',
    labelNames: ['connector_id'],
    registers: [registry],
  });
  const normalCallP99 = new Gauge({
    name: 'handover_connector_normal_call_p99_seconds',
    help: 'What the p99 of calls to a connector normally is: learnt from windows judged healthy.',
    labelNames: ['connector_id'],
    registers: [registry],
  });
  const windowLagP99 = new Gauge({
    name: 'handover_connector_window_lag_p99_seconds',
    help: 'p99 delivery lag towards a connector over the latency window (absent with no deliveries).',
    labelNames: ['connector_id'],
    registers: [registry],
  });
  const botCalls = new SeriesHistogram({
    name: 'handover_bot_webhook_call_duration_seconds',
    help: 'Duration of signed webhook calls to bots, per outcome (ok, retry, failed).',
    labelNames: ['outcome'],
    buckets: callBuckets,
    registers: [registry],
  });
  // Both sides always have a series, so "no backlog" reads 0 rather than "no data".
  for (const target of ['agent', 'bot']) {
    backlogItems.set({ target, connector_id: '' }, 0);
    oldestAge.set({ target, connector_id: '' }, 0);
  }
  for (const outcome of ['ok', 'retry', 'failed']) botCalls.zero({ outcome });
  for (const direction of ['to_agent', 'to_bot']) latency.zero({ direction });

  return {
    setBacklog(samples) {
      // A connector whose backlog drained drops out of the sample: reset so it reads 0, not its last value.
      backlogItems.reset();
      oldestAge.reset();
      for (const target of ['agent', 'bot']) {
        backlogItems.set({ target, connector_id: '' }, 0);
        oldestAge.set({ target, connector_id: '' }, 0);
      }
      for (const s of samples) {
        backlogItems.set({ target: s.target, connector_id: s.connectorId }, s.items);
        oldestAge.set({ target: s.target, connector_id: s.connectorId }, s.oldestSeconds);
      }
    },
    delivered(direction, seconds) {
      latency.keyed(direction, () => ({ direction })).observe(seconds);
    },
    connectorCall(connectorId, outcome, seconds) {
      connectorCalls.keyed(`${connectorId}\u0000${outcome}`, () => ({ connector_id: connectorId, outcome })).observe(seconds);
    },
    lag(connectorId, side, seconds) {
      lag.keyed(`${connectorId}\u0000${side}`, () => ({ connector_id: connectorId, side })).observe(seconds);
    },
    setLatency(connectorId, v) {
      const labels = { connector_id: connectorId };
      slow.set(labels, v.slow ? 1 : 0);
      if (v.callP99Ms === null) windowCallP99.remove(labels);
      else windowCallP99.set(labels, v.callP99Ms / 1000);
      if (v.normalCallP99Ms !== null) normalCallP99.set(labels, v.normalCallP99Ms / 1000);
      if (v.lagP99Ms === null) windowLagP99.remove(labels);
      else windowLagP99.set(labels, v.lagP99Ms / 1000);
    },
    botWebhookCall(outcome, seconds) {
      botCalls.observe({ outcome }, seconds);
    },
  };
}
