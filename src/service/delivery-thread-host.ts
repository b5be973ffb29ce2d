import type { Worker } from 'node:worker_threads';
import { totalmem } from 'node:os';
import type { ResourceLimits } from 'node:worker_threads';
import { startModuleThread } from '../store/module-thread.js';
import type { Bus } from '../bus/bus.js';
import type { Config } from '../config/config.js';
import type { Connectors } from '../connectors/connector-store.js';
import type { SecretKey } from '../config/secret-box.js';
import type { HandoffSink, LaneHandoff } from '../delivery/lane-handoff.js';
import type { DeliveryWorker } from '../delivery/worker.js';
import type { GiveUp } from '../handover/deliverers.js';
import type { CircuitMirror } from '../resilience/circuit-breaker.js';
import type { ConnectorLatency } from '../resilience/connector-latency.js';
import type { Db, PgConnection } from '../store/db.js';
import { startThreadPool } from './thread-priority.js';
import { serveRelayedDb } from '../store/relayed-db.js';
import { openPgliteDbSession } from '../store/pglite-db.js';
import { lineWriter, type Logger } from '../telemetry/logger.js';
import type { ServiceEvents } from './events.js';
import type { DeliveryThreadData, FromDeliveryThread, ToDeliveryThread } from './delivery-thread-protocol.js';
import type { UserMessageWrite, UserMessageWritten } from '../handover/accept-user-messages.js';
import type { ItemOutcome } from '../store/group-commit.js';
import { AwaitedAnswers } from '../resilience/churn-free.js';
import { AppError } from '../resilience/errors.js';
import { deserializeError } from '../resilience/errors-across-threads.js';
import { acceptColumns, forEachAttempt, outcomeRows } from './thread-columns.js';

/**
 * The delivery thread's young generation, twice V8's default for it on a machine with a few GiB: the
 * thread allocates about 35 KB a message (rows, items, calls), and with the default its scavenges came
 * every 150 ms or so and took 11.6–13.4 µs of it per message; with this, half as many, 7.3–8.7 µs
 * (bench/gc-per-request.ts, two runs each). It costs up to about 32 MB more memory while the thread is
 * busy, so it is taken only where the process may use 2 GiB or more (its container's limit, else the
 * machine's memory); below that V8's own choice stands.
 */
function deliveryThreadLimits(): ResourceLimits | undefined {
  const constrained = process.constrainedMemory?.() || 0;
  const available = constrained > 0 ? Math.min(constrained, totalmem()) : totalmem();
  return available >= 2 * 1024 ** 3 ? { maxYoungGenerationSizeMb: 96 } : undefined;
}

export interface DeliveryThreadOptions {
  config: Config;
  instanceId: string;
  secretKeys: SecretKey[];
  /**
   * PostgreSQL: the thread opens its own pool, and writes the accept path's batches too. null (the
   * embedded store): the thread gets a session of its own of the database's thread (openPgliteDbSession),
   * and writes the accept path's batches too; where `db` runs in this thread, its statements run on it
   * through this thread instead, and the batches are written here.
   */
  connection: PgConnection | null;
  db: Db;
  log: Logger;
  bus: Bus;
  /** Told when a connector's config changes here, so the thread's instance of it is built again. */
  connectors: Pick<Connectors, 'onChange'>;
  handoff: LaneHandoff;
  circuits: CircuitMirror;
  latency: ConnectorLatency;
  events: ServiceEvents;
  giveUp: GiveUp;
  /** How long to wait for the thread to start; and, after a stop's grace, for it to finish. */
  startTimeoutMs?: number;
  /** Wait before a thread that died is started again. */
  restartDelayMs?: number;
}

/**
 * Runs the delivery worker in a thread of its own (delivery-thread.ts), so that claiming, calling
 * helpdesks and recording outcomes never take time from the thread that answers HTTP. The HTTP thread
 * keeps what it shows and decides: it hands the thread the lanes its accept path leased (bounded by the
 * lanes the thread reports in work), forwards wake-ups, counts the thread's attempts in its metrics and
 * status page, mirrors its circuits for routing, and ends the conversations whose items were given up.
 *
 * A thread that dies is reported and started again after `restartDelayMs`. What it had leased stays
 * in the outbox under its leases and is delivered once they run out, as after a crash; nothing
 * accepted is lost.
 */
export interface DeliveryThread extends DeliveryWorker {
  /** The thread running now; null between a death and its restart, and once stopped. */
  thread(): Worker | null;
  /**
   * Writes a batch of the accept path in the thread, with its connections; null when no thread runs
   * (the caller writes it itself). Bounded: a thread that neither answers within the database's own
   * bounds nor exits fails the batch with `database_timeout`.
   */
  accept(batch: UserMessageWrite[]): Promise<Array<ItemOutcome<UserMessageWritten>>> | null;
}

export async function startDeliveryThread(options: DeliveryThreadOptions): Promise<DeliveryThread> {
  const { log, config } = options;
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const restartDelayMs = options.restartDelayMs ?? 1000;
  let thread: Worker | null = null;
  let stopping = false;
  let runs = 0;
  /** Lanes handed since the thread last reported its load (it may not have taken them yet). */
  let handedSince = 0;
  let publicUrl = config.publicUrl;
  let restartTimer: NodeJS.Timeout | null = null;
  let stopped: (() => void) | null = null;
  /** CPU seconds of the threads that ended, and the last figure of the one running. */
  let cpuBefore = 0;
  let lastCpu = 0;
  /** Accept batches sent to the thread and not yet answered. */
  const accepting = new AwaitedAnswers<{ resolve: (o: Array<ItemOutcome<UserMessageWritten>>) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let nextAcceptId = 1;
  /** Whether the running thread writes the accept path's batches (it reaches the database without this thread). */
  let writesAccepts = false;
  // The thread's own bounds (a pool checkout, then the statement, twice for a deadlock's retry), and a margin.
  const acceptTimeoutMs = config.database.poolTimeoutMs + 2 * config.database.statementTimeoutMs + 1000;
  const settleAccept = (id: number) => {
    const waiting = accepting.take(id);
    if (!waiting) return undefined;
    clearTimeout(waiting.timer);
    return waiting;
  };
  const failAccepting = (why: string) => {
    for (const waiting of accepting.takeAll()) {
      clearTimeout(waiting.timer);
      waiting.reject(
        new AppError('database_unavailable', {
          message: `${why}; whether the batch was stored is not known: send the message again with the same clientId to be sure.`,
        }),
      );
    }
  };

  const post = (message: ToDeliveryThread) => thread?.postMessage(message);
  const postUrlIfChanged = () => {
    if (config.publicUrl === publicUrl) return;
    publicUrl = config.publicUrl;
    post({ type: 'public-url', url: publicUrl });
  };

  const sink: HandoffSink = {
    hasRoom: () => thread !== null && !stopping && runs + handedSince < config.delivery.concurrency,
    blocked: () => options.circuits.blocked(),
    take(lanes) {
      handedSince += lanes.length;
      postUrlIfChanged();
      post({ type: 'lanes', lanes });
    },
    giveBack(lanes) {
      // Leased by a batch this thread wrote as the delivery stopped: the thread's worker, stopping
      // too, gives them back (from its own handoff). A thread already gone leaves them to run out.
      post({ type: 'lanes', lanes });
    },
  };

  // Wake-ups are coalesced per turn of this loop: one message for any number of accepted batches.
  let wakeDue = false;
  const unsubscribe = options.bus.subscribe('outbox', () => {
    if (wakeDue) return;
    wakeDue = true;
    setImmediate(() => {
      wakeDue = false;
      postUrlIfChanged();
      post({ type: 'wake' });
    });
  });

  const unwatch = options.connectors.onChange((connectorId) => post({ type: 'connector-changed', connectorId }));
  const writeLine = lineWriter(log);

  const onMessage = (message: FromDeliveryThread) => {
    switch (message.type) {
      case 'log':
        writeLine(message.line);
        return;
      case 'cpu':
        options.events.emit('thread:cpu', { thread: 'delivery', seconds: cpuBefore + message.seconds });
        lastCpu = message.seconds;
        return;
      case 'notes':
        forEachAttempt(message.attempts, (attempt) => options.events.emit('delivery:attempted', attempt));
        if (message.load) {
          runs = message.load.runs;
          handedSince = 0;
          options.circuits.bulkheads(message.load.bulkheadFull);
        }
        return;
      case 'circuit':
        options.circuits.record(message.connectorId, message.state);
        options.events.emit('circuit:changed', { connectorId: message.connectorId, state: message.state });
        return;
      case 'latency-objective':
        options.latency.configure(message.connectorId, message.objective);
        return;
      case 'give-up':
        options.giveUp(message.row, message.failure).then(
          () => post({ type: 'given-up', id: message.id }),
          (err: unknown) => {
            log.error({ err, lane: message.row.lane }, 'handling a given-up delivery failed');
            post({ type: 'given-up', id: message.id, error: err instanceof Error ? err.message : String(err) });
          },
        );
        return;
      case 'accepted':
        settleAccept(message.id)?.resolve(outcomeRows(message.outcomes));
        return;
      case 'accept-failed':
        settleAccept(message.id)?.reject(deserializeError(message.error));
        return;
      case 'stopped':
        stopped?.();
        return;
      case 'db':
        // Run by the relay's own listener (spawn).
        return;
      default:
        return;
    }
  };

  async function spawn(): Promise<void> {
    // The thread lowers its own priority; the process's thread pool must not be its to start.
    await startThreadPool();
    // The embedded store in its own thread: a session of it for this thread, its transactions rolled
    // back after the statement timeout (each holds the one connection), and when the thread goes away.
    // Opened last before the thread starts, which takes it: nothing in between can leave it unowned.
    const dbPort = options.connection ? null : openPgliteDbSession(options.db, 'delivery', config.database.statementTimeoutMs);
    const data: DeliveryThreadData = {
      config,
      logLevel: log.level,
      instanceId: options.instanceId,
      secretKeys: options.secretKeys,
      connection: options.connection,
      ...(dbPort ? { dbPort } : {}),
    };
    const worker = startModuleThread(import.meta.url, 'delivery-thread', data, deliveryThreadLimits(), dbPort ? [dbPort] : []);
    publicUrl = config.publicUrl;
    writesAccepts = options.connection !== null || dbPort !== null;
    // The embedded store in this thread: the thread's statements run here, from its first (it reads
    // connectors while starting). A transaction it opened holds the one connection, so it is rolled back
    // after the statement timeout, and when the thread goes away.
    if (!options.connection && !dbPort) {
      const served = serveRelayedDb(options.db, (answer) => worker.postMessage({ type: 'db-answer', answer } satisfies ToDeliveryThread), {
        transactionMs: config.database.statementTimeoutMs,
      });
      worker.on('message', (message: FromDeliveryThread) => {
        if (message.type === 'db') served.call(message.call);
      });
      worker.on('exit', () => served.close());
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`the delivery thread did not start within ${startTimeoutMs} ms`)), startTimeoutMs);
      const onStart = (message: FromDeliveryThread) => {
        // What it logs while it starts (its priority, its pool) is written as later lines are.
        if (message.type === 'log') writeLine(message.line);
        else if (message.type === 'ready') done(null);
        else if (message.type === 'fatal') done(new Error(`the delivery thread failed to start: ${message.message}`));
      };
      const onError = (err: Error) => done(err);
      const onExit = (code: number) => done(new Error(`the delivery thread exited (code ${code}) while starting`));
      const done = (err: Error | null) => {
        clearTimeout(timer);
        worker.off('message', onStart);
        worker.off('error', onError);
        worker.off('exit', onExit);
        if (err) {
          void worker.terminate();
          reject(err);
        } else resolve();
      };
      worker.on('message', onStart);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
    if (stopping) {
      await worker.terminate();
      return;
    }
    worker.on('message', onMessage);
    worker.on('error', (err) => log.error({ err }, `the delivery thread failed: ${err.message}`));
    worker.on('exit', (code) => {
      if (thread !== worker) return;
      thread = null;
      runs = 0;
      handedSince = 0;
      // A counter: the next thread's time adds to what this one used.
      cpuBefore += lastCpu;
      lastCpu = 0;
      options.circuits.clear();
      failAccepting(`The delivery thread, writing the batch, stopped (exit code ${code})`);
      stopped?.();
      if (stopping) return;
      log.error(
        { code },
        `the delivery thread stopped (exit code ${code}); starting it again in ${restartDelayMs} ms. Lanes it held are delivered once their leases run out.`,
      );
      restartLater();
    });
    thread = worker;
  }

  function restartLater(): void {
    restartTimer = setTimeout(() => {
      restartTimer = null;
      if (stopping) return;
      spawn().catch((err: unknown) => {
        log.error({ err }, `starting the delivery thread again failed; trying again in ${restartDelayMs} ms`);
        if (!stopping) restartLater();
      });
    }, restartDelayMs);
  }

  await spawn();
  options.handoff.attach(sink);

  return {
    thread: () => thread,
    accept(batch) {
      const worker = thread;
      // Without a connection of its own (the embedded store in this thread), the batches are written here.
      if (!worker || stopping || !writesAccepts) return null;
      const id = nextAcceptId++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          settleAccept(id);
          reject(
            new AppError('database_timeout', {
              message: `The delivery thread did not answer a write within ${acceptTimeoutMs} ms; whether it was stored is not known: send the message again with the same clientId to be sure.`,
            }),
          );
        }, acceptTimeoutMs);
        accepting.add(id, { resolve, reject, timer });
        postUrlIfChanged();
        worker.postMessage({ type: 'accept', id, batch: acceptColumns(batch) } satisfies ToDeliveryThread);
      });
    },
    async stop({ graceMs }) {
      stopping = true;
      options.handoff.detach(sink);
      unsubscribe();
      unwatch();
      if (restartTimer) clearTimeout(restartTimer);
      const worker = thread;
      if (!worker) return;
      const finished = new Promise<void>((resolve) => {
        stopped = resolve;
      });
      worker.postMessage({ type: 'stop', graceMs } satisfies ToDeliveryThread);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([finished, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs + startTimeoutMs)))]);
      clearTimeout(timer);
      thread = null;
      await worker.terminate();
      // Its exit is not reported once stopping (thread is null by then): batches it never answered fail here.
      failAccepting('The delivery thread stopped before it answered');
    },
  };
}
