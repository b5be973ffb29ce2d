import type { AdmissionController } from '../resilience/admission.js';
import type { LatencyVerdict } from '../resilience/connector-latency.js';
import type { LoadSignals } from '../resilience/load-signals.js';
import type { Db } from '../store/db.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from './metrics.js';
import type { BacklogSampler } from './backlog-sampler.js';
import type { BusHealth } from '../bus/bus.js';
import { IncidentBook, type Incident } from './incidents.js';
import type { ConnectorCheckLine } from '../connectors/connector-checks.js';
import { judgeComponents, worst, type ComponentState, type ComponentStatus, type StatusSignals, type StatusThresholds } from './status-model.js';

export interface StatusOptions extends StatusThresholds {
  sampleMs: number;
  windowMs: number;
  recoveryMs: number;
}

export interface StatusSnapshot {
  status: ComponentState;
  updatedAt: string;
  components: ComponentStatus[];
  incidents: Incident[];
  /** Every connector's last setup check (admin view only; the public view counts them). */
  checks?: ConnectorCheckLine[];
}

export interface ChartPoint {
  at: string;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  requestsPerSecond: number;
  rejectionsPerSecond: number;
}

/**
 * Judges the components every `sampleMs` from live, in-memory signals (and the backlog sampler's last
 * reading), and keeps the incident book. Pages and `doctor` read the latest verdict: answering a status
 * request never waits on the database.
 */
export class StatusService {
  private readonly book: IncidentBook;
  private snapshot: StatusSnapshot;
  private timer: NodeJS.Timeout | undefined;
  private readonly circuits = new Set<string>();
  /** Connector names by id, read once per connector. */
  private readonly names = new Map<string, string>();
  private backlog: Pick<BacklogSampler, 'latest'> | null = null;

  constructor(
    private readonly options: StatusOptions,
    private readonly sources: {
      admission: AdmissionController;
      signals: LoadSignals;
      metrics: Metrics;
      db: Db;
      log: Logger;
      circuitState(connectorId: string): 'closed' | 'half_open' | 'open';
      /** This round's check that the database answers (the readiness check's first half). */
      database?: () => Promise<{ ok: boolean; code?: string; message?: string; busy?: boolean }>;
      /** Latency verdicts of the connectors this instance measured. */
      latency?: { known(): string[]; verdict(connectorId: string): LatencyVerdict };
      /** Present when instances share live signals (Redis): its health, and the polling interval without it. */
      bus?: { health(): BusHealth; pollMs: number };
      /** The connectors' last setup checks (read from memory: checks run on their own timer). */
      checks?: () => ConnectorCheckLine[];
    },
  ) {
    this.book = new IncidentBook(options.recoveryMs);
    this.snapshot = { status: 'operational', updatedAt: new Date().toISOString(), components: [], incidents: [] };
  }

  /**
   * A connector this instance called, or whose circuit changed: from now on it is listed as a component.
   * The list is bounded by the connectors in use, never by traffic.
   */
  connectorSeen(connectorId: string): void {
    this.circuits.add(connectorId);
  }

  useBacklog(sampler: Pick<BacklogSampler, 'latest'> | null): void {
    this.backlog = sampler;
  }

  start(): void {
    if (this.timer) return;
    void this.evaluate();
    this.timer = setInterval(() => void this.evaluate(), this.options.sampleMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  latest(): StatusSnapshot {
    return this.snapshot;
  }

  /** The last hour, one point per minute (or per sample, if samples are longer). */
  chart(spanMs = 3_600_000): ChartPoint[] {
    const step = Math.max(60_000, this.options.sampleMs);
    return this.sources.metrics.requests.series(spanMs, step).map((p) => ({
      at: new Date(p.start).toISOString(),
      p50Ms: p.p50Ms,
      p95Ms: p.p95Ms,
      p99Ms: p.p99Ms,
      requestsPerSecond: round(p.requests / p.seconds),
      rejectionsPerSecond: round(p.rejections / p.seconds),
    }));
  }

  /** One round: read the signals, judge, update incidents. Exposed for tests and for `start()`. */
  async evaluate(now = new Date()): Promise<StatusSnapshot> {
    try {
      const signals = await this.gather();
      const components = judgeComponents(signals, this.options);
      this.book.update(components, now);
      const checks = this.sources.checks?.();
      this.snapshot = {
        status: worst(components.map((c) => c.state)),
        updatedAt: now.toISOString(),
        components,
        incidents: this.book.list(),
        ...(checks ? { checks } : {}),
      };
    } catch (err) {
      this.sources.log.warn({ err }, 'judging the status failed; the page keeps the last verdict');
    }
    return this.snapshot;
  }

  private async gather(): Promise<StatusSignals> {
    const { admission, signals, metrics, db } = this.sources;
    const backlog = this.backlog?.latest().samples ?? [];
    // Listed connectors: those this instance has called, and any with a backlog (another instance may be calling it).
    const watched = new Set<string>(this.circuits);
    for (const id of this.sources.latency?.known() ?? []) watched.add(id);
    for (const b of backlog) if (b.target === 'agent' && b.connectorId) watched.add(b.connectorId);
    // A connector whose setup check fails is listed before anyone uses it: that is the point of checking.
    const failing = new Map<string, ConnectorCheckLine>();
    for (const line of this.sources.checks?.() ?? []) {
      if (line.verdict !== 'failing') continue;
      failing.set(line.connectorId, line);
      watched.add(line.connectorId);
      if (!this.names.has(line.connectorId)) this.names.set(line.connectorId, `${line.name} (${line.type}${line.tenant ? `, tenant ${line.tenant}` : ''})`);
    }
    // The database first: without it the rest of this round is judged from memory alone.
    const database = this.sources.database ? await this.sources.database() : undefined;
    const unknown = [...watched].filter((id) => !this.names.has(id));
    if (unknown.length > 0 && database?.ok !== false) {
      // Named as an operator knows it: the connector's name, its kind, and whose it is (by id until read).
      try {
        const { rows } = await db.query<{ id: string; name: string; type: string; tenant: string | null }>(
          'select c.id, c.name, c.type, t.name as tenant from connectors c left join tenants t on t.id = c.tenant_id where c.id = any($1::text[])',
          [unknown],
        );
        for (const r of rows) this.names.set(r.id, `${r.name} (${r.type}${r.tenant ? `, tenant ${r.tenant}` : ''})`);
      } catch (err) {
        this.sources.log.debug({ err }, 'reading connector names failed; listed by id this round');
      }
    }
    const snapshot = admission.snapshot();
    return {
      windowSeconds: this.options.windowMs / 1000,
      api: metrics.requests.summary(this.options.windowMs),
      desk: metrics.deskRequests.summary(this.options.windowMs),
      admission: { inflight: snapshot.inflight, limit: snapshot.limit, waiting: snapshot.waiting },
      eventLoopDelayMs: signals.eventLoopDelayMs(),
      eventLoopUtilization: signals.eventLoopUtilization(),
      eventLoopCpuShare: signals.eventLoopCpuShare(),
      heap: signals.heap(),
      dbWaiting: db.poolStats().waiting,
      backlog,
      connectors: [...watched].sort().map((id) => {
        const latency = this.sources.latency?.verdict(id);
        if (latency) metrics.delivery.setLatency(id, latency);
        const check = failing.get(id);
        return {
          id,
          name: this.names.get(id) ?? id,
          circuit: this.sources.circuitState(id),
          ...(latency ? { latency } : {}),
          ...(check ? { check: { problem: check.problem ?? 'misconfigured', reason: check.reason, checkedAt: check.checkedAt } } : {}),
        };
      }),
      ...(database ? { database } : {}),
      ...(this.sources.bus ? { bus: { ...this.sources.bus.health(), pollMs: this.sources.bus.pollMs } } : {}),
    };
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
