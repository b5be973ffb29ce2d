import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AdmissionController } from '../resilience/admission.js';
import type { LoadSignals } from '../resilience/load-signals.js';
import type { Bus } from '../bus/bus.js';

/**
 * The service's Prometheus metrics, in a registry of its own per service instance (tests run several in
 * one process). Label sets stay bounded: causes, connector ids and states, never per-handover labels.
 */
export interface Metrics {
  registry: Registry;
  admissionRejections: Counter<'cause'>;
  connectorCircuitState: Gauge<'connector_id'>;
  busPublishFailures: Counter;
}

export function createMetrics(sources: { admission: AdmissionController; signals: LoadSignals; bus: Bus }): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'handover_process_' });
  const admissionRejections = new Counter({
    name: 'handover_admission_rejections_total',
    help: 'Requests refused at the door, by cause (queue_wait, queue_full, event_loop, memory, shutting_down).',
    labelNames: ['cause'],
    registers: [registry],
  });
  new Gauge({
    name: 'http_server_active_requests',
    help: 'Requests holding an admission slot.',
    registers: [registry],
    collect() {
      this.set(sources.admission.snapshot().inflight);
    },
  });
  new Gauge({
    name: 'handover_admission_limit',
    help: 'The current (adaptive) concurrency limit.',
    registers: [registry],
    collect() {
      this.set(sources.admission.snapshot().limit);
    },
  });
  new Gauge({
    name: 'handover_admission_waiting',
    help: 'Requests waiting for an admission slot.',
    registers: [registry],
    collect() {
      this.set(sources.admission.snapshot().waiting);
    },
  });
  new Gauge({
    name: 'handover_event_loop_delay_seconds',
    help: 'Mean lag of event-loop timers over the last window.',
    registers: [registry],
    collect() {
      this.set(sources.signals.eventLoopDelayMs() / 1000);
    },
  });
  new Gauge({
    name: 'handover_event_loop_utilization_ratio',
    help: 'Share of time the event loop was busy over the last window.',
    registers: [registry],
    collect() {
      this.set(sources.signals.eventLoopUtilization());
    },
  });
  new Gauge({
    name: 'handover_heap_used_bytes',
    help: 'V8 heap in use.',
    registers: [registry],
    collect() {
      this.set(sources.signals.heap().usedBytes);
    },
  });
  new Gauge({
    name: 'handover_heap_limit_bytes',
    help: 'V8 heap size limit.',
    registers: [registry],
    collect() {
      this.set(sources.signals.heap().limitBytes);
    },
  });
  const connectorCircuitState = new Gauge({
    name: 'handover_connector_circuit_state',
    help: 'Circuit breaker per connector: 0 closed, 1 half-open, 2 open.',
    labelNames: ['connector_id'],
    registers: [registry],
  });
  new Gauge({
    name: 'handover_bus_connected',
    help: 'Whether live signals from other instances arrive (1), or the instance polls the database instead (0: Redis unreachable).',
    registers: [registry],
    collect() {
      this.set(sources.bus.health().connected ? 1 : 0);
    },
  });
  const busPublishFailures = new Counter({
    name: 'handover_bus_publish_failures_total',
    help: 'Live signals that could not be sent to other instances (Redis unreachable); they catch up by polling.',
    registers: [registry],
  });
  return { registry, admissionRejections, connectorCircuitState, busPublishFailures };
}
