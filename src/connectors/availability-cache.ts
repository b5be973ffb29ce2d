import type { Logger } from '../telemetry/logger.js';
import type { AgentAvailability, Connector } from './connector.js';
import { failureText } from './connector-helpers.js';
import { toError } from '../resilience/errors.js';

interface Entry {
  /** The last answer and when it came; null until one came. */
  value: AgentAvailability | null;
  fetchedAt: number;
  /** When the last fetch started (answered or not): the next is due `refreshMs` after it. */
  attemptedAt: number;
  inflight: boolean;
}

export interface AvailabilityCacheOptions {
  /** A fetch is started when a reader finds the last attempt older than this. */
  refreshMs: number;
  /** Answers older than this are not used: the system is then taken at its word. */
  maxAgeMs: number;
  /** Deadline of one fetch. */
  timeoutMs: number;
  /** Connectors remembered at most (the oldest is forgotten first). */
  maxEntries: number;
  /** A failed fetch's log line may quote the system's answer (off with HANDOVER_REDACT_CONTENT). */
  quoteAnswers?: boolean;
}

/**
 * Agent availability of external systems, for request paths that must never wait on them
 * (`GET /v1/availability`, `POST /v1/handovers`). `peek` answers from memory at once and, when the last
 * fetch is due again, starts one in the background; so systems are polled only while their queues
 * are asked about, each at most once per `refreshMs` per instance, each fetch bounded by `timeoutMs`.
 * Until a first answer arrives, or once it is older than `maxAgeMs` (the system stopped answering),
 * `peek` says null: unknown.
 */
export class AvailabilityCache {
  private readonly entries = new Map<string, Entry>();
  private readonly aborts = new Set<AbortController>();
  private stopped = false;

  constructor(
    private readonly instanceOf: (connectorId: string) => Promise<Connector>,
    private readonly options: AvailabilityCacheOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  peek(connectorId: string): AgentAvailability | null {
    const now = this.now();
    let entry = this.entries.get(connectorId);
    if (!entry) {
      entry = { value: null, fetchedAt: 0, attemptedAt: 0, inflight: false };
      this.remember(connectorId, entry);
    }
    if (!entry.inflight && now - entry.attemptedAt >= this.options.refreshMs && !this.stopped) void this.refresh(connectorId, entry);
    return entry.value && now - entry.fetchedAt < this.options.maxAgeMs ? entry.value : null;
  }

  /** How many connectors are remembered. */
  get size(): number {
    return this.entries.size;
  }

  /** Aborts fetches in flight; `peek` answers from memory only afterwards. */
  stop(): void {
    this.stopped = true;
    for (const abort of this.aborts) abort.abort();
  }

  private remember(connectorId: string, entry: Entry): void {
    this.entries.set(connectorId, entry);
    if (this.entries.size > this.options.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  private async refresh(connectorId: string, entry: Entry): Promise<void> {
    entry.inflight = true;
    entry.attemptedAt = this.now();
    const abort = new AbortController();
    this.aborts.add(abort);
    const timer = setTimeout(() => abort.abort(new Error(`no answer within ${this.options.timeoutMs} ms`)), this.options.timeoutMs);
    try {
      // Looked up each time (an in-memory hit): a connector changed to report availability starts to.
      const connector = await this.instanceOf(connectorId);
      if (!connector.availability) {
        entry.value = null;
        return;
      }
      const value = await connector.availability(abort.signal);
      const count = (n: number) => Math.max(0, Math.floor(n));
      entry.value = {
        agentsOnline: count(value.agentsOnline),
        ...(value.byQueue ? { byQueue: Object.fromEntries(Object.entries(value.byQueue).map(([queue, n]) => [queue, count(n)])) } : {}),
      };
      entry.fetchedAt = this.now();
    } catch (err) {
      // The last answer stays until it ages out; meanwhile the system is not asked more often.
      if (!this.stopped) {
        const reason = failureText(toError(err), { quoteAnswers: this.options.quoteAnswers ?? false });
        this.log.warn({ err, connectorId }, `agent availability of an external system could not be fetched: ${reason}`);
      }
    } finally {
      clearTimeout(timer);
      this.aborts.delete(abort);
      entry.inflight = false;
    }
  }
}
