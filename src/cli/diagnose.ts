import { isIPv4 } from 'node:net';
import { cpuWaitShare, loopBusyCause } from '../resilience/loop-cause.js';

/**
 * `handover doctor`'s reasoning: from one scrape of `/metrics` and the `/status.json` verdict, the most
 * likely cause first, each with the numbers that point to it and the action to take. Pure, so recorded
 * states can be replayed in tests.
 *
 * Order matters: memory and CPU are checked before queueing, because a full heap or a busy event loop
 * also makes requests queue, and the queue is then a symptom, not the cause.
 */
export interface Finding {
  cause: string;
  evidence: string[];
  action: string;
}

export interface Diagnosis {
  healthy: boolean;
  findings: Finding[];
  /** Status components that are not operational, with their measured cause. */
  status: string[];
  /** One line per connector's setup check (with the admin token; else from metrics, by id). */
  checks: string[];
}

interface CheckLine {
  connectorId: string;
  name: string;
  type: string;
  tenant: string | null;
  tenantId: string;
  verdict: string;
  problem: string | null;
  reason: string;
  checkedAt: string;
}

interface StatusJson {
  status?: string;
  components?: Array<{ id: string; name: string; state: string; cause: string }>;
  checks?: CheckLine[];
}

/** What to do about each problem a connector's check can name. */
const CHECK_ACTIONS: Record<string, string> = {
  credentials_rejected: 'set valid credentials: PATCH /v1/admin/tenants/{tenantId}/connectors/{connectorId} with the new secret (other settings are kept)',
  not_found: 'correct the id the system does not know (account, app or inbox) in the connector config, or baseUrl if it points at the wrong account',
  misconfigured: 'correct the connector config as the reason says; the system refused it as configured',
  unreachable: "check baseUrl, DNS, the outbound policy and the system's status page; if it answers later, the next check clears this",
};

/** One sample of the Prometheus text exposition: `name{labels} value`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

export function diagnose(metricsText: string, status: StatusJson | null): Diagnosis {
  const samples = parseMetrics(metricsText);
  const get = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);
  const findings: Finding[] = [];
  const rejected = (cause: string) => get('handover_admission_rejections_total', { cause });

  // Without the database nothing else can be judged: it comes first.
  const database = status?.components?.find((c) => c.id === 'database');
  if (database && database.state === 'degraded') {
    findings.push({
      cause: 'Database busy',
      evidence: [database.cause],
      action:
        'the database is reachable but slow to give a connection or to answer → look at its CPU and its slowest statements, and at HANDOVER_DB_POOL_SIZE against its max_connections (docs/runbooks/handover-database-pool-exhausted.md); the instance stays ready and refuses only what finds no connection in time.',
    });
  } else if (database && database.state !== 'operational') {
    findings.push({
      cause: 'Database unreachable',
      evidence: [database.cause, `/readyz fails, so a balancer takes this instance out of rotation`],
      action:
        'check PostgreSQL (is it up, reachable from here, are the credentials right) → requests that need it are refused with database_unavailable; nothing accepted is lost, and the service reconnects by itself. More instances will not help.',
    });
  }

  const heapUsed = get('handover_heap_used_bytes');
  const heapLimit = get('handover_heap_limit_bytes');
  const heapRatio = heapLimit > 0 ? heapUsed / heapLimit : 0;
  if (heapRatio > 0.85 || rejected('memory') > 0) {
    findings.push({
      cause: `Memory: heap ${pct(heapRatio)} of its limit`,
      evidence: [`heap ${mib(heapUsed)} used of a ${mib(heapLimit)} limit`, `${rejected('memory')} requests refused with overloaded_memory since start`],
      action:
        'memory → find what grows (a heap snapshot of a copy under the same load); add instances to spread it; raise the heap limit only if the container has the memory. More CPU will not help.',
    });
  }

  const loopBusy = get('handover_event_loop_utilization_ratio');
  const loopDelay = get('handover_event_loop_delay_seconds');
  const loopCpu = samples.some((s) => s.name === 'handover_event_loop_cpu_ratio') ? get('handover_event_loop_cpu_ratio') : undefined;
  const loopSaturated = (loopBusy > 0.9 && loopDelay > 0.05) || loopDelay > 0.1 || rejected('event_loop') > 0;
  if (loopSaturated && loopBusyCause(loopBusy, loopCpu).starved) {
    findings.push({
      cause: `Short of CPU: event loop busy ${pct(loopBusy)}, its thread on a CPU only ${pct(loopCpu ?? 0)} of the time`,
      evidence: [
        `event-loop utilisation ${pct(loopBusy)}, of which its thread waited for a CPU ${pct(cpuWaitShare(loopBusy, loopCpu) ?? 0)}`,
        `event-loop delay ${ms(loopDelay * 1000)}`,
        `${rejected('event_loop')} requests refused with overloaded_event_loop since start`,
      ],
      action:
        "give this instance the CPU it is meant to have → its cores are shared with other busy processes or threads (a database on the same machine, other services), or its container's CPU quota is used up: raise the CPU request and limit, or move what shares its cores elsewhere. Instances added on the same cores will not help.",
    });
  } else if (loopSaturated) {
    findings.push({
      cause: `CPU-bound: event loop busy ${pct(loopBusy)}, timers ${ms(loopDelay * 1000)} late`,
      evidence: [
        `event-loop utilisation ${pct(loopBusy)}`,
        `event-loop delay ${ms(loopDelay * 1000)}`,
        `${rejected('event_loop')} requests refused with overloaded_event_loop since start`,
      ],
      action: 'add instances (CPU) → the load is more than this process can compute; memory and the database are not the cause.',
    });
  }

  const connectors = new Set(
    samples
      .filter((s) => s.name.startsWith('handover_connector_') || (s.name.startsWith('handover_outbox_') && s.labels.target === 'agent'))
      .map((s) => s.labels.connector_id ?? '')
      .filter(Boolean),
  );
  for (const id of connectors) {
    const circuit = get('handover_connector_circuit_state', { connector_id: id });
    const age = get('handover_outbox_oldest_pending_age_seconds', { target: 'agent', connector_id: id });
    const items = get('handover_outbox_backlog_items', { target: 'agent', connector_id: id });
    const calls = get('handover_connector_call_duration_seconds_count', { connector_id: id });
    const failed = calls - get('handover_connector_call_duration_seconds_count', { connector_id: id, outcome: 'ok' });
    const p99 = quantile(samples, 'handover_connector_call_duration_seconds_bucket', { connector_id: id }, 0.99);
    const slow = get('handover_connector_slow', { connector_id: id }) === 1;
    if (circuit < 2 && age <= 60 && !slow) continue;
    const name = statusName(status, id) ?? id;
    if (circuit < 2 && slow) {
      // Answering, but slower than its objective: the window's figures, against what is normal for it.
      const windowP99 = samples.find((s) => s.name === 'handover_connector_window_call_p99_seconds' && s.labels.connector_id === id)?.value;
      const normal = samples.find((s) => s.name === 'handover_connector_normal_call_p99_seconds' && s.labels.connector_id === id)?.value;
      const lag = samples.find((s) => s.name === 'handover_connector_window_lag_p99_seconds' && s.labels.connector_id === id)?.value;
      findings.push({
        cause: `Helpdesk ${name} slow: calls take ${windowP99 === undefined ? 'n/a' : ms(windowP99 * 1000)} at p99${normal === undefined ? '' : `, normally ${ms(normal * 1000)}`}`,
        evidence: [
          `calls p99 ${windowP99 === undefined ? 'n/a' : ms(windowP99 * 1000)} over the latency window${normal === undefined ? '' : ` (normally ${ms(normal * 1000)})`}`,
          `messages reach it ${lag === undefined ? 'n/a' : ms(lag * 1000)} late at p99`,
          `${items} items waiting, oldest ${sec(age)}`,
        ],
        action: `check ${name} (its status page, rate limits, its own load) → bots are told it is degraded (cause slow) unless it is set to be offered while slow; messages wait in order and go out as it answers. Nothing in this service is short of capacity.`,
      });
      continue;
    }
    findings.push({
      cause: `Helpdesk ${name} slow or failing: ${circuit === 2 ? 'circuit open' : `backlog ${sec(age)} old`}`,
      evidence: [
        `circuit ${circuit === 2 ? 'open' : circuit === 1 ? 'half-open' : 'closed'}`,
        `calls p99 ${p99 === null ? 'n/a' : ms(p99 * 1000)}, ${failed} of ${calls} failed since start`,
        `${items} items waiting, oldest ${sec(age)}`,
      ],
      action: `check ${name} (its status, credentials, rate limits) → bots are told it is degraded and new handovers to it are refused; accepted work waits in order and is delivered when it answers.`,
    });
  }

  const poolWaiting = get('db_client_connection_pending_requests');
  const poolUsed = get('db_client_connection_count', { state: 'used' });
  const poolMax = get('db_client_connection_max');
  if (poolWaiting > 0 && poolMax > 0 && poolUsed >= poolMax) {
    findings.push({
      cause: `Database: every connection busy, ${poolWaiting} waiting`,
      evidence: [`${poolUsed} of ${poolMax} connections in use`, `${poolWaiting} callers waiting for one`],
      action: 'check the database (slow statements, locks) before adding instances: more instances means more connections.',
    });
  }

  const inflight = get('http_server_active_requests');
  const limit = get('handover_admission_limit');
  const waiting = get('handover_admission_waiting');
  const queued = rejected('queue_wait');
  const queueStatus = statusCause(status, 'bot_api');
  if (findings.length === 0 && (waiting > 0 || (limit > 0 && inflight >= limit) || (queueStatus && /queue for a slot/.test(queueStatus)))) {
    findings.push({
      cause: `At capacity: requests queue for a slot`,
      evidence: [`in flight ${inflight} at a limit of ${limit}, ${waiting} waiting`, `${queued} requests refused with overloaded_queue_wait since start`],
      action: 'add instances → nothing else is saturated, so this is plain load.',
    });
  }

  const botCalls = get('handover_bot_webhook_call_duration_seconds_count');
  const botFailed = botCalls - get('handover_bot_webhook_call_duration_seconds_count', { outcome: 'ok' });
  const botAge = get('handover_outbox_oldest_pending_age_seconds', { target: 'bot' });
  if (botCalls >= 10 && botFailed / botCalls > 0.5 && botAge > 60) {
    findings.push({
      cause: 'Bot webhooks failing',
      evidence: [`${botFailed} of ${botCalls} webhook calls to bots failed since start`, `oldest undelivered bot event ${sec(botAge)} old`],
      action: "check the bots' webhook endpoints (and their secrets); events stay readable on the SSE stream meanwhile.",
    });
  }

  // Each connector's own setup check: a broken one is found before its first handover.
  const checks: string[] = [];
  // The public status counts checks (an object); the admin one lists them.
  if (Array.isArray(status?.checks)) {
    for (const c of status.checks) {
      const who = `${c.name} (${c.type}, tenant ${c.tenant ?? c.tenantId}, ${c.connectorId})`;
      const when = `checked ${c.checkedAt.replace('T', ' ').slice(0, 19)} UTC`;
      checks.push(
        `${c.verdict === 'ok' ? '✓' : c.verdict === 'failing' ? '✗' : '·'} ${who}: ${c.verdict === 'failing' ? `${c.problem} — ` : c.verdict === 'unchecked' ? 'not checkable — ' : ''}${c.reason} (${when})`,
      );
      if (c.verdict !== 'failing') continue;
      findings.push({
        cause: `Helpdesk ${who} fails its setup check: ${c.problem}`,
        evidence: [c.reason, when],
        action: `${CHECK_ACTIONS[c.problem ?? ''] ?? CHECK_ACTIONS.misconfigured} → until then every handover to it fails.`,
      });
    }
  } else {
    // Without the admin token: the metrics say which connector fails, not why.
    for (const s of samples.filter((x) => x.name === 'handover_connector_check_ok')) {
      const id = s.labels.connector_id ?? '';
      checks.push(`${s.value === 1 ? '✓' : '✗'} ${id} (${s.labels.connector_type ?? '?'}): ${s.value === 1 ? 'ok' : 'failing'}`);
      if (s.value === 1) continue;
      findings.push({
        cause: `Helpdesk ${statusName(status, id) ?? id} (${s.labels.connector_type ?? '?'}) fails its setup check`,
        evidence: ['handover_connector_check_ok is 0'],
        action:
          'run the doctor with the admin token (or read /status.json with it) for the named problem and the reason → until fixed, every handover to it fails.',
      });
    }
  }

  const troubled = (status?.components ?? []).filter((c) => c.state !== 'operational').map((c) => c.cause);
  return { healthy: findings.length === 0 && troubled.length === 0, findings, status: troubled, checks };
}

/** The printed report. */
export function formatDiagnosis(base: string, d: Diagnosis): string {
  const checks = d.checks.length > 0 ? ['Connector checks:', ...d.checks.map((c) => `  ${c}`)] : [];
  if (d.healthy) return [`✓ ${base} is up, ready and healthy: nothing saturated, every component operational.`, ...checks].join('\n');
  const lines = [`✗ ${base} is unhealthy.`];
  if (d.findings.length === 0) lines.push('  The status page reports trouble the metrics do not explain yet:');
  d.findings.forEach((f, i) => {
    lines.push(`${i === 0 ? 'Most likely' : 'Also'}: ${f.cause}`);
    for (const e of f.evidence) lines.push(`  - ${e}`);
    lines.push(`  → ${f.action}`);
  });
  if (d.status.length > 0) {
    lines.push('Status page:');
    for (const s of d.status) lines.push(`  - ${s}`);
  }
  lines.push(...checks);
  return lines.join('\n');
}

function quantile(samples: Sample[], name: string, labels: Record<string, string>, q: number): number | null {
  const buckets = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== name || !Object.entries(labels).every(([k, v]) => s.labels[k] === v)) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    buckets.set(le, (buckets.get(le) ?? 0) + s.value);
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total === 0) return null;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of sorted) {
    if (count >= q * total) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (q * total - prevCount)) / Math.max(1, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

function statusName(status: StatusJson | null, connectorId: string): string | undefined {
  return status?.components?.find((c) => c.id === `connector:${connectorId}`)?.name.replace(/^Helpdesk /, '');
}

function statusCause(status: StatusJson | null, id: string): string | undefined {
  const c = status?.components?.find((x) => x.id === id);
  return c && c.state !== 'operational' ? c.cause : undefined;
}

function pct(ratio: number): string {
  return `${Math.round(ratio * 100)}%`;
}

function ms(value: number): string {
  return value >= 1000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
}

function sec(seconds: number): string {
  return seconds >= 120 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds)} s`;
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MiB`;
}

/** Whether a credential may be sent to `target`: over https, to a loopback address, or to the configured URL. */
export function mayCarryTokens(target: string, configured: string): boolean {
  try {
    const url = new URL(target);
    if (url.protocol === 'https:') return true;
    if (['localhost', '[::1]'].includes(url.hostname) || (isIPv4(url.hostname) && url.hostname.startsWith('127.'))) return true;
    return url.origin === new URL(configured).origin;
  } catch {
    return false;
  }
}
