import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config/config.js';
import { ensureAdminToken } from './config/admin-token.js';
import { ensureSecretKeys } from './config/secret-key.js';
import { SecretBox } from './connectors/secret-box.js';
import { AvailabilityCache } from './connectors/availability-cache.js';
import { ConnectorChecks } from './connectors/connector-checks.js';
import { createCheckMetrics } from './telemetry/check-metrics.js';
import { ConfigError } from './config/config.js';
import type { Db } from './store/db.js';
import { openDb } from './store/open-db.js';
import { migrate, pendingMigrations } from './store/migrate.js';
import { createLocalBus } from './bus/local-bus.js';
import { createRedisBus } from './bus/redis-bus.js';
import type { Bus } from './bus/bus.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { Connectors } from './connectors/connector-store.js';
import { connectorDefinitions } from './connectors/registry.js';
import { createOutboundAgent } from './outbound/index.js';
import { deliverers } from './delivery/deliverers.js';
import { startDeliveryWorker, type DeliveryWorker } from './delivery/worker.js';
import { LaneHandoff } from './delivery/lane-handoff.js';
import { GroupCommit } from './store/group-commit.js';
import { writeUserMessagesOrEach, type UserMessageWrite, type UserMessageWritten } from './handover/accept-user-messages.js';
import { startAnswerTimer } from './handover/timers.js';
import { createDeskConsoles } from './desk/consoles.js';
import { startStreamSupervisor, type StreamSupervisor } from './connectors/stream-supervisor.js';
import type { Deps } from './handover/deps.js';
import { UserIdDigests } from './privacy/user-digest.js';
import { createApiKeyAuthenticator } from './tenants/tenants.js';
import { buildApp } from './http/app.js';
import { AppError } from './resilience/errors.js';
import { AdmissionController } from './resilience/admission.js';
import { ConnectorLatency } from './resilience/connector-latency.js';
import { ConnectorHealth } from './resilience/circuit-breaker.js';
import { startLoadSignals } from './resilience/load-signals.js';
import { createMetrics } from './telemetry/metrics.js';
import { startBacklogSampler, type BacklogSampler } from './telemetry/backlog-sampler.js';
import type { DeliveryObserver } from './delivery/worker.js';
import { StatusService } from './telemetry/status-service.js';
import { startRetentionJob } from './privacy/retention.js';
import { startTracing, tracesUrl, type Tracing } from './telemetry/tracing.js';
import { openAttachments } from './attachments/open-attachments.js';

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
  /** Starts the outbox worker, the no-answer timer and the holder of connector streams. */
  startBackground(): void;
  /**
   * Stops them, letting deliveries in flight finish within `graceMs`. Held leases (connector streams,
   * the no-answer timer) are given back at once, unless `keepLeases` (as when the process dies: others
   * take them when the leases run out).
   */
  stopBackground(graceMs: number, options?: { keepLeases?: boolean }): Promise<void>;
  /** Connector streams (Salesforce) this instance holds now. */
  heldStreams(): string[];
  listen(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The composition root: opens the store, applies migrations, wires every part. `db` may be passed in
 * (tests give each run its own); the service then leaves closing it to the caller.
 */
export async function createService(config: Config, options: { db?: Db; log?: Logger; instanceId?: string } = {}): Promise<Service> {
  const log = options.log ?? createLogger(config.logLevel);
  // Refuse before touching the store: credentials must never be written without a key to seal them.
  if (config.database.url && config.secrets.keys.length === 0) {
    throw new ConfigError(['HANDOVER_SECRET_KEYS: required when DATABASE_URL is set (connector credentials are encrypted with it; every instance needs the same keys), e.g. `main:$(openssl rand -base64 32)`']);
  }
  if (config.secrets.currentKeyId && config.secrets.keys.length > 0 && !config.secrets.keys.some((k) => k.id === config.secrets.currentKeyId)) {
    throw new ConfigError([`HANDOVER_SECRET_KEY_ID: "${config.secrets.currentKeyId}" is not a key id in HANDOVER_SECRET_KEYS`]);
  }
  const ownsDb = !options.db;
  const db =
    options.db ??
    (await openDb(config.database, {
      onIdleClientError: (err) => log.warn({ err }, 'an idle database connection failed; the pool replaces it'),
      onEmbeddedThreadLost: (err) => log.fatal({ err }, `${err.message} Every request that needs the database is answered database_unavailable until then.`),
    }));
  await migrate(db, { log: (m: string) => log.info(m) });

  let adminToken = config.adminToken;
  let adminTokenGenerated = false;
  if (!adminToken) {
    const ensured = await ensureAdminToken(config.database.dataDir);
    adminToken = ensured.token;
    adminTokenGenerated = ensured.generated;
  }

  let secretKeys = config.secrets.keys;
  if (secretKeys.length === 0) {
    const ensured = await ensureSecretKeys(config.database.dataDir);
    secretKeys = ensured.keys;
    if (ensured.generated) log.info({ path: ensured.path }, `generated the key that encrypts connector credentials, kept in ${ensured.path}; keep it with the data`);
  }
  const secrets = new SecretBox(secretKeys, config.secrets.currentKeyId);
  const dispatcher = createOutboundAgent(config.delivery.timeoutMs, config.outbound);
  // How fast each agent-side system answers: `slow` is a state of its own (docs/observability.md).
  const latency = new ConnectorLatency(config.connectors.latency);
  const connectors = new Connectors(db, connectorDefinitions(dispatcher, config.outbound), log, config.delivery.timeoutMs, secrets, (id, objective) => latency.configure(id, objective));
  // Before anything starts running: a credential no configured key can open stops the start here.
  try {
    const resealed = await connectors.sealStoredSecrets();
    if (resealed > 0) log.info({ connectors: resealed }, `encrypted the credentials of ${resealed} connector(s) under key ${secrets.currentKeyId}`);
  } catch (err) {
    await dispatcher.close();
    if (ownsDb) await db.close();
    throw err;
  }

  const instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  let onBusPublishFailure: () => void = () => {};
  const bus: Bus = config.redis.url
    ? createRedisBus({
        url: config.redis.url,
        prefix: config.redis.prefix,
        instanceId,
        log: log.child({ part: 'bus' }),
        timeoutMs: config.redis.timeoutMs,
        degradedWakeMs: config.redis.degradedPollMs,
        onPublishFailure: () => onBusPublishFailure(),
      })
    : createLocalBus((err) => log.error({ err }, 'bus handler failed'));
  const circuitStates = { closed: 0, half_open: 1, open: 2 } as const;
  let onCircuitChange: (connectorId: string, state: keyof typeof circuitStates) => void = () => {};
  const health = new ConnectorHealth(
    { failureThreshold: config.connectors.failureThreshold, cooldownMs: config.connectors.cooldownMs, maxInflightPerConnector: config.connectors.maxInflight },
    (connectorId, state) => onCircuitChange(connectorId, state),
  );
  // The accept path: user messages that arrive together share one statement and one commit, and an
  // idle lane they fill goes straight to this instance's worker (docs/performance.md).
  const handoff = new LaneHandoff(instanceId, config.delivery.leaseMs);
  const userMessages = new GroupCommit<UserMessageWrite, UserMessageWritten>(
    { maxBatch: config.accept.batchMax, maxWaitMs: config.accept.batchWaitMs, maxConcurrent: db.kind === 'pglite' ? 1 : config.accept.batchConcurrency, maxQueued: config.accept.maxQueued },
    (write) => write.handoverId,
    (batch) => writeUserMessagesOrEach(db, batch, config.delivery.maxAttempts, handoff),
  );
  const deskConsoles = createDeskConsoles({ db, bus, log: log.child({ part: 'desk' }), instanceId, graceMs: config.desk.presenceGraceMs });
  const deps: Deps = { db, bus, log, config, now: () => new Date(), userIds: new UserIdDigests(secretKeys, secrets.currentKeyId), deskConsoles, connectorState: (id) => health.state(id), connectorLatency: (id) => latency.verdict(id), userMessages };
  deps.attachments = openAttachments(config, secretKeys, secrets.currentKeyId);
  const signals = startLoadSignals();
  let onReject: (cause: string) => void = () => {};
  // The embedded store's group commit is one batch at a time on one connection: its latency hardly
  // moves with concurrency, so a tight target would hold the limit at its floor (docs/overload.md).
  const admission = new AdmissionController(config.admission, signals, (cause) => onReject(cause), db.kind === 'pglite' ? 150 : 50);
  const metrics = createMetrics(
    { admission, signals, bus, db },
    // Slices of 1–10 s: fine enough for the status window, at most 3600 per hour in memory.
    { windowSliceMs: Math.min(10_000, Math.max(1000, config.status.sampleMs)), poolSize: config.database.poolSize, admissionStuckMs: config.admission.stuckMs },
  );
  deps.funnel = metrics.funnel;
  onReject = (cause) => metrics.admissionRejections.inc({ cause });
  onBusPublishFailure = () => metrics.busPublishFailures.inc();
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
      circuitState: (id) => health.state(id),
      latency,
      database: async () => {
        try {
          await db.ping();
          return { ok: true };
        } catch (err) {
          const error = err instanceof AppError ? err : new AppError('database_unavailable', { message: (err as Error).message });
          return { ok: false, code: error.code, message: error.message };
        }
      },
      ...(config.redis.url ? { bus: { health: () => bus.health(), pollMs: config.redis.degradedPollMs } } : {}),
      checks: () => checks.latest(),
    },
  );
  onCircuitChange = (connectorId, state) => {
    status.connectorSeen(connectorId);
    metrics.connectorCircuitState.set({ connector_id: connectorId }, circuitStates[state]);
    log.warn({ connectorId, circuit: state }, `connector ${connectorId} circuit is now ${state}`);
  };
  const availabilityCache = new AvailabilityCache(
    async (id) => (await connectors.get(id)).connector,
    { refreshMs: config.connectors.availabilityRefreshMs, maxAgeMs: config.connectors.availabilityMaxAgeMs, timeoutMs: config.delivery.timeoutMs, maxEntries: 10_000, quoteAnswers: !config.redactContent },
    log.child({ part: 'availability' }),
  );
  deps.agentAvailability = (id) => availabilityCache.peek(id);
  deps.connectorChecks = (tenantId) => checks.latest(tenantId);
  const checkMetrics = createCheckMetrics(metrics.registry);
  const checks = new ConnectorChecks(
    db,
    async (id) => (await connectors.get(id)).connector,
    { intervalMs: config.connectors.checkIntervalMs, timeoutMs: config.delivery.timeoutMs, concurrency: config.connectors.checkConcurrency, maxConnectors: 10_000, quoteAnswers: !config.redactContent },
    log.child({ part: 'connector-checks' }),
    (line) => checkMetrics.record(line),
    (id) => checkMetrics.forget(id),
  );

  // Off unless a collector is configured; the SDK is loaded only then (and before the app, whose
  // request spans depend on it).
  const traces = tracesUrl(config.tracing);
  const tracing: Tracing | null = traces ? await startTracing({ url: traces, instanceId, serviceName: config.tracing.serviceName, sampler: config.tracing.sampler, samplerRatio: config.tracing.samplerRatio, headers: config.tracing.headers }, log.child({ part: 'tracing' })) : null;

  const app = await buildApp({
    deps,
    connectors,
    adminToken,
    admission,
    metrics,
    status,
    authenticateApiKey: createApiKeyAuthenticator(db, { ttlMs: config.http.apiKeyCacheMs, maxEntries: 10_000 }, deps.bus),
    async ready() {
      try {
        await db.ping();
        const pending = await pendingMigrations(db);
        if (pending.length > 0) return { ok: false, code: 'database_unavailable', message: `Migrations not applied yet: ${pending.join(', ')}.` };
        return { ok: true };
      } catch (err) {
        if (err instanceof AppError) return { ok: false, code: err.code, message: err.message };
        return { ok: false, code: 'database_unavailable', message: (err as Error).message };
      }
    },
  });

  const deliveryObserver: DeliveryObserver = {
    attempted(row, outcome, seconds) {
      if (row.target === 'agent' && row.connector_id) status.connectorSeen(row.connector_id);
      if (row.target === 'agent') metrics.delivery.connectorCall(row.connector_id ?? '', outcome, seconds);
      else metrics.delivery.botWebhookCall(outcome, seconds);
      if (row.target === 'agent' && row.connector_id) latency.call(row.connector_id, seconds * 1000);
      if (outcome !== 'ok') return;
      const lag = Math.max(0, (Date.now() - new Date(row.created_at).getTime()) / 1000);
      metrics.delivery.delivered(row.target === 'agent' ? 'to_agent' : 'to_bot', lag);
      metrics.delivery.lag(row.target === 'agent' ? (row.connector_id ?? '') : '', row.target, lag);
      if (row.target === 'agent' && row.connector_id) latency.delivered(row.connector_id, lag * 1000);
    },
  };
  let backlog: BacklogSampler | null = null;
  let worker: DeliveryWorker | null = null;
  let timer: ReturnType<typeof startAnswerTimer> | null = null;
  let retention: ReturnType<typeof startRetentionJob> | null = null;
  let streams: StreamSupervisor | null = null;

  const service: Service = {
    app,
    instanceId,
    deps,
    connectors,
    checks,
    adminToken,
    adminTokenGenerated,
    startBackground() {
      if (worker) return;
      worker = startDeliveryWorker({
        db,
        bus,
        log: log.child({ part: 'delivery' }),
        instanceId,
        concurrency: config.delivery.concurrency,
        leaseMs: config.delivery.leaseMs,
        timeoutMs: config.delivery.timeoutMs,
        pollIntervalMs: config.delivery.pollIntervalMs,
        retryBaseMs: config.delivery.retryBaseMs,
        retryMaxMs: config.delivery.retryMaxMs,
        deliverers: deliverers(deps, connectors, dispatcher),
        health,
        quoteAnswers: !config.redactContent,
        observer: deliveryObserver,
        handoff,
      });
      backlog = startBacklogSampler(db, config.status.sampleMs, log, (samples) => metrics.delivery.setBacklog(samples));
      status.useBacklog(backlog);
      status.start();
      checks.start();
      timer = startAnswerTimer(deps, config.desk.timerIntervalMs, instanceId);
      retention = startRetentionJob(deps, config.desk.retentionIntervalMs, instanceId);
      streams = startStreamSupervisor({ deps, connectors, instanceId, leaseMs: config.streams.leaseMs, tickMs: config.streams.tickMs, maxStreams: config.streams.maxPerInstance });
    },
    async stopBackground(graceMs, options = {}) {
      const [w, t, s, r] = [worker, timer, streams, retention];
      worker = null;
      timer = null;
      streams = null;
      retention = null;
      backlog?.stop();
      backlog = null;
      status.stop();
      const release = !options.keepLeases;
      await Promise.all([w?.stop(graceMs), t?.stop({ release }), s?.stop({ release }), r?.stop({ release }), checks.stop()]);
    },
    heldStreams() {
      return streams?.held() ?? [];
    },
    async listen() {
      const address = await app.listen({ port: config.port, host: config.host });
      service.startBackground();
      return address;
    },
    async stop() {
      // Stop taking requests first, then let deliveries finish, then close what they use.
      admission.drain();
      await app.close();
      // The consoles' streams have ended with the app: their last counts are written (they lapse after the grace).
      await deskConsoles.stop();
      signals.stop();
      availabilityCache.stop();
      await service.stopBackground(config.http.shutdownGraceMs);
      await bus.close();
      await dispatcher.close();
      await deps.attachments?.store.close();
      if (ownsDb) await db.close();
      // Last, so the spans of the shutdown itself are sent; the exporter's own timeout bounds it.
      await tracing?.shutdown().catch((err: unknown) => log.warn({ err }, 'sending the last spans failed'));
    },
  };
  return service;
}
