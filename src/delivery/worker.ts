import { setTimeout as sleep } from 'node:timers/promises';
import type { Db } from '../store/db.js';
import type { Bus } from '../bus/bus.js';
import type { Logger } from '../telemetry/logger.js';
import { DeliveryError, failureText } from '../connectors/connector.js';
import { toError } from '../resilience/errors.js';
import type { ConnectorHealth } from '../resilience/circuit-breaker.js';
import { retryDelayMs } from './backoff.js';
import type { OutboxTarget } from './outbox.js';
import { inSpan, SpanKind, SpanStatusCode } from '../telemetry/tracing.js';

export interface OutboxRow {
  id: number;
  tenant_id: string;
  lane: string;
  seq: number;
  handover_id: string;
  target: OutboxTarget;
  connector_id: string | null;
  kind: string;
  payload: unknown;
  attempts: number;
  max_attempts: number;
  /** When the item was accepted (end-to-end delivery latency starts here). */
  created_at: Date;
  /** W3C traceparent of the request that queued it (tracing on), else null. */
  trace_parent: string | null;
}

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
  bus: Bus;
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
}

export interface DeliveryWorker {
  /** Stops claiming; lets lanes in flight finish their current item within `graceMs`, then aborts them. */
  stop(graceMs: number): Promise<void>;
}

const BATCH = 20;

/**
 * Claims due lanes (a conditional update on the lane's lease, so any number of instances can run this
 * and each lane goes to one) and delivers each lane's items strictly in order: an item that fails stops
 * its lane until its retry is due, so nothing overtakes it. Every attempt is recorded.
 */
export function startDeliveryWorker(options: WorkerOptions): DeliveryWorker {
  const { db, log } = options;
  const active = new Set<Promise<void>>();
  const inflight = new AbortController();
  let stopping = false;
  let wakeUp: (() => void) | null = null;
  const wake = () => {
    wakeUp?.();
  };
  const unsubscribe = options.bus.subscribe('outbox', wake);

  /**
   * Claims due lanes, at most the bulkhead's free slots per connector. The candidates are read first
   * (window functions cannot lock), then taken with a conditional update: of several instances
   * claiming at once, each lane goes to exactly one, because the update re-checks the lease after
   * waiting for the row.
   */
  async function claim(limit: number): Promise<Array<{ lane: string; connector_id: string | null }>> {
    const { connectorIds, slots } = options.health.remaining();
    const { rows } = await db.query<{ lane: string; connector_id: string | null }>(
      `with candidates as (
         select lane, connector_id, next_attempt_at,
                row_number() over (partition by connector_id order by next_attempt_at) as rn
         from outbox_lanes
         where pending > 0 and next_attempt_at <= now() and (locked_until is null or locked_until < now())
           and (connector_id is null or not (connector_id = any($4::text[])))
         order by next_attempt_at
         limit 1000
       ), capped as (
         select c.lane from candidates c
         left join unnest($5::text[], $6::int[]) as cap(connector_id, slots) on cap.connector_id = c.connector_id
         where c.connector_id is null or c.rn <= coalesce(cap.slots, $7)
         order by c.next_attempt_at
         limit $3
       )
       update outbox_lanes set locked_by = $1, locked_until = now() + $2 * interval '1 millisecond'
       where lane in (select lane from capped) and pending > 0 and (locked_until is null or locked_until < now())
       returning lane, connector_id`,
      [options.instanceId, options.leaseMs, limit, options.health.blocked(), connectorIds, slots, options.health.maxPerConnector],
    );
    return rows;
  }

  async function processLane(lane: string): Promise<void> {
    const started = Date.now();
    let released = false;
    try {
      while (!stopping && Date.now() - started < options.leaseMs / 2) {
        const { rows } = await db.query<OutboxRow>(
          `select id, tenant_id, lane, seq, handover_id, target, connector_id, kind, payload, attempts, max_attempts, created_at, trace_parent
           from outbox where lane = $1 and state = 'pending' order by seq limit ${BATCH}`,
          [lane],
        );
        if (rows.length === 0) break;
        for (const row of rows) {
          if (stopping || Date.now() - started >= options.leaseMs / 2) break;
          const outcome = await attempt(row);
          if (outcome === 'retry') {
            released = true;
            return;
          }
        }
      }
    } finally {
      if (!released) {
        await db
          .query('update outbox_lanes set locked_by = null, locked_until = null where lane = $1 and locked_by = $2', [lane, options.instanceId])
          .catch((err) => log.warn({ err, lane }, 'could not release an outbox lane; it frees itself when its lease ends'));
      }
    }
  }

  /** Puts a lane back without an attempt: its connector's circuit is open or its bulkhead is full. */
  async function deferLane(lane: string, ms: number): Promise<void> {
    await db.query(`update outbox_lanes set next_attempt_at = now() + $2 * interval '1 millisecond', locked_by = null, locked_until = null where lane = $1`, [lane, ms]);
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
    const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs), inflight.signal]);
    const attemptNo = row.attempts + 1;
    try {
      const result = await deliverer.deliver(row, signal);
      const ms = Math.round(performance.now() - t0);
      // One statement, so one round trip: the hot path of every delivery.
      await db.query(
        `with attempt as (
           insert into delivery_attempts (outbox_id, attempt, started_at, duration_ms, outcome) values ($1, $2, $3, $4, 'ok')
         ), item as (
           update outbox set state = 'done', attempts = $2, done_at = now(), last_error = null where id = $1
         ), ref as (
           update handovers set external_ref = $6 where $6::text is not null and id = $7
         )
         update outbox_lanes set pending = pending - 1 where lane = $5`,
        [row.id, attemptNo, startedAt, ms, row.lane, result && result.externalRef ? result.externalRef : null, row.handover_id],
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
        await db.transaction(async (q) => {
          await q.query(`insert into delivery_attempts (outbox_id, attempt, started_at, duration_ms, outcome, status_code, error) values ($1, $2, $3, $4, 'failed', $5, $6)`, [row.id, attemptNo, startedAt, ms, statusCode, message]);
          await q.query(`update outbox set state = 'dead', attempts = $2, last_error = $3 where id = $1`, [row.id, attemptNo, message]);
          await q.query('update outbox_lanes set pending = pending - 1 where lane = $1', [row.lane]);
        });
        const level = row.kind === 'user.typing' || row.kind === 'agent.typing' ? 'debug' : 'error';
        log[level]({ lane: row.lane, kind: row.kind, attempts: attemptNo, err }, `gave up delivering ${row.kind} to the ${row.target} side after ${attemptNo} attempts: ${message}`);
        options.observer?.attempted(row, 'failed', ms / 1000);
        await deliverer.onGiveUp(row, err).catch((e) => log.error({ err: e, lane: row.lane }, 'handling a given-up delivery failed'));
        return { result: 'dead', health: retryable ? 'failure' : 'neutral' };
      }
      const delay = retryDelayMs(attemptNo, options.retryBaseMs, options.retryMaxMs, err instanceof DeliveryError ? err.retryAfterMs : undefined);
      await db.transaction(async (q) => {
        await q.query(`insert into delivery_attempts (outbox_id, attempt, started_at, duration_ms, outcome, status_code, error) values ($1, $2, $3, $4, 'retry', $5, $6)`, [row.id, attemptNo, startedAt, ms, statusCode, message]);
        await q.query('update outbox set attempts = $2, last_error = $3 where id = $1', [row.id, attemptNo, message]);
        await q.query(
          `update outbox_lanes set next_attempt_at = now() + $2 * interval '1 millisecond', locked_by = null, locked_until = null where lane = $1`,
          [row.lane, delay],
        );
      });
      options.observer?.attempted(row, 'retry', ms / 1000);
      log.warn({ lane: row.lane, kind: row.kind, attempt: attemptNo, retryInMs: delay }, `delivery to the ${row.target} side failed, will retry: ${message}`);
      return { result: 'retry', health: 'failure' };
    }
  }

  async function loop(): Promise<void> {
    while (!stopping) {
      const free = options.concurrency - active.size;
      let claimed: Array<{ lane: string; connector_id: string | null }> = [];
      if (free > 0) {
        try {
          claimed = await claim(free);
        } catch (err) {
          log.warn({ err }, 'claiming outbox work failed; retrying after the poll interval');
        }
      }
      for (const { lane, connector_id: connectorId } of claimed) {
        if (connectorId) options.health.laneStarted(connectorId);
        const task: Promise<void> = processLane(lane)
          .catch((err) => log.error({ err, lane }, 'outbox lane failed'))
          .finally(() => {
            if (connectorId) options.health.laneEnded(connectorId);
            active.delete(task);
            wake();
          });
        active.add(task);
      }
      if (free > 0 && claimed.length === free) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.pollIntervalMs);
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
    async stop(graceMs) {
      stopping = true;
      unsubscribe();
      wake();
      await running;
      const finished = Promise.allSettled([...active]);
      const timedOut = await Promise.race([finished.then(() => false), sleep(graceMs).then(() => true)]);
      if (timedOut) {
        inflight.abort(new Error('instance shutting down'));
        await finished;
      }
    },
  };
}
