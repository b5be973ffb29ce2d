import { AsyncResource } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/config.js';
import type { Db, Queryable } from '../store/db.js';
import type { Bus } from '../bus/bus.js';
import type { Logger } from '../telemetry/logger.js';
import { DeliveryError } from '../connectors/connector.js';
import { failureText } from '../connectors/connector-helpers.js';
import { ArrayMap, ArraySet } from '../resilience/churn-free.js';
import { toError } from '../resilience/errors.js';
import type { ConnectorHealth } from '../resilience/circuit-breaker.js';
import { retryDelayMs } from './backoff.js';
import type { OutboxRow, OutboxTarget } from './outbox.js';
import { CompletionRecorder } from './completions.js';
import type { HandedLane, HandoffSink, LaneHandoff } from './lane-handoff.js';
import { claimLanes, readLane, reclaimLane, type ClaimedLane } from './claim-lanes.js';
import { inSpan, SpanKind, SpanStatusCode } from '../telemetry/tracing.js';

export type { OutboxRow };

/** Told about every attempt, for metrics; must not throw or block. */
export interface DeliveryObserver {
  attempted(row: OutboxRow, outcome: 'ok' | 'retry' | 'failed', seconds: number): void;
}

export interface Deliverer {
  /** Performs one item. May return a change to record with the success (in the same transaction). */
  deliver(row: OutboxRow, signal: AbortSignal): Promise<{ externalRef?: string } | void>;
  /** Called once an item is given up, after its state is recorded. */
  onGiveUp(row: OutboxRow, error: Error): Promise<void>;
}

export interface WorkerOptions {
  db: Db;
  /** Where wake-ups for new outbox work arrive (channel `outbox`). */
  bus: Pick<Bus, 'subscribe'>;
  log: Logger;
  instanceId: string;
  concurrency: number;
  leaseMs: number;
  timeoutMs: number;
  pollIntervalMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  deliverers: Record<OutboxTarget, Deliverer>;
  /** Circuits and bulkheads per connector: a slow or failing system holds only its own share. */
  health: ConnectorHealth;
  /**
   * Whether a failure's stored and logged text may quote what the remote side answered (which may
   * echo message text); false with HANDOVER_REDACT_CONTENT.
   */
  quoteAnswers: boolean;
  observer?: DeliveryObserver;
  /** Where the accept path hands this instance's freshly written lanes (absent: claims only). */
  handoff?: LaneHandoff;
  /** Told the number of lanes in work each time it changes (the delivery thread reports it). */
  onRunsChanged?: (runs: number) => void;
}

/** The worker's settings, as configured (HANDOVER_DELIVERY_*; HANDOVER_REDACT_CONTENT). */
export function workerSettings(
  config: Config,
): Pick<WorkerOptions, 'concurrency' | 'leaseMs' | 'timeoutMs' | 'pollIntervalMs' | 'retryBaseMs' | 'retryMaxMs' | 'quoteAnswers'> {
  const { concurrency, leaseMs, timeoutMs, pollIntervalMs, retryBaseMs, retryMaxMs } = config.delivery;
  return { concurrency, leaseMs, timeoutMs, pollIntervalMs, retryBaseMs, retryMaxMs, quoteAnswers: !config.redactContent };
}

export interface DeliveryWorker {
  /** Stops claiming; lets lanes in flight finish their current item within `graceMs`, then aborts them. */
  stop(options: { graceMs: number }): Promise<void>;
}

interface LaneRun {
  lane: string;
  connectorId: string | null;
  /** Items known to be pending, by seq; more may be in the outbox (read when the next is not here). */
  buffer: Map<number, OutboxRow>;
  /** The seq to deliver next; 0: unknown, read the outbox first. */
  nextSeq: number;
  /** Giving the lane back: items handed now go to `late`, and a new run takes them after. */
  releasing: boolean;
  late: OutboxRow[];
  /**
   * Leased again while being given back (a claim landed after the release): take it again after; or,
   * once the worker is stopping, give it back again after.
   */
  relet: boolean;
  /**
   * Counted in its connector's bulkhead (ConnectorHealth): from its start while it may call the
   * connector, not while it waits for its completions to be written and its lane given back.
   */
  inBulkhead: boolean;
}

/**
 * Delivers each lane's items strictly in order: an item that fails stops its lane until its retry is
 * due, so nothing overtakes it. Lanes come from two places: a claim (a lease taken with SKIP LOCKED,
 * the lane's first items read in the same round trip) and the accept path's handoff (items this
 * instance just wrote to an idle lane, leased in the same statement — see LaneHandoff). Successes are
 * recorded in batches (CompletionRecorder); failures one by one, with their attempt row.
 */
export function startDeliveryWorker(options: WorkerOptions): DeliveryWorker {
  const { db, log } = options;
  // One of each per lane run or attempt, so in arrays, not a Map or Set (resilience/churn-free.ts).
  const runs = new ArrayMap<LaneRun>();
  const tasks = new ArraySet<Promise<void>>();
  /** Each attempt under way, aborted at its timeout or when the instance stops waiting for it. */
  const attempts = new ArraySet<AbortController>();
  let stopReason: Error | undefined;
  const completions = new CompletionRecorder(db, options.instanceId, log);
  let stopping = false;
  let wakeUp: (() => void) | null = null;
  /** A wake-up came while a claim was running: claim again at once rather than sleep through it. */
  let wokenDuringClaim = false;
  const wake = () => {
    if (wakeUp) wakeUp();
    else wokenDuringClaim = true;
  };
  /**
   * Whether a claim may find work as soon as a run ends: the last claim found lanes (there may be more
   * than it took), or skipped connectors (circuit open, bulkhead full), or none ran because every run was
   * busy, or a run gave its lane back with items perhaps left (its time slice ended, it failed), or its
   * walk of lanes with pending items stopped at its bound (claim-lanes.ts) before it had looked at them all.
   * Otherwise work the accept path could not hand over announces itself by a wake-up, and a lane put
   * back until later wakes the loop when it is due (`wakeWhenDue`; work of other instances by their
   * wake-ups, and the poll is the safety net): a run's end alone is no reason to query the outbox, and
   * claiming at every run's end cost a query a message under load, on every instance, that almost always
   * found nothing (docs/performance.md, "Claims when there is something to claim").
   */
  let claimOwed = true;
  /** Where the next claim's walk of lanes with pending items starts (claim-lanes.ts): after this lane. */
  let walkFrom = '';
  /**
   * Claims made one after another, each going on where the last one's walk stopped, until every lane
   * with pending items has been looked at: `wrapped` once the chain has walked on from the first lane
   * (it started there, or came back to it after the last). A chain wraps at most once, so it ends
   * however many lanes there are and however few of them can be claimed; it is not a loop.
   */
  let chain: { wrapped: boolean } | null = null;
  /**
   * When lanes put back until later (a retry, a deferral) come due, in order, each rounded up to the next
   * 10 ms so that lanes due together share one wake-up; one timer for the earliest. Each due time wakes
   * the claim loop with a claim owed.
   */
  const dueTimes: number[] = [];
  let dueTimer: NodeJS.Timeout | null = null;
  const armDueTimer = () => {
    if (dueTimer) clearTimeout(dueTimer);
    dueTimer = null;
    if (stopping || dueTimes.length === 0) return;
    dueTimer = setTimeout(
      () => {
        dueTimer = null;
        const now = Date.now();
        let passed = 0;
        while (passed < dueTimes.length && dueTimes[passed]! <= now) passed++;
        dueTimes.splice(0, passed);
        // A timer may fire a millisecond early: then it only waits again.
        if (passed > 0) {
          claimOwed = true;
          wake();
        }
        armDueTimer();
      },
      Math.max(0, dueTimes[0]! - Date.now()),
    );
    dueTimer.unref();
  };
  const wakeWhenDue = (ms: number) => {
    if (stopping) return;
    const at = Math.ceil((Date.now() + ms) / 10) * 10;
    let i = dueTimes.length;
    while (i > 0 && dueTimes[i - 1]! > at) i--;
    if (dueTimes[i - 1] === at) return;
    dueTimes.splice(i, 0, at);
    if (i === 0) armDueTimer();
  };
  const unsubscribe = options.bus.subscribe('outbox', wake);

  // Lanes handed by the accept path arrive inside a request's async context: its deadline, its trace.
  // A lane's run outlives that request, so it starts in the worker's own context instead; otherwise
  // its queries would be refused once the request's deadline passed.
  const adoptHanded = AsyncResource.bind((lanes: HandedLane[]) => {
    for (const handed of lanes)
      adopt({ lane: handed.lane, connectorId: handed.connectorId, items: handed.items, nextSeq: handed.wasIdle ? handed.items[0]!.seq : 0 });
  });
  const sink: HandoffSink = {
    hasRoom: () => !stopping && runs.size < options.concurrency,
    blocked: () => options.health.blocked(),
    take: adoptHanded,
    giveBack(lanes) {
      for (const { lane } of lanes) {
        const run = runs.get(lane);
        // A run still holding it gives it back as it ends (again, if its own release came first).
        if (run) run.relet = true;
        // (Once the worker has stopped, its completions are closed: the lease is left to run out.)
        else void completions.release(lane);
      }
    },
  };
  options.handoff?.attach(sink);

  /**
   * A lane just leased to this instance (by a claim or by the accept path), with items: joins the run
   * already working on it, or waits for the one giving it back, or starts a run.
   */
  function adopt(spec: { lane: string; connectorId: string | null; items: OutboxRow[]; nextSeq: number }): void {
    const run = runs.get(spec.lane);
    // Giving the lane back right now: its release may land before or after this lease; take the
    // lane again once it is done (reclaiming it only if nobody else took it meanwhile).
    if (run?.releasing) {
      run.late.push(...spec.items);
      run.relet = true;
    } else if (run) {
      // One already delivered here (a copy handed after the run read it) is not taken again.
      for (const item of spec.items) if (run.nextSeq === 0 || item.seq >= run.nextSeq) run.buffer.set(item.seq, item);
    } else if (!stopping) start(spec, true);
    // A claim that came back as the worker began to stop: given back before the stop's last write.
    else void completions.release(spec.lane);
  }

  /**
   * `leased`: the lane is this instance's already (else it is taken back first). Apart from the spec, so
   * that a spec handed in is used as it is (spreading it into a new object with one more field made a
   * new hidden class per lane adopted, about 1 µs each in the delivery thread).
   */
  function start(spec: { lane: string; connectorId: string | null; items: OutboxRow[]; nextSeq: number }, leased: boolean): void {
    const run: LaneRun = {
      lane: spec.lane,
      connectorId: spec.connectorId,
      buffer: new Map(spec.items.map((i) => [i.seq, i])),
      nextSeq: spec.nextSeq,
      releasing: false,
      late: [],
      relet: false,
      inBulkhead: false,
    };
    runs.set(run.lane, run);
    enterBulkhead(run);
    options.onRunsChanged?.(runs.size);
    const task: Promise<void> = (leased ? processLane(run) : reclaimThenProcess(run))
      .catch((err) => log.error({ err, lane: run.lane }, 'outbox lane failed'))
      .finally(() => {
        tasks.delete(task);
      });
    tasks.add(task);
  }

  async function reclaimThenProcess(run: LaneRun): Promise<void> {
    let reclaimed: boolean;
    try {
      reclaimed = await reclaimLane(db, run.lane, options.instanceId, options.leaseMs);
    } catch (err) {
      // The run ends all the same (it holds a slot); its items are in the outbox for the next claim.
      log.warn({ err, lane: run.lane }, 'taking a lane back failed; it is left to a claim');
      claimOwed = true;
      reclaimed = false;
    }
    if (reclaimed) return processLane(run);
    // Another instance holds it (or its retry is not due): it is theirs; the items are in the outbox.
    finish(run);
  }

  /**
   * A lane's run holds a slot of its connector's bulkhead while it may call the connector. It gives the
   * slot up while it waits for its lane's release: that wait is on this instance's database, not on
   * the connector, and one slow system's share is what the bulkhead bounds. Counted in the slot, those
   * waits (a completion batch's turn on the embedded store's one connection, and its statement) filled
   * the bulkhead for a healthy helpdesk under load, and lanes that could have been handed to the worker
   * as they were accepted waited for claims instead (docs/performance.md, "Bulkhead slots held by
   * releases").
   */
  function enterBulkhead(run: LaneRun): void {
    if (!run.connectorId || run.inBulkhead) return;
    run.inBulkhead = true;
    options.health.laneStarted(run.connectorId);
  }

  function leaveBulkhead(run: LaneRun): void {
    if (!run.connectorId || !run.inBulkhead) return;
    run.inBulkhead = false;
    options.health.laneEnded(run.connectorId);
  }

  /** Whether the run's connector has a bulkhead slot free for it (always, for a lane of no connector). */
  function bulkheadHasRoom(run: LaneRun): boolean {
    return !run.connectorId || options.health.hasRoom(run.connectorId);
  }

  function finish(run: LaneRun): void {
    runs.delete(run.lane);
    leaveBulkhead(run);
    options.onRunsChanged?.(runs.size);
    // Handed while the lane was being given back: take it again (if nobody else did meanwhile).
    // (Only while its helpdesk has a slot free: the run gave its slot up to wait for its release.)
    if (run.relet && !stopping && bulkheadHasRoom(run)) start({ lane: run.lane, connectorId: run.connectorId, items: run.late, nextSeq: 0 }, false);
    // Leased for this instance again as it stops (an accept batch that landed after the run's release),
    // or with its helpdesk's bulkhead full: given back with the next completions rather than left to run
    // out; a claim takes it once a slot is free.
    else if (run.relet) {
      void completions.release(run.lane);
      if (!stopping) claimOwed = true;
    }
    // In the same step as whatever made a claim owed, so that a claim's answer handled in between
    // cannot clear it first.
    if (claimOwed) wake();
  }

  async function processLane(run: LaneRun): Promise<void> {
    const started = Date.now();
    let givenBack = false;
    try {
      while (!stopping && Date.now() - started < options.leaseMs / 2) {
        let row = run.buffer.get(run.nextSeq);
        if (!row && run.buffer.size === 0) {
          // Nothing more known here: most often the lane is done. Give it back with its completions, in
          // their batched statement, which keeps it instead when items are pending (written by another
          // instance, or not handed here); only then is the outbox read.
          run.releasing = true;
          leaveBulkhead(run);
          // Told now, so the accept path may hand this connector's lanes to the worker again.
          options.onRunsChanged?.(runs.size);
          if (await completions.release(run.lane, { ifEmpty: true })) {
            givenBack = true;
            return;
          }
          // Kept: items are pending (written by another instance, or not handed here). This run delivers
          // them if it gets its slot back; if the bulkhead filled meanwhile, it gives the lane back
          // instead (below, as a run that ends its time slice does), and a claim takes it once a slot
          // of its helpdesk is free.
          if (!bulkheadHasRoom(run)) break;
          enterBulkhead(run);
          options.onRunsChanged?.(runs.size);
          run.releasing = false;
          // Handed while the release was being decided: the lane stayed ours, so they are this run's.
          for (const item of run.late) run.buffer.set(item.seq, item);
          run.late = [];
          run.relet = false;
          row = run.buffer.get(run.nextSeq);
        }
        if (!row) {
          // The outbox is the truth: an item known here but older than the first pending one read was
          // delivered (or given up) since it was handed, as when a handed copy arrives after the run
          // read and delivered the same item; it must not go out again.
          const read = await readLane(db, run.lane, run.nextSeq);
          const first = read[0]?.seq;
          for (const seq of run.buffer.keys()) if (seq < run.nextSeq || first === undefined || seq < first) run.buffer.delete(seq);
          for (const item of read) if (!run.buffer.has(item.seq)) run.buffer.set(item.seq, item);
          if (run.buffer.size === 0) break;
          run.nextSeq = Math.min(...run.buffer.keys());
          row = run.buffer.get(run.nextSeq)!;
        }
        run.buffer.delete(row.seq);
        const outcome = await attempt(row);
        if (outcome === 'retry') {
          givenBack = true;
          return;
        }
        run.nextSeq = row.seq + 1;
        // A given-up item may have cancelled the rest of the lane: read what is still pending.
        if (outcome === 'dead') run.buffer.clear();
      }
    } finally {
      run.releasing = true;
      if (!givenBack) {
        leaveBulkhead(run);
        options.onRunsChanged?.(runs.size);
        await completions.release(run.lane);
        // Given back with items perhaps still pending (its time slice ended, it failed, or an item came
        // in as it found the lane empty): a claim is owed, which this run's end makes at once.
        claimOwed = true;
      }
      finish(run);
    }
  }

  /** Puts a lane back without an attempt: its connector's circuit is open or its bulkhead is full. */
  async function deferLane(lane: string, ms: number): Promise<void> {
    await db.query(`update outbox_lanes set next_attempt_at = now() + $2 * interval '1 millisecond', locked_by = null, locked_until = null where lane = $1`, [
      lane,
      ms,
    ]);
    wakeWhenDue(ms);
  }

  async function attempt(row: OutboxRow): Promise<'done' | 'dead' | 'retry'> {
    const connectorId = row.target === 'agent' ? row.connector_id : null;
    // Circuit open (or its one half-open trial already out): put the lane back without an attempt.
    if (connectorId && !options.health.tryCall(connectorId)) {
      await deferLane(row.lane, Math.min(options.pollIntervalMs * 5, 1000));
      return 'retry';
    }
    try {
      const outcome = await attemptCall(row);
      if (connectorId) options.health.callEnded(connectorId, outcome.health);
      return outcome.result;
    } catch (err) {
      if (connectorId) options.health.callEnded(connectorId, 'neutral');
      throw err;
    }
  }

  /**
   * One attempt as a span in the trace of the request that queued the item: a child of its stored
   * context (one request, one item, so the trace reads request → delivery → call; retries appear as
   * further attempts under the same request). Without a stored context it starts a trace of its own.
   */
  function attemptCall(row: OutboxRow): Promise<{ result: 'done' | 'dead' | 'retry'; health: 'success' | 'failure' | 'neutral' }> {
    const attributes = () => ({
      'handover.delivery.target': row.target,
      'handover.delivery.kind': row.kind,
      'handover.delivery.attempt': row.attempts + 1,
      'handover.id': row.handover_id,
      'handover.tenant.id': row.tenant_id,
      ...(row.connector_id && row.target === 'agent' ? { 'handover.connector.id': row.connector_id } : {}),
    });
    return inSpan(`deliver ${row.kind}`, { kind: SpanKind.CONSUMER, attributes, parent: row.trace_parent }, async (span) => {
      const outcome = await attemptCallIn(row);
      span?.setAttribute('handover.delivery.outcome', outcome.result === 'done' ? 'ok' : outcome.result === 'dead' ? 'failed' : 'retry');
      if (outcome.result !== 'done') span?.setStatus({ code: SpanStatusCode.ERROR });
      return outcome;
    });
  }

  async function attemptCallIn(row: OutboxRow): Promise<{ result: 'done' | 'dead' | 'retry'; health: 'success' | 'failure' | 'neutral' }> {
    const deliverer = options.deliverers[row.target];
    const startedAt = new Date();
    const t0 = performance.now();
    // One controller and one timer per attempt: AbortSignal.any over a timeout signal and a long-lived
    // one cost a few per cent of the hot path (allocations, weak references, finalization).
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new DOMException('The delivery attempt timed out.', 'TimeoutError')), options.timeoutMs);
    if (stopReason) abort.abort(stopReason);
    else attempts.add(abort);
    const signal = abort.signal;
    const attemptNo = row.attempts + 1;
    try {
      const result = await deliverer.deliver(row, signal);
      const ms = Math.round(performance.now() - t0);
      // Recorded with other completions in one statement (CompletionRecorder).
      completions.delivered(
        { id: row.id, attempt: attemptNo, lane: row.lane },
        result && result.externalRef ? { handoverId: row.handover_id, ref: result.externalRef } : undefined,
      );
      options.observer?.attempted(row, 'ok', ms / 1000);
      return { result: 'done', health: 'success' };
    } catch (thrown) {
      const err = toError(thrown);
      const ms = Math.round(performance.now() - t0);
      const retryable = !(err instanceof DeliveryError) || err.retryable;
      const statusCode = err instanceof DeliveryError ? (err.statusCode ?? null) : null;
      const giveUp = !retryable || attemptNo >= row.max_attempts;
      const message = failureText(err, { quoteAnswers: options.quoteAnswers }).slice(0, 1000);
      if (giveUp) {
        // Nothing recorded for an item no longer pending (recordFailedAttempt): its lane's count is not
        // lowered a second time.
        const recorded = await db.transaction(async (q) => {
          if (!(await recordFailedAttempt(q, 'failed', { row, attemptNo, startedAt, ms, statusCode, message }))) return false;
          await q.query('update outbox_lanes set pending = pending - 1 where lane = $1', [row.lane]);
          return true;
        });
        if (!recorded) {
          log.warn({ lane: row.lane, kind: row.kind }, `a delivery of ${row.kind} failed after its item was settled or removed elsewhere; nothing recorded`);
          options.observer?.attempted(row, 'failed', ms / 1000);
          return { result: 'dead', health: retryable ? 'failure' : 'neutral' };
        }
        const level = row.kind === 'user.typing' || row.kind === 'agent.typing' ? 'debug' : 'error';
        log[level](
          { lane: row.lane, kind: row.kind, tenantId: row.tenant_id, connectorId: row.connector_id, statusCode, attempts: attemptNo, err },
          `gave up delivering ${row.kind} to the ${row.target} side after ${attemptNo} attempts: ${message}`,
        );
        options.observer?.attempted(row, 'failed', ms / 1000);
        await deliverer.onGiveUp(row, err).catch((e) => log.error({ err: e, lane: row.lane }, 'handling a given-up delivery failed'));
        return { result: 'dead', health: retryable ? 'failure' : 'neutral' };
      }
      const delay = retryDelayMs(attemptNo, options.retryBaseMs, options.retryMaxMs, err instanceof DeliveryError ? err.retryAfterMs : undefined);
      await db.transaction(async (q) => {
        await recordFailedAttempt(q, 'retry', { row, attemptNo, startedAt, ms, statusCode, message });
        await q.query(
          `update outbox_lanes set next_attempt_at = now() + $2 * interval '1 millisecond', locked_by = null, locked_until = null where lane = $1`,
          [row.lane, delay],
        );
      });
      wakeWhenDue(delay);
      options.observer?.attempted(row, 'retry', ms / 1000);
      log.warn(
        { lane: row.lane, kind: row.kind, tenantId: row.tenant_id, connectorId: row.connector_id, statusCode, attempt: attemptNo, retryInMs: delay },
        `delivery to the ${row.target} side failed, will retry: ${message}`,
      );
      return { result: 'retry', health: 'failure' };
    } finally {
      clearTimeout(timer);
      attempts.delete(abort);
    }
  }

  async function loop(): Promise<void> {
    while (!stopping) {
      const free = options.concurrency - runs.size;
      let claimed: ClaimedLane[] = [];
      let walkCut = false;
      // Woken while a chain's last claim ran (a lane came due, work was written): lanes before the
      // chain's cursor may be owed one now, so the chain goes back to the first lane once more.
      if (wokenDuringClaim && chain) chain.wrapped = false;
      wokenDuringClaim = false;
      if (free > 0) {
        const blocked = options.health.blocked();
        try {
          const from = walkFrom;
          const claim = await claimLanes(db, {
            instanceId: options.instanceId,
            leaseMs: options.leaseMs,
            limit: free,
            blocked,
            remaining: options.health.remaining(),
            maxPerConnector: options.health.maxPerConnector,
            after: from,
          });
          claimed = claim.lanes;
          if (claimed.length === free) {
            // Every free slot taken: due lanes may be left in the part of the walk this claim looked at,
            // so the next claim (once a run ends) looks at it again, as the start of a chain of its own.
            walkFrom = from;
            chain = null;
          } else if (claim.walkedTo !== null) {
            // The walk stopped at its bound: the next claim goes on from there at once.
            chain ??= { wrapped: from === '' };
            walkFrom = claim.walkedTo;
            walkCut = true;
          } else {
            // The walk reached the last lane. A chain that started further on than the first has not
            // looked at the lanes before its start: it goes on from the first, once.
            walkFrom = '';
            walkCut = from !== '' && !(chain?.wrapped ?? false);
            chain = walkCut ? { wrapped: true } : null;
          }
          claimOwed = claimed.length > 0 || blocked.length > 0 || walkCut;
        } catch (err) {
          claimOwed = true;
          chain = null;
          log.warn({ err }, 'claiming outbox work failed; retrying when a lane run ends or after the poll interval');
        }
      } else claimOwed = true;
      for (const lane of claimed) adopt({ lane: lane.lane, connectorId: lane.connectorId, items: lane.items, nextSeq: lane.items[0]?.seq ?? 0 });
      // Room left and lanes not looked at yet (the walk stopped at its bound): the next claim goes on at once.
      if (free > 0 && (claimed.length === free || walkCut)) continue;
      // Stopped while the claim ran: its wake-up found no sleep to end, so do not start one.
      if (stopping) break;
      if (wokenDuringClaim) continue;
      // A chain does not outlive a sleep: what woke the loop may have made lanes before its cursor due.
      chain = null;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          // Ended by the poll: a wake-up from now on belongs to the claim that follows.
          wakeUp = null;
          resolve();
        }, options.pollIntervalMs);
        wakeUp = () => {
          clearTimeout(timer);
          wakeUp = null;
          resolve();
        };
      });
    }
  }

  const running = loop();

  return {
    async stop({ graceMs }) {
      stopping = true;
      unsubscribe();
      if (dueTimer) clearTimeout(dueTimer);
      dueTimer = null;
      dueTimes.length = 0;
      wake();
      options.handoff?.detach(sink);
      await running;
      const finished = Promise.allSettled([...tasks]);
      // The grace's timer is cleared once the lanes finish: a stopped worker leaves no timer behind.
      const grace = new AbortController();
      const timedOut = await Promise.race([finished.then(() => false), sleep(graceMs, true, { signal: grace.signal }).catch(() => false)]);
      grace.abort();
      if (timedOut) {
        stopReason = new Error('instance shutting down');
        for (const attempt of attempts) attempt.abort(stopReason);
        await finished;
      }
      await completions.close();
    },
  };
}

/**
 * A failed attempt's update of its item. The states other than pending are spelled out, as in the
 * completions (completions.ts): "state = 'pending'" let plans made on small tables walk the index of
 * pending items, every item of a backlog, to find one item by its key, and failures come with backlogs.
 */
export const RECORD_FAILED_ATTEMPT = `update outbox set state = case when $4 then 'dead' else state end, attempts = $2, last_error = $3
   where id = $1 and state <> 'done' and state <> 'dead' and state <> 'cancelled'`;

/**
 * Records a failed attempt, in the caller's transaction: the item's row first (marked dead when the
 * attempt was its last), and only while the item is pending; then its attempt row. An item gone (its
 * conversation deleted meanwhile) or settled by another worker (which took the lane after this one's
 * lease ran out) gets nothing: attempts have no foreign key to refuse a row for it (migration 021).
 * Answers whether it was recorded.
 */
async function recordFailedAttempt(
  q: Queryable,
  outcome: 'failed' | 'retry',
  a: { row: OutboxRow; attemptNo: number; startedAt: Date; ms: number; statusCode: number | null; message: string },
): Promise<boolean> {
  const { rowCount } = await q.query(RECORD_FAILED_ATTEMPT, [a.row.id, a.attemptNo, a.message, outcome === 'failed']);
  if (rowCount === 0) return false;
  await q.query(
    `insert into delivery_attempts (outbox_id, attempt, started_at, duration_ms, outcome, status_code, error) values ($1, $2, $3, $4, $5, $6, $7)`,
    [a.row.id, a.attemptNo, a.startedAt, a.ms, outcome, a.statusCode, a.message],
  );
  return true;
}
