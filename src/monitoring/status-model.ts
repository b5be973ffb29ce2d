import type { WindowSummary } from '../telemetry/request-window.js';
import type { LatencyVerdict } from '../resilience/connector-latency.js';
import { loopBusyCause } from '../resilience/loop-cause.js';

/**
 * Judges each component of the status page from live signals, and says why in one sentence with the
 * measured numbers. Pure: the signals come in, the verdicts go out, so the rules are easy to read and
 * to test. States follow public status pages: operational < degraded < partial outage < major outage.
 */
export const componentStates = ['operational', 'degraded', 'partial_outage', 'major_outage'] as const;
export type ComponentState = (typeof componentStates)[number];

export interface ComponentStatus {
  id: string;
  name: string;
  state: ComponentState;
  /** One sentence naming the cause with its numbers (shown with the admin token). */
  cause: string;
  /** The same without numbers or internals (public). */
  publicCause: string;
}

export interface StatusSignals {
  windowSeconds: number;
  api: WindowSummary;
  desk: WindowSummary;
  admission: { inflight: number; limit: number; waiting: number };
  eventLoopDelayMs: number;
  eventLoopUtilization: number;
  /** Share of the window the loop's thread ran on a CPU; absent where the OS does not say. */
  eventLoopCpuShare?: number;
  heap: { usedBytes: number; limitBytes: number };
  dbWaiting: number;
  backlog: Array<{ target: 'agent' | 'bot'; connectorId: string; items: number; oldestSeconds: number; growthPerSecond?: number }>;
  connectors: Array<{ id: string; name: string; circuit: 'closed' | 'half_open' | 'open'; latency?: LatencyVerdict; check?: FailingCheck }>;
  /** Whether the database answered this round's check; absent when not checked. */
  /** `busy`: reachable, but no connection came free in time or the server timed a statement out. */
  database?: { ok: boolean; code?: string; message?: string; busy?: boolean };
  /** Live signals between instances; absent when the instance runs alone (in-process bus). */
  bus?: { connected: boolean; since: Date; lastError?: string; pollMs: number };
}

/** The connector's last setup check failed (src/connectors/connector-checks.ts). */
export interface FailingCheck {
  problem: string;
  reason: string;
  checkedAt: string;
}

export interface StatusThresholds {
  latencyTargetMs: number;
  eventLoopDelayLimitMs: number;
  heapUsedLimitRatio: number;
  backlogAgeTargetSeconds: number;
}

/** Fewest requests in the window for a latency or failure-ratio verdict. */
export const MIN_EVIDENCE = 20;
/** Server errors that make a verdict however few the requests. */
const MIN_FAILURES = 5;

export function worst(states: ComponentState[]): ComponentState {
  let index = 0;
  for (const s of states) index = Math.max(index, componentStates.indexOf(s));
  return componentStates[index]!;
}

export function judgeComponents(s: StatusSignals, t: StatusThresholds): ComponentStatus[] {
  const components = [judgeApi('bot_api', 'Bot API', s.api, s, t), judgeDelivery(s, t), judgeApi('desk', 'Desk', s.desk, s, t)];
  for (const c of s.connectors) components.push(judgeConnector(c, s, t));
  if (s.database) components.push(judgeDatabase(s.database));
  if (s.bus) components.push(judgeBus(s.bus));
  return components;
}

/** Without the database nothing can be accepted or delivered; what was accepted is in it, not lost. */
function judgeDatabase(db: NonNullable<StatusSignals['database']>): ComponentStatus {
  const base = { id: 'database', name: 'Database' };
  if (db.ok) return { ...base, state: 'operational', cause: 'Database reachable.', publicCause: 'Operational.' };
  // There, but busy: the check itself waited its bound for a connection, or its statement timed out.
  if (db.busy === true)
    return {
      ...base,
      state: 'degraded',
      cause: `Database busy (${db.code}): ${db.message ?? 'no answer in time'} — it is reachable, but ${db.code === 'database_pool_exhausted' ? "every connection of this instance's pool stayed in use for the pool's wait" : 'a statement ran past its timeout'}; requests that find no connection in time are refused with 503 ${db.code} and the rest are served. Runbook: docs/runbooks/handover-database-pool-exhausted.md.`,
      publicCause: 'The database is slow to answer; some requests are refused, retry after a moment.',
    };
  return {
    ...base,
    state: 'major_outage',
    cause: `Database unreachable (${db.code ?? 'error'}): ${db.message ?? 'no answer'} — requests that need it are refused with 503 ${db.code ?? 'database_unavailable'}; nothing accepted is lost, and the service reconnects by itself.`,
    publicCause: 'The service cannot reach its database; requests are refused until it can.',
  };
}

/** Redis away loses no data (everything is re-read from the database) but live views lag: degraded. */
function judgeBus(bus: NonNullable<StatusSignals['bus']>): ComponentStatus {
  const base = { id: 'live_updates', name: 'Live updates between instances' };
  if (bus.connected)
    return {
      ...base,
      state: 'operational',
      cause: 'Redis reachable: events reach streams and consoles on every instance at once.',
      publicCause: 'Operational.',
    };
  return {
    ...base,
    state: 'degraded',
    cause: `Redis unreachable since ${bus.since.toISOString()}${bus.lastError ? ` (${bus.lastError})` : ''}: streams, consoles and workers re-read the database every ${fmtMs(bus.pollMs)} instead; nothing is lost, live views lag by up to that much.`,
    publicCause: 'Live updates may arrive a few seconds late.',
  };
}

function judgeApi(id: string, name: string, w: WindowSummary, s: StatusSignals, t: StatusThresholds): ComponentStatus {
  const window = `in the last ${fmtSeconds(s.windowSeconds)}`;
  const refused = w.rejections;
  // Refusals are 5xx answers too; the rest of the 5xx are failures of the service itself.
  const failures = Math.max(0, w.serverErrors - refused);
  const heapRatio = s.heap.limitBytes > 0 ? s.heap.usedBytes / s.heap.limitBytes : 0;
  // A percentile or a ratio of a handful of requests is one person's clicks, not a verdict: latency and
  // failure ratios are judged from MIN_EVIDENCE requests (failures also from MIN_FAILURES, however few
  // the requests). Refusals are judged at once: each one is a request the service turned away.
  const enough = w.requests >= MIN_EVIDENCE;
  const slow = enough && w.p95Ms > t.latencyTargetMs;
  const latency = `p95 ${fmtMs(w.p95Ms)} against a ${fmtMs(t.latencyTargetMs)} target`;

  if ((enough || failures >= MIN_FAILURES) && w.requests > 0 && failures / w.requests > 0.05) {
    const state = failures / w.requests > 0.5 ? 'major_outage' : 'partial_outage';
    return {
      id,
      name,
      state,
      cause: `${name} ${label(state)}: ${failures} of ${w.requests} requests ${window} failed with a server error; ${latency}.`,
      publicCause: 'Requests are failing.',
    };
  }
  const cause = loadCause(w, s, t, heapRatio);
  if (refused > 0) {
    const state = refused / Math.max(1, w.requests) > 0.5 ? 'partial_outage' : 'degraded';
    return {
      id,
      name,
      state,
      cause: `${name} ${label(state)}: ${refused} of ${w.requests} requests ${window} refused — ${cause.text}; ${latency}.`,
      publicCause: `${state === 'degraded' ? 'Some' : 'Most'} requests are refused: ${cause.publicText}.`,
    };
  }
  if (slow)
    return {
      id,
      name,
      state: 'degraded',
      cause: `${name} degraded: ${latency}; ${cause.text}.`,
      publicCause: `Responses are slower than usual: ${cause.publicText}.`,
    };
  // Without refusals or slow answers, only sustained pressure (heap, event loop) degrades: a moment of
  // pool or slot contention is normal work.
  if (cause.kind === 'memory' || cause.kind === 'event_loop')
    return { id, name, state: 'degraded', cause: `${name} degraded: ${cause.text}; ${latency}.`, publicCause: `Under pressure: ${cause.publicText}.` };
  return {
    id,
    name,
    state: 'operational',
    cause: enough
      ? `${name} operational: ${w.requests} requests ${window}, ${latency}.`
      : `${name} operational: ${w.requests} requests ${window}, too few to judge latency (p95 ${fmtMs(w.p95Ms)}; judged from ${MIN_EVIDENCE}).`,
    publicCause: 'Operational.',
  };
}

/** The most likely reason requests are slow or refused, in the order admission control checks them. */
function loadCause(w: WindowSummary, s: StatusSignals, t: StatusThresholds, heapRatio: number): { kind: string; text: string; publicText: string } {
  const by = w.rejectionsByCause;
  if ((by.memory ?? 0) > 0 || heapRatio > t.heapUsedLimitRatio - 0.05) {
    return {
      kind: 'memory',
      text: `heap ${fmtBytes(s.heap.usedBytes)} used of a ${fmtBytes(s.heap.limitBytes)} limit (${Math.round(100 * heapRatio)} %, refusing above ${Math.round(100 * t.heapUsedLimitRatio)} %)`,
      publicText: 'the service is near its memory limit',
    };
  }
  if ((by.event_loop ?? 0) > 0 || s.eventLoopDelayMs > t.eventLoopDelayLimitMs / 2) {
    return {
      kind: 'event_loop',
      text: `event-loop delay ${fmtMs(s.eventLoopDelayMs)} (limit ${fmtMs(t.eventLoopDelayLimitMs)}), loop busy ${Math.round(100 * s.eventLoopUtilization)} %: ${loopBusyCause(s.eventLoopUtilization, s.eventLoopCpuShare, 'the instance').text}`,
      publicText: 'the service is short of CPU',
    };
  }
  if ((by.queue_wait ?? 0) + (by.queue_full ?? 0) > 0 || s.admission.waiting > 0 || s.admission.inflight >= s.admission.limit) {
    return {
      kind: 'queue_wait',
      text: `requests queue for a slot — in-flight ${s.admission.inflight} at a limit of ${s.admission.limit}, ${s.admission.waiting} waiting${s.dbWaiting > 0 ? `, ${s.dbWaiting} waiting for a database connection` : ''}`,
      publicText: 'the service is at capacity',
    };
  }
  if ((by.shutting_down ?? 0) > 0) return { kind: 'shutting_down', text: 'an instance is shutting down', publicText: 'an instance is restarting' };
  if (s.dbWaiting > 0) return { kind: 'database', text: `${s.dbWaiting} requests wait for a database connection`, publicText: 'the database is busy' };
  return { kind: 'none', text: 'no saturation measured (handlers themselves are slow)', publicText: 'slow processing' };
}

function judgeDelivery(s: StatusSignals, t: StatusThresholds): ComponentStatus {
  const name = 'Delivery';
  const oldest = s.backlog.reduce<(typeof s.backlog)[number] | null>((a, b) => (!a || b.oldestSeconds > a.oldestSeconds ? b : a), null);
  const items = s.backlog.reduce((n, b) => n + b.items, 0);
  if (!oldest || oldest.oldestSeconds <= t.backlogAgeTargetSeconds) {
    return {
      id: 'delivery',
      name,
      state: 'operational',
      cause: `Delivery operational: ${items} items pending, oldest ${fmtSeconds(oldest?.oldestSeconds ?? 0)} (target ${fmtSeconds(t.backlogAgeTargetSeconds)}).`,
      publicCause: 'Operational.',
    };
  }
  const state: ComponentState = oldest.oldestSeconds > 10 * t.backlogAgeTargetSeconds ? 'major_outage' : 'degraded';
  const side = oldest.target === 'bot' ? "the bots' webhooks" : `connector ${oldest.connectorId}`;
  return {
    id: 'delivery',
    name,
    state,
    cause: `Delivery ${label(state)}: the oldest undelivered item (towards ${side}) is ${fmtSeconds(oldest.oldestSeconds)} old against a ${fmtSeconds(t.backlogAgeTargetSeconds)} target; ${items} items pending.`,
    publicCause: 'Messages are delivered late; none are lost.',
  };
}

function judgeConnector(c: StatusSignals['connectors'][number], s: StatusSignals, t: StatusThresholds): ComponentStatus {
  const backlog = s.backlog.find((b) => b.target === 'agent' && b.connectorId === c.id);
  const age = backlog?.oldestSeconds ?? 0;
  const pending = `${backlog?.items ?? 0} items pending, oldest ${fmtSeconds(age)}`;
  const id = `connector:${c.id}`;
  const name = `Helpdesk ${c.name}`;
  if (c.circuit === 'open') {
    return {
      id,
      name,
      state: 'partial_outage',
      cause: `${name} partial outage: its circuit is open after repeated failures — calls paused, bots are told it is degraded; ${pending}.`,
      publicCause: 'The helpdesk is not answering; new handovers to it are paused.',
    };
  }
  // Its own check says the setup is wrong: handovers to it cannot work until someone fixes it (no
  // answer at all may pass by itself, so it only degrades).
  if (c.check) {
    const state: ComponentState = c.check.problem === 'unreachable' ? 'degraded' : 'partial_outage';
    return {
      id,
      name,
      state,
      cause: `${name} fails its setup check (${c.check.problem}, checked ${c.check.checkedAt.replace('T', ' ').slice(0, 19)} UTC): ${c.check.reason}; ${pending}.`,
      publicCause:
        state === 'degraded'
          ? 'The helpdesk does not answer its setup check; handovers to it may fail.'
          : 'The helpdesk connection is set up wrongly; handovers to it fail until it is fixed.',
    };
  }
  // Answering, but slower than its objective: named with what was measured and what is normal.
  if (c.latency?.slow) {
    const l = c.latency;
    const calls =
      l.callP99Ms === null
        ? ''
        : `calls take ${fmtMs(l.callP99Ms)} at p99${l.normalCallP99Ms !== null ? `, normally ${fmtMs(l.normalCallP99Ms)}` : ''} (objective ${fmtMs(l.objective.callP99Ms)})`;
    const lag = l.lagP99Ms === null ? '' : `messages reach agents ${fmtMs(l.lagP99Ms)} late at p99`;
    const growth = backlog?.growthPerSecond !== undefined && backlog.growthPerSecond > 0 ? `, growing ${backlog.growthPerSecond}/s` : '';
    const waiting = `${backlog?.items ?? 0} waiting${growth}`;
    const offered = l.objective.offerWhileSlow ? 'still offered to bots (set so)' : 'bots are told it is degraded (cause slow)';
    return {
      id,
      name,
      state: age > 10 * t.backlogAgeTargetSeconds ? 'major_outage' : 'degraded',
      cause: `${name} is slow: ${[calls, lag, waiting].filter(Boolean).join('; ')}; ${offered}.`,
      publicCause: 'The helpdesk answers slowly; messages to it are delayed.',
    };
  }
  if (age > 10 * t.backlogAgeTargetSeconds)
    return {
      id,
      name,
      state: 'major_outage',
      cause: `${name} major outage: ${pending} (target ${fmtSeconds(t.backlogAgeTargetSeconds)}).`,
      publicCause: 'Messages to the helpdesk are far behind.',
    };
  if (c.circuit === 'half_open' || age > t.backlogAgeTargetSeconds) {
    return {
      id,
      name,
      state: 'degraded',
      cause: `${name} degraded: ${c.circuit === 'half_open' ? 'recovering (a trial call is out after failures); ' : ''}${pending} (target ${fmtSeconds(t.backlogAgeTargetSeconds)}).`,
      publicCause: 'Messages to the helpdesk are delayed.',
    };
  }
  return { id, name, state: 'operational', cause: `${name} operational: ${pending}.`, publicCause: 'Operational.' };
}

export function label(state: ComponentState): string {
  return state.replace('_', ' ');
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

function fmtSeconds(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function fmtBytes(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${Math.round(bytes / 1024 ** 2)} MiB`;
}
