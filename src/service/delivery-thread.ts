/**
 * The delivery worker's own thread (see delivery-thread-host.ts): claims lanes, takes the lanes the
 * HTTP thread hands it, calls helpdesks and bot webhooks, and records the outcomes, with its own
 * database pool and outbound connections. What the HTTP thread shows (metrics, circuits, the status
 * page) it is told in batched messages; a given-up item's consequences (the conversation ends, the bot
 * is told) are decided there, where the handover's events are published.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SecretBox } from '../config/secret-box.js';
import { Connectors } from '../connectors/connector-store.js';
import { connectorDefinitions } from '../connectors/registry.js';
import { LaneHandoff } from '../delivery/lane-handoff.js';
import { startDeliveryWorker, workerSettings } from '../delivery/worker.js';
import { deliverers, type GiveUp } from '../handover/deliverers.js';
import { openAttachments } from '../attachments/open-attachments.js';
import { createOutboundAgent } from '../outbound/index.js';
import { warmUpDeliveryAtStart } from '../outbound/warm-up.js';
import { ConnectorHealth } from '../resilience/circuit-breaker.js';
import { createPgDb } from '../store/pg-db.js';
import { relayedDb, type DbAnswer } from '../store/relayed-db.js';
import { AppError } from '../resilience/errors.js';
import { createLogger } from '../telemetry/logger.js';
import { threadCpuSeconds } from '../telemetry/thread-cpu.js';
import { startTracingIfConfigured } from './start-steps.js';
import { writeUserMessagesOrEach } from '../handover/accept-user-messages.js';
import { lowerThreadPriority } from './thread-priority.js';
import { serializeError } from '../resilience/errors-across-threads.js';
import type { DeliveryThreadData, FromDeliveryThread, ToDeliveryThread } from './delivery-thread-protocol.js';
import { acceptRows, AttemptColumnsBuilder, outcomeColumns } from './thread-columns.js';

const port = parentPort!;
/** The longest a delivery's attempt waits to be told to the HTTP thread (its metrics and status page). */
const NOTES_EVERY_MS = 20;
const post = (message: FromDeliveryThread) => port.postMessage(message);

async function main(): Promise<void> {
  const { config, logLevel, instanceId, secretKeys, connection, dbPort } = workerData as DeliveryThreadData;
  const toService = { write: (line: string) => post({ type: 'log', line }) } as unknown as NodeJS.WritableStream;
  const log = createLogger(logLevel, toService).child({ part: 'delivery', thread: 'delivery' });
  const tracing = await startTracingIfConfigured(config, instanceId, log);
  // When the cores are full, the thread that answers (and refuses) requests goes first.
  try {
    const lowered = lowerThreadPriority(config.delivery.threadNice);
    if (lowered) log.info({ nice: lowered.nice }, `the delivery thread runs at nice ${lowered.nice}`);
  } catch (err) {
    log.warn({ err }, "the delivery thread's CPU priority could not be lowered; it runs at the HTTP thread's");
  }
  // The embedded store has one connection, in its own thread: this thread's statements go on a session of
  // that thread's (dbPort), or, where the database runs in the HTTP thread, through that thread.
  const callTimeoutMs = config.database.poolTimeoutMs + config.database.statementTimeoutMs + 1000;
  const relay = connection ? null : relayedDb((call) => (dbPort ? dbPort.postMessage(call) : post({ type: 'db', call })), { callTimeoutMs });
  const db = connection
    ? createPgDb({
        ...connection,
        // Short statements (claims, completions, failures): half the HTTP thread's pool is plenty; and one
        // connection per accept batch written at once, which this thread writes for the HTTP thread.
        poolSize: Math.max(2, Math.ceil(config.database.poolSize / 2)) + config.accept.batchConcurrency,
        applicationName: 'handover-delivery',
        onIdleClientError: (err) =>
          log.warn({ err }, 'an idle database connection of the delivery thread failed; the pool drops it and opens another when one is needed'),
      })
    : relay!.db;
  // Listened for first: what this thread does while it starts already needs the answers.
  if (relay && dbPort) {
    dbPort.on('message', (answer: DbAnswer) => relay.answer(answer));
    // The database's thread ended (a crash, a failed sync, the service stopping): nothing more will be
    // answered there, and waiting for it would only run into each call's bound.
    dbPort.on('close', () => relay.lose(new AppError('database_unavailable', { message: "The embedded database's thread stopped; restart the service." })));
  } else if (relay)
    port.on('message', (message: ToDeliveryThread) => {
      if (message.type === 'db-answer') relay.answer(message.answer);
    });
  const secrets = new SecretBox(secretKeys, config.secrets.currentKeyId);
  const dispatcher = createOutboundAgent(config.delivery.timeoutMs, config.outbound);
  const attachments = await openAttachments(config, secretKeys, secrets.currentKeyId);
  const connectors = new Connectors(db, connectorDefinitions(dispatcher, config.outbound), log, config.delivery.timeoutMs, secrets, (connectorId, objective) =>
    post({ type: 'latency-objective', connectorId, objective }),
  );
  const health = new ConnectorHealth(
    { failureThreshold: config.connectors.failureThreshold, cooldownMs: config.connectors.cooldownMs, maxInflightPerConnector: config.connectors.maxInflight },
    (connectorId, state) => post({ type: 'circuit', connectorId, state }),
  );

  // A given-up item is handled on the HTTP thread; its answer is awaited, within a bound.
  const giveUps = new Map<number, { resolve: () => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  let nextGiveUp = 1;
  const giveUpWaitMs = config.delivery.timeoutMs * 3;
  const giveUp: GiveUp = (row, failure) =>
    new Promise<void>((resolve, reject) => {
      const id = nextGiveUp++;
      const timer = setTimeout(() => {
        giveUps.delete(id);
        reject(new Error(`the HTTP thread did not finish handling the given-up item within ${giveUpWaitMs} ms`));
      }, giveUpWaitMs);
      giveUps.set(id, { resolve, reject, timer });
      post({ type: 'give-up', id, row, failure });
    });

  // Attempts and the load are told in one message at most every NOTES_EVERY_MS, not once per turn of
  // this thread's loop: under load a turn ends every few attempts, and each message wakes the HTTP
  // thread (which then takes the core from this one, at its lower priority). The load is told at once
  // while the HTTP thread may be holding lanes back for want of room (delivery-thread-host.ts, `hasRoom`):
  // when the runs last told and the lanes it handed since reach half of this thread's concurrency.
  const attempts = new AttemptColumnsBuilder();
  let loadDue = false;
  let runs = 0;
  let runsTold = 0;
  let lanesSinceTold = 0;
  let flushTimer: NodeJS.Timeout | null = null;
  let flushImmediate: NodeJS.Immediate | null = null;
  const flush = () => {
    if (flushTimer) clearTimeout(flushTimer);
    if (flushImmediate) clearImmediate(flushImmediate);
    flushTimer = flushImmediate = null;
    if (attempts.size === 0 && !loadDue) return;
    post({ type: 'notes', attempts: attempts.take(), load: loadDue ? { runs, bulkheadFull: health.bulkheadFull() } : null });
    if (loadDue) {
      runsTold = runs;
      lanesSinceTold = 0;
    }
    loadDue = false;
  };
  const flushSoon = () => {
    if (flushImmediate) return;
    if (loadDue && runsTold + lanesSinceTold >= config.delivery.concurrency / 2) flushImmediate = setImmediate(flush);
    else flushTimer ??= setTimeout(flush, NOTES_EVERY_MS);
  };

  // Before the worker starts: what it posts from its first delivery on is read once this thread is ready.
  await warmUpDeliveryAtStart(config.delivery.warmUpCalls, log);

  const wakeHandlers = new Set<(message: unknown) => void>();
  const handoff = new LaneHandoff(instanceId, config.delivery.leaseMs);
  const fileDeps = { db, config, now: () => new Date(), ...(attachments ? { attachments } : {}) };
  const worker = startDeliveryWorker({
    db,
    bus: {
      subscribe(_channel, handler) {
        wakeHandlers.add(handler);
        return () => wakeHandlers.delete(handler);
      },
    },
    log,
    instanceId,
    ...workerSettings(config),
    deliverers: deliverers(fileDeps, connectors, dispatcher, giveUp),
    health,
    observer: {
      attempted(row, outcome, seconds) {
        attempts.add(row, outcome, seconds);
        flushSoon();
      },
    },
    handoff,
    onRunsChanged(n) {
      runs = n;
      loadDue = true;
      flushSoon();
    },
  });

  const tellCpu = () => {
    const seconds = threadCpuSeconds();
    if (seconds !== null) post({ type: 'cpu', seconds });
  };
  const cpuTimer = setInterval(tellCpu, 250);
  cpuTimer.unref();

  port.on('message', (message: ToDeliveryThread) => {
    switch (message.type) {
      case 'lanes':
        // Not attached (stopping): the worker that stopped gives the lanes' leases back.
        handoff.hand(message.lanes);
        lanesSinceTold += message.lanes.length;
        // Told back even when they all joined runs already under way (the count did not change): the
        // HTTP thread counts handed lanes as taken until it hears the load again.
        loadDue = true;
        flushSoon();
        return;
      case 'wake':
        for (const handler of wakeHandlers) handler(null);
        return;
      case 'connector-changed':
        connectors.forget(message.connectorId);
        return;
      case 'public-url':
        config.publicUrl = message.url;
        return;
      case 'given-up': {
        const waiting = giveUps.get(message.id);
        if (!waiting) return;
        giveUps.delete(message.id);
        clearTimeout(waiting.timer);
        if (message.error === undefined) waiting.resolve();
        else waiting.reject(new Error(message.error));
        return;
      }
      case 'accept': {
        // Written with this thread's connections; lanes it fills that were idle go to this thread's
        // worker directly (its own handoff), so the items never cross back.
        const { id } = message;
        writeUserMessagesOrEach(db, acceptRows(message.batch), config.delivery.maxAttempts, handoff).then(
          (outcomes) => post({ type: 'accepted', id, outcomes: outcomeColumns(outcomes) }),
          (err: unknown) => post({ type: 'accept-failed', id, error: serializeError(err) }),
        );
        return;
      }
      case 'stop':
        void stop(message.graceMs);
        return;
      case 'db-answer':
        // Read by the relay's own listener (above).
        return;
    }
  });

  async function stop(graceMs: number): Promise<void> {
    try {
      await worker.stop({ graceMs });
    } catch (err) {
      log.error({ err }, 'stopping the delivery worker failed');
    }
    flush();
    clearInterval(cpuTimer);
    tellCpu();
    await Promise.allSettled([dispatcher.close(), attachments?.store.close(), db.close(), tracing?.shutdown()]);
    // Its session of the embedded database's thread ends here (a transaction it left open is rolled back).
    dbPort?.close();
    post({ type: 'stopped' });
    port.close();
  }

  post({ type: 'ready' });
}

main().catch((err: unknown) => post({ type: 'fatal', message: err instanceof Error ? err.message : String(err) }));
