import { setTimeout as sleep } from 'node:timers/promises';
import type { Db } from '../store/db.js';
import type { Bus } from '../bus/bus.js';
import type { Logger } from '../telemetry/logger.js';
import { DeliveryError } from '../connectors/connector.js';
import { toError } from '../resilience/errors.js';
import { retryDelayMs } from './backoff.js';
import type { OutboxTarget } from './outbox.js';

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
}

export interface DeliveryWorker {
  /** Stops claiming; lets lanes in flight finish their current item within `graceMs`, then aborts them. */
  stop(graceMs: number): Promise<void>;
}

const BATCH = 20;

/**
 * Claims due lanes (FOR UPDATE SKIP LOCKED, so any number of instances can run this) and delivers each
 * lane's items strictly in order: an item that fails stops its lane until its retry is due, so nothing
 * overtakes it. Every attempt is recorded.
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

  async function claim(limit: number): Promise<string[]> {
    const { rows } = await db.query<{ lane: string }>(
      `update outbox_lanes set locked_by = $1, locked_until = now() + $2 * interval '1 millisecond'
       where lane in (select lane from outbox_lanes
                      where pending > 0 and next_attempt_at <= now() and (locked_until is null or locked_until < now())
                      order by next_attempt_at limit $3 for update skip locked)
       returning lane`,
      [options.instanceId, options.leaseMs, limit],
    );
    return rows.map((r) => r.lane);
  }

  async function processLane(lane: string): Promise<void> {
    const started = Date.now();
    let released = false;
    try {
      while (!stopping && Date.now() - started < options.leaseMs / 2) {
        const { rows } = await db.query<OutboxRow>(
          `select id, tenant_id, lane, seq, handover_id, target, connector_id, kind, payload, attempts, max_attempts
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

  async function attempt(row: OutboxRow): Promise<'done' | 'dead' | 'retry'> {
    const deliverer = options.deliverers[row.target];
    const startedAt = new Date();
    const t0 = performance.now();
    const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs), inflight.signal]);
    const attemptNo = row.attempts + 1;
    try {
      const result = await deliverer.deliver(row, signal);
      const ms = Math.round(performance.now() - t0);
      await db.transaction(async (q) => {
        await q.query(`insert into delivery_attempts (outbox_id, attempt, started_at, duration_ms, outcome) values ($1, $2, $3, $4, 'ok')`, [row.id, attemptNo, startedAt, ms]);
        await q.query(`update outbox set state = 'done', attempts = $2, done_at = now(), last_error = null where id = $1`, [row.id, attemptNo]);
        await q.query('update outbox_lanes set pending = pending - 1 where lane = $1', [row.lane]);
        if (result && result.externalRef) await q.query('update handovers set external_ref = $2 where id = $1', [row.handover_id, result.externalRef]);
      });
      return 'done';
    } catch (thrown) {
      const err = toError(thrown);
      const ms = Math.round(performance.now() - t0);
      const retryable = !(err instanceof DeliveryError) || err.retryable;
      const statusCode = err instanceof DeliveryError ? (err.statusCode ?? null) : null;
      const giveUp = !retryable || attemptNo >= row.max_attempts;
      const message = err.message.slice(0, 1000);
      if (giveUp) {
        await db.transaction(async (q) => {
          await q.query(`insert into delivery_attempts (outbox_id, attempt, started_at, duration_ms, outcome, status_code, error) values ($1, $2, $3, $4, 'failed', $5, $6)`, [row.id, attemptNo, startedAt, ms, statusCode, message]);
          await q.query(`update outbox set state = 'dead', attempts = $2, last_error = $3 where id = $1`, [row.id, attemptNo, message]);
          await q.query('update outbox_lanes set pending = pending - 1 where lane = $1', [row.lane]);
        });
        const level = row.kind === 'user.typing' || row.kind === 'agent.typing' ? 'debug' : 'error';
        log[level]({ lane: row.lane, kind: row.kind, attempts: attemptNo, err }, `gave up delivering ${row.kind} to the ${row.target} side after ${attemptNo} attempts: ${message}`);
        await deliverer.onGiveUp(row, err).catch((e) => log.error({ err: e, lane: row.lane }, 'handling a given-up delivery failed'));
        return 'dead';
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
      log.warn({ lane: row.lane, kind: row.kind, attempt: attemptNo, retryInMs: delay }, `delivery to the ${row.target} side failed, will retry: ${message}`);
      return 'retry';
    }
  }

  async function loop(): Promise<void> {
    while (!stopping) {
      const free = options.concurrency - active.size;
      let claimed: string[] = [];
      if (free > 0) {
        try {
          claimed = await claim(free);
        } catch (err) {
          log.warn({ err }, 'claiming outbox work failed; retrying after the poll interval');
        }
      }
      for (const lane of claimed) {
        const task: Promise<void> = processLane(lane)
          .catch((err) => log.error({ err, lane }, 'outbox lane failed'))
          .finally(() => {
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
