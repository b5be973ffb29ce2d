import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { SeriesHistogram } from '../telemetry/series-histogram.js';
import type { AdmissionController } from '../resilience/admission.js';
import type { LoadSignals } from '../resilience/load-signals.js';
import type { Bus } from '../bus/bus.js';
import type { Db } from '../store/db.js';
import { createDeliveryMetrics, type DeliveryMetrics } from '../telemetry/delivery-metrics.js';
import { createFunnelMetrics, type Funnel } from '../telemetry/funnel-metrics.js';
import { RequestWindow } from '../telemetry/request-window.js';
import { threadCpuSeconds } from '../telemetry/thread-cpu.js';

/**
 * Request-duration bucket edges at the latency targets (docs/overload.md, bench/): 20 ms for a refusal,
 * 50 ms the admission limiter's target, 250 ms the accepted-request p99 target (the latency SLO).
 */
/**
 * Error codes of the guards at the doors (docs/security.md): counted, so an attack — or a client that
 * misbehaves by accident, such as a helpdesk with the wrong secret — shows on a dashboard.
 */
export const GUARD_CODES = [
  'upload_too_slow',
  'too_many_uploads',
  'too_many_streams',
  'inbound_unverified_rate_limited',
  'invalid_signature',
  'too_many_login_attempts',
] as const;

export const requestDurationBuckets = [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The service's Prometheus metrics, in a registry of its own per service instance (tests run several in
 * one process). Label sets stay bounded: causes, connector ids and states, never per-handover labels.
 */
export interface Metrics {
  registry: Registry;
  admissionRejections: Counter<'cause'>;
  /** Requests refused by a guard against hostile or careless clients, by error code (GUARD_CODES). */
  guardRefusals: Counter<'code'>;
  connectorCircuitState: Gauge<'connector_id'>;
  /** OpenTelemetry's `http.server.request.duration`, labelled with the route template, never the raw URL. */
  httpRequestDuration: SeriesHistogram<'http_request_method' | 'http_route' | 'http_response_status_code'>;
  delivery: DeliveryMetrics;
  funnel: Funnel;
  /** The last hour of API traffic in memory, for the status page. */
  requests: RequestWindow;
  /** The same for the desk's API. */
  deskRequests: RequestWindow;
  busPublishFailures: Counter;
  /** CPU seconds of another thread of this process, as it reported them (the delivery thread). */
  threadCpu(thread: string, seconds: number): void;
  /** A batch of the accept path written (or failed): its messages and how long its write took. */
  acceptBatch(messages: number, seconds: number, failed: boolean): void;
}

export interface MetricsOptions {
  /** Resolution and span of the in-memory request window (status page). */
  windowSliceMs?: number;
  windowKeepMs?: number;
  /** The configured pool size (db_client_connection_max). */
  poolSize?: number;
  /** HANDOVER_ADMISSION_STUCK_MS: when readiness takes admission for stuck (handover_admission_stuck). */
  admissionStuckMs?: number;
}

/**
 * The process's own metrics (CPU, memory, event-loop lag, GC), collected once per process and listed by
 * every service's registry: prom-client's collectors cannot be stopped (the event-loop lag histogram
 * samples every 10 ms for as long as the process lives), so one set per service would pile up with each
 * start in the same process.
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: 'handover_process_' });
  }
  return processRegistry;
}

export function createMetrics(
  sources: { admission: AdmissionController; signals: LoadSignals; bus: Bus; db?: Db; acceptQueued?: () => number },
  options: MetricsOptions = {},
): Metrics {
  const registry = new Registry();
  const shared = processMetrics();
  for (const { name } of shared.getMetricsAsArray()) registry.registerMetric(shared.getSingleMetric(name)!);
  // Counted by admission itself as it refuses, and read here when the metrics are: a refusal is made
  // when the process is busiest, and counting each one here cost it more than the count is worth.
  const reportedRejections = new Map<string, number>();
  const admissionRejections = new Counter({
    name: 'handover_admission_rejections_total',
    help: 'Requests refused at the door, by cause (queue_wait, queue_full, event_loop, memory, shutting_down).',
    labelNames: ['cause'],
    registers: [registry],
    collect() {
      for (const [cause, total] of Object.entries(sources.admission.rejectionCounts())) {
        const delta = total - (reportedRejections.get(cause) ?? 0);
        if (delta <= 0) continue;
        this.inc({ cause }, delta);
        reportedRejections.set(cause, total);
      }
    },
  });
  const guardRefusals = new Counter({
    name: 'handover_guard_refusals_total',
    help: 'Requests refused by a guard against hostile or careless clients, by error code (upload_too_slow, too_many_uploads, too_many_streams, inbound_unverified_rate_limited, invalid_signature, too_many_login_attempts).',
    labelNames: ['code'],
    registers: [registry],
  });
  for (const code of GUARD_CODES) guardRefusals.inc({ code }, 0);
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
  const stuckMs = options.admissionStuckMs ?? 30_000;
  new Gauge({
    name: 'handover_admission_stuck',
    help: 'Whether admission slots stopped coming back (1), so /readyz fails with admission_stuck and the instance needs a restart.',
    registers: [registry],
    collect() {
      this.set(sources.admission.health({ stuckMs }).ok ? 0 : 1);
    },
  });
  new Gauge({
    name: 'handover_admission_orphaned_slots',
    help: 'Admission slots held for requests whose client has gone (past a moment of grace): each one is a slot lost.',
    registers: [registry],
    collect() {
      this.set(sources.admission.health({ stuckMs }).orphaned);
    },
  });
  new Gauge({
    name: 'handover_event_loop_delay_seconds',
    help: 'Median lag of event-loop timers over the last window.',
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
    name: 'handover_event_loop_cpu_ratio',
    help: "Share of time the event loop's thread ran on a CPU over the last window (the OS's accounting); below the utilization when it waited for a core.",
    registers: [registry],
    collect() {
      const share = sources.signals.eventLoopCpuShare();
      if (share !== undefined) this.set(share);
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
  // Observed for every request, refusals too: a histogram whose series are found once (series-histogram.ts).
  const httpRequestDuration = new SeriesHistogram({
    name: 'http_server_request_duration_seconds',
    help: 'Duration of HTTP server requests (OpenTelemetry http.server.request.duration).',
    labelNames: ['http_request_method', 'http_route', 'http_response_status_code'],
    buckets: requestDurationBuckets,
    registers: [registry],
  });
  const db = sources.db;
  if (db) {
    // OpenTelemetry's db.client.connection.count {state} and .pending_requests.
    new Gauge({
      name: 'db_client_connection_count',
      help: 'Database connections of this instance, by state (used, idle).',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const stats = db.poolStats();
        this.set({ state: 'used' }, stats.total - stats.idle);
        this.set({ state: 'idle' }, stats.idle);
      },
    });
    new Gauge({
      name: 'db_client_connection_pending_requests',
      help: 'Callers waiting for a free database connection.',
      registers: [registry],
      collect() {
        this.set(db.poolStats().waiting);
      },
    });
    new Gauge({
      name: 'db_client_connection_max',
      help: 'Most database connections this instance opens.',
      registers: [registry],
      collect() {
        this.set(db.kind === 'pglite' ? 1 : (options.poolSize ?? db.poolStats().total));
      },
    });
  }
  // Which thread is saturated: the HTTP thread's own CPU, read at each scrape, and the others' as they report it.
  const threadSeconds = new Map<string, number>();
  new Counter({
    name: 'handover_thread_cpu_seconds_total',
    help: "CPU time (user + system) of the HTTP thread, the delivery thread and the embedded database's thread, from the OS (Linux only).",
    labelNames: ['thread'],
    registers: [registry],
    collect() {
      const http = threadCpuSeconds();
      if (http !== null) threadSeconds.set('http', http);
      const database = db?.threadCpuSeconds?.() ?? null;
      if (database !== null) threadSeconds.set('database', database);
      this.reset();
      for (const [thread, seconds] of threadSeconds) this.inc({ thread }, seconds);
    },
  });
  // The accept path's group commit: a message's latency is mostly its batch's write (and the wait for the
  // batch before it), so these tell a slow database apart from a busy thread that answers.
  const acceptBatchSeconds = new Histogram({
    name: 'handover_accept_batch_duration_seconds',
    help: 'Time to write one batch of user messages (one statement and one commit), by outcome (ok, failed).',
    labelNames: ['outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  for (const outcome of ['ok', 'failed']) acceptBatchSeconds.zero({ outcome });
  const acceptBatchOk = acceptBatchSeconds.labels({ outcome: 'ok' });
  const acceptBatchFailed = acceptBatchSeconds.labels({ outcome: 'failed' });
  const acceptBatchMessages = new Histogram({
    name: 'handover_accept_batch_messages',
    help: 'User messages written by one batch of the accept path.',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [registry],
  });
  const { acceptQueued } = sources;
  if (acceptQueued)
    new Gauge({
      name: 'handover_accept_queued_messages',
      help: 'User messages waiting for their batch to be written (bounded by HANDOVER_ACCEPT_MAX_QUEUED).',
      registers: [registry],
      collect() {
        this.set(acceptQueued());
      },
    });
  const requests = new RequestWindow(options.windowSliceMs ?? 10_000, options.windowKeepMs ?? 3_600_000);
  return {
    threadCpu: (thread, seconds) => threadSeconds.set(thread, seconds),
    acceptBatch(messages, seconds, failed) {
      (failed ? acceptBatchFailed : acceptBatchOk).observe(seconds);
      acceptBatchMessages.observe(messages);
    },
    registry,
    admissionRejections,
    guardRefusals,
    connectorCircuitState,
    busPublishFailures,
    httpRequestDuration,
    delivery: createDeliveryMetrics(registry),
    funnel: createFunnelMetrics(registry),
    requests,
    deskRequests: new RequestWindow(options.windowSliceMs ?? 10_000, options.windowKeepMs ?? 3_600_000),
  };
}
