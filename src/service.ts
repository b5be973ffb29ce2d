import { randomBytes } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config/config.js';
import { SecretBox } from './config/secret-box.js';
import { AvailabilityCache } from './connectors/availability-cache.js';
import { ConnectorChecks } from './connectors/connector-checks.js';
import type { Db } from './store/db.js';
import { migrate } from './store/migrate.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { Connectors } from './connectors/connector-store.js';
import { connectorDefinitions } from './connectors/registry.js';
import { createOutboundAgent } from './outbound/index.js';
import { warmUpDeliveryAtStart } from './outbound/warm-up.js';
import { deliverers, endAfterGiveUp } from './handover/deliverers.js';
import { startDeliveryWorker, workerSettings } from './delivery/worker.js';
import { LaneHandoff } from './delivery/lane-handoff.js';
import { GroupCommit } from './store/group-commit.js';
import { writeUserMessagesOrEach, type UserMessageWrite, type UserMessageWritten } from './handover/accept-user-messages.js';
import { startAnswerTimer } from './handover/timers.js';
import { createDeskConsoles } from './desk/consoles.js';
import { startStreamSupervisor, type StreamSupervisor } from './handover/stream-supervisor.js';
import type { Deps } from './deps.js';
import { UserIdDigests } from './privacy/user-digest.js';
import { createApiKeyAuthenticator } from './tenants/tenants.js';
import { buildApp } from './http/app.js';
import { AdmissionController } from './resilience/admission.js';
import { ConnectorLatency } from './resilience/connector-latency.js';
import { CircuitMirror, ConnectorHealth } from './resilience/circuit-breaker.js';
import { startDeliveryThread, type DeliveryThread } from './service/delivery-thread-host.js';
import { startLoadSignals } from './resilience/load-signals.js';
import { createMetrics } from './monitoring/metrics.js';
import { startBacklogSampler, type BacklogSampler } from './monitoring/backlog-sampler.js';
import { startStoreMaintenance } from './store/embedded-maintenance.js';
import { StatusService } from './monitoring/status-service.js';
import { startRetentionJob } from './privacy/retention.js';
import { openAttachments } from './attachments/open-attachments.js';
import { Parts, type PartHooks } from './service/parts.js';
import { deliveryAttempt, ServiceEvents } from './service/events.js';
import { metricsObserve, statusObserve } from './service/observers.js';
import {
  adminTokenOf,
  checkPlannerSettings,
  checkDurabilitySettings,
  checkSecretKeySettings,
  databaseAnswers,
  databaseReady,
  deliveryInThread,
  openBus,
  openStore,
  sealStoredCredentials,
  secretKeysOf,
  startTracingIfConfigured,
  usableCores,
} from './service/start-steps.js';
import { canLowerThreadPriority } from './service/thread-priority.js';

export interface Service {
  app: FastifyInstance;
  /** Names this process in leases and lane claims. */
  instanceId: string;
  deps: Deps;
  connectors: Connectors;
  /** Every connector's own setup check, run on a timer once the background starts. */
  checks: ConnectorChecks;
  adminToken: string;
  /** True when this start generated the admin token (print it once). */
  adminTokenGenerated: boolean;
  /** Starts the background parts: the outbox worker, samplers, checks, the no-answer timer, retention and the holder of connector streams. */
  startBackground(): Promise<void>;
  /**
   * Stops them, letting deliveries in flight finish within `graceMs`. Held leases (connector streams,
   * the no-answer timer) are given back at once, unless `keepLeases` (as when the process dies: others
   * take them when the leases run out).
   */
  stopBackground(graceMs: number, options?: { keepLeases?: boolean }): Promise<void>;
  /** Connector streams (Salesforce) this instance holds now. */
  heldStreams(): string[];
  /** The delivery worker's thread, when it has one and it runs (tests end it to play a crash). */
  deliveryThread(): Worker | null;
  /** Starts the background parts, then listens. A failure stops everything the service started. */
  listen(): Promise<string>;
  stop(): Promise<void>;
}

export interface ServiceOptions {
  /** Tests give each run its own; the service then leaves closing it to the caller. */
  db?: Db;
  log?: Logger;
  instanceId?: string;
  /** Tests only: called before each part starts; what it throws fails the start there (test/e2e/service-parts.test.ts). */
  parts?: PartHooks;
}

/**
 * The composition root: the parts of the service, in the order they start. Each part, once started,
 * leaves its release on a stack (service/parts.ts); a start that fails at any part, and `stop()`,
 * release them newest first. So the order below is also the shutdown, read from the bottom: stop
 * admitting and drain HTTP, stop the background (workers finish in flight within the grace and flush
 * what they recorded), write the desk consoles' last counts, close the bus, the outbound pools, the
 * attachment store and the database, and send the last spans.
 */
export async function createService(config: Config, options: ServiceOptions = {}): Promise<Service> {
  const log = options.log ?? createLogger(config.logLevel);
  checkSecretKeySettings(config);
  const instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const parts = new Parts(log, options.parts);
  // Parts emit; metrics, the status page and the log subscribe (service/observers.ts).
  const events = new ServiceEvents(log);

  return parts.build(async () => {
    // First, so it stops last: the spans of the shutdown itself are sent. Before the app, whose request spans depend on it.
    await parts.start(
      'tracing',
      () => startTracingIfConfigured(config, instanceId, log),
      (tracing) => tracing?.shutdown().catch((err: unknown) => log.warn({ err }, 'sending the last spans failed')),
    );
    const db =
      options.db ??
      (await parts.start(
        'store',
        () => openStore(config, log),
        (db) => db.close(),
      ));
    await parts.start('migrations', () => migrate(db, { log: (m: string) => log.info(m) }));
    await parts.start('planner-settings', () => checkPlannerSettings(db, log));
    await parts.start('durability-settings', () => checkDurabilitySettings(db, log));
    const adminToken = await parts.start('admin-token', () => adminTokenOf(config));
    const secretKeys = await parts.start('secret-keys', () => secretKeysOf(config, log));
    const secrets = new SecretBox(secretKeys, config.secrets.currentKeyId);
    const dispatcher = await parts.start(
      'outbound',
      () => createOutboundAgent(config.delivery.timeoutMs, config.outbound),
      (pool) => pool.close(),
    );
    const attachments = await parts.start(
      'attachments',
      () => openAttachments(config, secretKeys, secrets.currentKeyId),
      (files) => files?.store.close(),
    );
    // How fast each agent-side system answers: `slow` is a state of its own (docs/observability.md).
    const latency = new ConnectorLatency(config.connectors.latency);
    const connectors = new Connectors(db, connectorDefinitions(dispatcher, config.outbound), log, config.delivery.timeoutMs, secrets, (id, objective) =>
      latency.configure(id, objective),
    );
    await parts.start('credentials', () => sealStoredCredentials(connectors, secrets.currentKeyId, log));
    const bus = await parts.start(
      'bus',
      () => openBus(config, instanceId, events, log),
      (bus) => bus.close(),
    );
    // Delivery in a thread of its own (deliveryInThread): the HTTP thread reads its circuits from a mirror.
    const deliveryThread = deliveryInThread(config.delivery.thread, db.connection, {
      cores: usableCores(),
      lowerPriority: canLowerThreadPriority(config.delivery.threadNice),
    });
    const circuits = deliveryThread ? new CircuitMirror(config.connectors.cooldownMs) : null;
    const health = new ConnectorHealth(
      {
        failureThreshold: config.connectors.failureThreshold,
        cooldownMs: config.connectors.cooldownMs,
        maxInflightPerConnector: config.connectors.maxInflight,
      },
      (connectorId, state) => events.emit('circuit:changed', { connectorId, state }),
    );
    // The accept path: user messages that arrive together share one statement and one commit, and an
    // idle lane they fill goes straight to this instance's worker (docs/performance.md).
    const handoff = new LaneHandoff(instanceId, config.delivery.leaseMs);
    let acceptInThread: DeliveryThread['accept'] | null = null;
    const userMessages = new GroupCommit<UserMessageWrite, UserMessageWritten>(
      {
        maxBatch: config.accept.batchMax,
        maxWaitMs: config.accept.batchWaitMs,
        maxConcurrent: db.kind === 'pglite' ? 1 : config.accept.batchConcurrency,
        overlapAfterMs: db.kind === 'pglite' ? 0 : config.accept.batchOverlapMs,
        maxQueued: config.accept.maxQueued,
        onBatch: (messages, seconds, failed) => events.emit('accept:batch', { messages, seconds, failed }),
      },
      (write) => write.handoverId,
      // In the delivery thread while it runs (PostgreSQL): the statement's round trip, and the
      // database woken by it, then take nothing from the thread that answers HTTP.
      (batch) => acceptInThread?.(batch) ?? writeUserMessagesOrEach(db, batch, config.delivery.maxAttempts, handoff),
    );
    // Stopped after the app: the consoles' streams have ended with it, and their last counts are written.
    const deskConsoles = await parts.startPart('desk-consoles', () =>
      createDeskConsoles({ db, bus, log: log.child({ part: 'desk' }), instanceId, graceMs: config.desk.presenceGraceMs }),
    );
    const signals = await parts.startPart('load-signals', () => startLoadSignals());
    // The latency the limit defends unless set is the controller's own default, 20 ms on either store (docs/overload.md, "The limit").
    const admission = new AdmissionController(config.admission, signals);
    const metrics = await parts.start('metrics', () =>
      createMetrics(
        { admission, signals, bus, db, acceptQueued: () => userMessages.queued },
        // Slices of 1–10 s: fine enough for the status window, at most 3600 per hour in memory.
        {
          windowSliceMs: Math.min(10_000, Math.max(1000, config.status.sampleMs)),
          poolSize: config.database.poolSize,
          admissionStuckMs: config.admission.stuckMs,
        },
      ),
    );
    metricsObserve(events, metrics);
    const connectorOf = async (id: string) => (await connectors.get(id)).connector;
    const checks = new ConnectorChecks(
      db,
      connectorOf,
      {
        intervalMs: config.connectors.checkIntervalMs,
        timeoutMs: config.delivery.timeoutMs,
        concurrency: config.connectors.checkConcurrency,
        maxConnectors: 10_000,
        quoteAnswers: !config.redactContent,
      },
      log.child({ part: 'connector-checks' }),
      (line) => events.emit('check:judged', { line }),
      (connectorId) => events.emit('check:gone', { connectorId }),
    );
    const status = new StatusService(
      {
        sampleMs: config.status.sampleMs,
        windowMs: config.status.windowMs,
        recoveryMs: config.status.recoveryMs,
        latencyTargetMs: config.status.latencyTargetMs,
        backlogAgeTargetSeconds: config.status.backlogAgeTargetSeconds,
        eventLoopDelayLimitMs: config.admission.eventLoopDelayLimitMs,
        heapUsedLimitRatio: config.admission.heapUsedLimitRatio,
      },
      {
        admission,
        signals,
        metrics,
        db,
        log: log.child({ part: 'status' }),
        circuitState: (id) => (circuits ?? health).state(id),
        latency,
        database: () => databaseAnswers(db),
        ...(config.redis.url ? { bus: { health: () => bus.health(), pollMs: config.redis.degradedPollMs } } : {}),
        checks: () => checks.latest(),
      },
    );
    statusObserve(events, status, latency, log);
    const availability = await parts.startPart(
      'availability',
      () =>
        new AvailabilityCache(
          connectorOf,
          {
            refreshMs: config.connectors.availabilityRefreshMs,
            maxAgeMs: config.connectors.availabilityMaxAgeMs,
            timeoutMs: config.delivery.timeoutMs,
            maxEntries: 10_000,
            quoteAnswers: !config.redactContent,
          },
          log.child({ part: 'availability' }),
        ),
    );
    /** The outbox's backlog, sampled once the service's background parts run (availability reads it). */
    let backlogSampler: BacklogSampler | null = null;
    const deps: Deps = {
      db,
      bus,
      log,
      config,
      now: () => new Date(),
      userIds: new UserIdDigests(secretKeys, secrets.currentKeyId),
      deskConsoles,
      connectorState: (id) => (circuits ?? health).state(id),
      connectorBacklog: (id) => backlogSampler?.agentItems(id) ?? null,
      connectorLatency: (id) => latency.verdict(id),
      agentAvailability: (id) => availability.peek(id),
      connectorChecks: (tenantId) => checks.latest(tenantId),
      userMessages,
      funnel: metrics.funnel,
      ...(attachments ? { attachments } : {}),
    };
    let closing: Promise<void> | undefined;
    // Closing waits for every connection with a request in progress (those that never sent a byte are
    // closed with the idle ones: http/never-used-connections.ts). Those whose clients never finish one
    // (headers or a body that never end) are not idle and no request timeout runs on them once the
    // server closes: after the grace period they are closed, or the stop would wait on their clients
    // for good.
    const closeApp = (graceMs: number): Promise<void> => {
      if (closing) return closing;
      const force = setTimeout(() => app.server.closeAllConnections(), graceMs);
      closing = app.close().finally(() => clearTimeout(force));
      return closing;
    };
    const app = await parts.start(
      'app',
      () =>
        buildApp({
          deps,
          connectors,
          adminToken: adminToken.token,
          admission,
          metrics,
          status,
          authenticateApiKey: createApiKeyAuthenticator(db, { ttlMs: config.http.apiKeyCacheMs, maxEntries: 10_000 }, bus),
          ready: () => databaseReady(db),
        }),
      (_app, { graceMs }) => closeApp(graceMs),
    );

    // Started by listen() (and again by tests that stop them to play a dying instance); stopped before the app closes.
    const background = await parts.startPart('background', () => new Parts(log, options.parts));
    let streams: StreamSupervisor | null = null;
    let threaded: DeliveryThread | null = null;
    const startBackground = (): Promise<void> =>
      background.build(async () => {
        const delivery = await background.startPart('delivery-worker', () =>
          deliveryThread && circuits
            ? startDeliveryThread({
                config,
                instanceId,
                secretKeys,
                connection: deliveryThread.connection,
                db,
                log,
                bus,
                connectors,
                handoff,
                circuits,
                latency,
                events,
                giveUp: endAfterGiveUp(deps),
              })
            : warmUpDeliveryAtStart(config.delivery.warmUpCalls, log.child({ part: 'delivery' })).then(() =>
                startDeliveryWorker({
                  db,
                  bus,
                  log: log.child({ part: 'delivery' }),
                  instanceId,
                  ...workerSettings(config),
                  deliverers: deliverers(deps, connectors, dispatcher, endAfterGiveUp(deps)),
                  health,
                  observer: { attempted: (row, outcome, seconds) => events.emit('delivery:attempted', deliveryAttempt(row, outcome, seconds)) },
                  handoff,
                }),
              ),
        );
        threaded = 'thread' in delivery ? (delivery as DeliveryThread) : null;
        acceptInThread = threaded ? threaded.accept.bind(threaded) : null;
        const backlog = await background.startPart('backlog-sampler', () =>
          startBacklogSampler(db, config.status.sampleMs, log, (samples) => events.emit('backlog:sampled', { samples })),
        );
        backlogSampler = backlog;
        await background.startPart('store-maintenance', () =>
          startStoreMaintenance(db, config.database.embeddedVacuumIntervalMs, log.child({ part: 'store-maintenance' })),
        );
        await background.startPart('status', () => {
          status.useBacklog(backlog);
          status.start();
          return status;
        });
        await background.startPart('connector-checks', () => {
          checks.start();
          return checks;
        });
        await background.startPart('answer-timer', () => startAnswerTimer(deps, config.desk.timerIntervalMs, instanceId));
        await background.startPart('retention', () => startRetentionJob(deps, config.desk.retentionIntervalMs, instanceId));
        streams = await background.start(
          'streams',
          () =>
            startStreamSupervisor({
              deps,
              connectors,
              instanceId,
              leaseMs: config.streams.leaseMs,
              tickMs: config.streams.tickMs,
              maxStreams: config.streams.maxPerInstance,
            }),
          (supervisor, { release }) => {
            streams = null;
            return supervisor.stop({ release });
          },
        );
      });

    const service: Service = {
      app,
      instanceId,
      deps,
      connectors,
      checks,
      adminToken: adminToken.token,
      adminTokenGenerated: adminToken.generated,
      async startBackground() {
        if (background.names().length === 0) await startBackground();
      },
      stopBackground: (graceMs, { keepLeases = false } = {}) => background.stop({ graceMs, release: !keepLeases }),
      heldStreams: () => streams?.held() ?? [],
      deliveryThread: () => threaded?.thread() ?? null,
      listen: () =>
        parts.build(async () => {
          await service.startBackground();
          // Last, so it stops first: admission refuses with shutting_down, then the requests in flight finish.
          return parts.start(
            'http',
            () => app.listen({ port: config.port, host: config.host }),
            (_server, { graceMs }) => {
              admission.drain();
              return closeApp(graceMs);
            },
          );
        }),
      stop: () => parts.stop({ graceMs: config.http.shutdownGraceMs, release: true }),
    };
    return service;
  });
}
