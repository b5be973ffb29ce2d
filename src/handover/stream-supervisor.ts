import { setTimeout as sleep } from 'node:timers/promises';
import type { Deps } from '../deps.js';
import { applyInbound } from './inbound.js';
import { endHandover } from './lifecycle.js';
import { AppError, toError } from '../resilience/errors.js';
import { inTransaction } from '../store/unit-of-work.js';
import type { Connectors } from '../connectors/connector-store.js';
import { DeliveryError, StreamLostError, type StreamContext } from '../connectors/connector.js';
import { failureText } from '../connectors/connector-helpers.js';
import { claimStreams, closeEndedStreams, lockHeldStream, releaseStream, renewStreams, savePosition, type ClaimedStream } from '../connectors/stream-leases.js';

/** The longest wait a stream's Retry-After may impose on its reconnect (the lease must stay renewed meanwhile). */
const MAX_RETRY_AFTER_MS = 60_000;

export interface StreamSupervisorOptions {
  deps: Deps;
  connectors: Connectors;
  instanceId: string;
  /** How long a lease lasts unless renewed; another instance takes the stream after it ran out. */
  leaseMs: number;
  /** How often leases are renewed and new streams claimed (well below leaseMs). */
  tickMs: number;
  /** Streams held by this instance at most. */
  maxStreams: number;
}

export interface StreamSupervisor {
  /**
   * Stops every stream. `release: true` (graceful shutdown) gives the leases back so another instance
   * takes the streams at once; without it they are taken over when the leases run out.
   */
  stop(options: { release: boolean }): Promise<void>;
  /** Streams this instance holds now (status and tests). */
  held(): string[];
}

/** Errors of events that no longer apply (the handover ended meanwhile): the stream moves past them. */
const staleEventCodes = new Set(['handover_ended', 'handover_not_found']);

class LeaseLostError extends Error {
  constructor() {
    super('the stream lease was lost to another instance');
    this.name = 'LeaseLostError';
  }
}

/**
 * Holds the pull streams of open connector sessions: claims leases, renews them every tick, runs one
 * reading loop per held stream (reconnecting with backoff, resuming from the stored position), and
 * stops a stream when its handover ends or its lease is lost.
 */
export function startStreamSupervisor(options: StreamSupervisorOptions): StreamSupervisor {
  const { deps, connectors, instanceId } = options;
  const log = deps.log.child({ part: 'streams' });
  const running = new Map<string, { abort: AbortController; done: Promise<void> }>();
  let stopping = false;
  let ticks = 0;

  async function tick(): Promise<void> {
    const ids = [...running.keys()];
    const kept = await renewStreams(deps.db, instanceId, options.leaseMs, ids);
    for (const id of ids) {
      const state = kept.get(id);
      if (!state) {
        log.warn({ handoverId: id }, 'lost the lease of a stream; another instance holds it now');
        running.get(id)?.abort.abort(new LeaseLostError());
      } else if (state.ended) {
        running.get(id)?.abort.abort(new Error('handover ended'));
        await releaseStream(deps.db, instanceId, id, true);
      }
    }
    if (stopping) return;
    // Now and then, close the streams of handovers that ended while nobody held them.
    if (++ticks % 30 === 0) await closeEndedStreams(deps.db);
    const claimed = await claimStreams(deps.db, instanceId, options.leaseMs, options.maxStreams - running.size);
    for (const stream of claimed) {
      // Re-claimed by this instance after a late renewal while its old loop is still winding down:
      // that loop gives the stream up first; a later tick claims it again. Never two loops for one stream.
      if (running.has(stream.handoverId)) continue;
      start(stream);
    }
  }

  function start(stream: ClaimedStream): void {
    const abort = new AbortController();
    const entry: { abort: AbortController; done: Promise<void> } = { abort, done: Promise.resolve() };
    entry.done = follow(stream, abort.signal)
      .catch((err) => log.error({ err, handoverId: stream.handoverId }, 'a stream loop failed'))
      .finally(() => {
        // Only its own entry: a newer loop for the same stream may have replaced it.
        if (running.get(stream.handoverId) === entry) running.delete(stream.handoverId);
      });
    running.set(stream.handoverId, entry);
    log.debug({ handoverId: stream.handoverId }, 'holding the stream');
  }

  /** One stream's life on this instance: connect, read, reconnect, until aborted or lost for good. */
  async function follow(stream: ClaimedStream, signal: AbortSignal): Promise<void> {
    const sessions = connectors.sessions(stream.tenantId, stream.connectorId);
    let failures = 0;
    while (!signal.aborted) {
      let retryAfterMs = 0;
      try {
        const { connector } = await connectors.get(stream.connectorId);
        if (!connector.pullStream) {
          await releaseStream(deps.db, instanceId, stream.handoverId, true);
          return;
        }
        const session = await sessions.load(stream.handoverId);
        if (!session) return;
        const context: StreamContext = {
          handoverId: stream.handoverId,
          session,
          signal,
          apply: (position, events) => apply(stream, position, events),
          saveCredential: (credential) => sessions.save(stream.handoverId, { credential }),
        };
        const opened = Date.now();
        await connector.pullStream.read(context);
        // A connection that ends at once, again and again, is backed off like a failure: no tight loop.
        failures = Date.now() - opened < 1000 ? failures + 1 : 0;
      } catch (thrown) {
        if (signal.aborted) return;
        const err = toError(thrown);
        if (err instanceof LeaseLostError) return;
        if (err instanceof StreamLostError) {
          await lose(stream, err);
          return;
        }
        failures++;
        if (err instanceof DeliveryError && err.retryAfterMs !== undefined) retryAfterMs = Math.min(err.retryAfterMs, MAX_RETRY_AFTER_MS);
        log.warn(
          { err, handoverId: stream.handoverId, failures },
          `reading the stream failed; reconnecting: ${failureText(err, { quoteAnswers: !deps.config.redactContent })}`,
        );
      }
      // Reconnect at once after a clean end of a stream that lasted; back off (bounded, jittered) otherwise,
      // and no sooner than the answer's Retry-After asked.
      const backoff = failures === 0 ? 0 : Math.min(5000, 100 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random() / 2);
      const delay = Math.max(backoff, retryAfterMs);
      if (delay > 0) await sleep(delay, undefined, { signal }).catch(() => {});
    }
  }

  async function apply(stream: ClaimedStream, position: string, events: Parameters<StreamContext['apply']>[1]): Promise<void> {
    await inTransaction(deps.db, async (uow) => {
      // Under the lease row's lock: a holder that lost its lease cannot apply anything any more.
      if (!(await lockHeldStream(uow.q, instanceId, stream.handoverId))) throw new LeaseLostError();
      for (const event of events) {
        // Each event in a savepoint: one that can never be applied (it names an ended handover, or
        // carries what cannot be stored) is skipped, instead of being read again and again.
        await uow.q.query('savepoint stream_event');
        try {
          await applyInbound(deps, uow, stream.tenantId, stream.connectorId, event);
          await uow.q.query('release savepoint stream_event');
        } catch (err) {
          await uow.q.query('rollback to savepoint stream_event');
          if (err instanceof AppError && staleEventCodes.has(err.code)) continue;
          if (err instanceof AppError && err.status >= 400 && err.status < 500) {
            log.warn({ handoverId: stream.handoverId, position, code: err.code }, `skipped a stream event that cannot be applied: ${err.message}`);
            continue;
          }
          throw err;
        }
      }
      await savePosition(uow.q, stream.handoverId, position);
    });
  }

  /** The system will not let us follow the conversation: end it `failed`, with the reason for the bot. */
  async function lose(stream: ClaimedStream, err: StreamLostError): Promise<void> {
    log.error({ handoverId: stream.handoverId, err: { message: err.message } }, `a handover's stream was lost: ${err.message}`);
    await endHandover(deps, { tenantId: stream.tenantId, handoverId: stream.handoverId, reason: 'failed', by: 'system', detail: err.message });
    await releaseStream(deps.db, instanceId, stream.handoverId, true);
  }

  let ticking: Promise<void> = Promise.resolve();
  let busy = false;
  const timer = setInterval(() => {
    // A slow database must not pile ticks up: one at a time, the next interval tries again.
    if (busy || stopping) return;
    busy = true;
    ticking = tick()
      .catch((err) => log.warn({ err }, 'renewing or claiming streams failed; trying again next tick'))
      .finally(() => {
        busy = false;
      });
  }, options.tickMs);
  timer.unref();

  return {
    held: () => [...running.keys()],
    async stop({ release }) {
      stopping = true;
      clearInterval(timer);
      await ticking;
      const streams = [...running.entries()];
      for (const [, s] of streams) s.abort.abort(new Error('instance stopping'));
      await Promise.allSettled(streams.map(([, s]) => s.done));
      if (release) {
        await Promise.allSettled(streams.map(([id]) => releaseStream(deps.db, instanceId, id, false)));
      }
    },
  };
}
