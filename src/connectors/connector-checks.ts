import type { Queryable } from '../store/db.js';
import type { Logger } from '../telemetry/logger.js';
import { toError } from '../resilience/errors.js';
import type { CheckProblem, Connector, ConnectorCheck } from './connector.js';
import { failureText } from './connector-helpers.js';
import type { CheckFailure } from './check-call.js';

/** One connector's last check, as the status page, the doctor, metrics and the admin API show it. */
export interface ConnectorCheckLine {
  connectorId: string;
  name: string;
  type: string;
  tenantId: string;
  tenant: string | null;
  verdict: ConnectorCheck['verdict'];
  problem: CheckProblem | null;
  reason: string;
  checkedAt: string;
}

export interface ConnectorChecksOptions {
  /** How often every connector is checked. */
  intervalMs: number;
  /** Deadline of one check. */
  timeoutMs: number;
  /** Checks in flight at once. */
  concurrency: number;
  /** Connectors checked at most per round (the oldest rows first). */
  maxConnectors: number;
  /** A failing check's reason may quote the system's answer (off with HANDOVER_REDACT_CONTENT). */
  quoteAnswers: boolean;
}

interface Row {
  id: string;
  type: string;
  name: string;
  tenant_id: string;
  tenant: string | null;
}

/**
 * Runs every connector's own `check()` on a timer, a few at a time, each bounded by `timeoutMs`, and
 * keeps the last verdicts in memory: readers (status page, doctor, metrics, admin API) never wait on
 * an external system, and a check — failing, hanging or throwing — never touches delivery.
 */
export class ConnectorChecks {
  private readonly lines = new Map<string, ConnectorCheckLine>();
  private readonly aborts = new Set<AbortController>();
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly q: Queryable,
    private readonly instanceOf: (connectorId: string) => Promise<Connector>,
    private readonly options: ConnectorChecksOptions,
    private readonly log: Logger,
    /** Told each verdict as it comes (metrics). */
    private readonly onLine: (line: ConnectorCheckLine) => void = () => {},
    /** Told of connectors no longer there. */
    private readonly onGone: (connectorId: string) => void = () => {},
  ) {}

  start(): void {
    if (this.timer) return;
    this.stopped = false;
    void this.runOnce();
    this.timer = setInterval(() => void this.runOnce(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and aborts checks in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    for (const abort of this.aborts) abort.abort(new Error('the service is stopping'));
    await this.round?.catch(() => {});
  }

  /** The last verdicts, by tenant then name. */
  latest(tenantId?: string): ConnectorCheckLine[] {
    return [...this.lines.values()]
      .filter((l) => tenantId === undefined || l.tenantId === tenantId)
      .sort((a, b) => (a.tenant ?? a.tenantId).localeCompare(b.tenant ?? b.tenantId) || a.name.localeCompare(b.name));
  }

  /** One round over every connector; a round already running is joined, not doubled. */
  runOnce(): Promise<void> {
    this.round ??= this.checkAll().finally(() => {
      this.round = null;
    });
    return this.round;
  }

  private async checkAll(): Promise<void> {
    let rows: Row[];
    try {
      ({ rows } = await this.q.query<Row>(
        'select c.id, c.type, c.name, c.tenant_id, t.name as tenant from connectors c left join tenants t on t.id = c.tenant_id order by c.created_at, c.id limit $1',
        [this.options.maxConnectors],
      ));
    } catch (err) {
      this.log.warn({ err }, 'listing connectors to check failed; the last verdicts stay');
      return;
    }
    const present = new Set(rows.map((r) => r.id));
    for (const id of this.lines.keys()) {
      if (!present.has(id)) {
        this.lines.delete(id);
        this.onGone(id);
      }
    }
    const queue = [...rows];
    const worker = async () => {
      for (let row = queue.shift(); row && !this.stopped; row = queue.shift()) await this.checkOne(row);
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.options.concurrency, queue.length)) }, worker));
  }

  private async checkOne(row: Row): Promise<void> {
    const abort = new AbortController();
    this.aborts.add(abort);
    const timeout = new Error(`no answer within ${this.options.timeoutMs} ms`);
    const timer = setTimeout(() => abort.abort(timeout), this.options.timeoutMs);
    let result: ConnectorCheck;
    try {
      const connector = await this.instanceOf(row.id);
      result = connector.check
        ? await raceAbort(connector.check(abort.signal), abort.signal)
        : { verdict: 'unchecked', reason: `the ${row.type} connector has no check` };
    } catch (err) {
      const error = toError(err);
      result = {
        verdict: 'failing',
        problem: abort.signal.aborted ? 'unreachable' : 'misconfigured',
        reason: `the check failed: ${abort.signal.aborted ? timeout.message : error.message}`,
      };
      if (!abort.signal.aborted) this.log.warn({ err: error, connectorId: row.id }, 'a connector check threw instead of answering');
    } finally {
      clearTimeout(timer);
      this.aborts.delete(abort);
    }
    if (this.stopped) return;
    let reason = result.reason;
    const cause = (result as CheckFailure).error;
    if (result.verdict === 'failing' && cause && this.options.quoteAnswers) {
      // The system's own words often name the cause ("Invalid API key"): kept short, only where allowed.
      const quoted = failureText(cause, { quoteAnswers: true });
      if (quoted.startsWith(`${cause.message}: `)) reason = `${reason} (answer: ${quoted.slice(cause.message.length + 2, cause.message.length + 202)})`;
    }
    const line: ConnectorCheckLine = {
      connectorId: row.id,
      name: row.name,
      type: row.type,
      tenantId: row.tenant_id,
      tenant: row.tenant,
      verdict: result.verdict,
      problem: result.verdict === 'failing' ? result.problem : null,
      reason: reason.replace(/\s+/g, ' ').slice(0, 600),
      checkedAt: new Date().toISOString(),
    };
    const before = this.lines.get(row.id);
    this.lines.set(row.id, line);
    if (line.verdict === 'failing' && (before?.verdict !== 'failing' || before.problem !== line.problem)) {
      this.log.warn({ connectorId: row.id, problem: line.problem }, `connector ${row.name} (${row.type}) fails its check: ${line.problem}: ${line.reason}`);
    }
    this.onLine(line);
  }
}

/** A check that ignores its signal still ends at the deadline. */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
