import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Config } from '../config/config.js';
import { ConfigError } from '../config/config.js';
import { ensureAdminToken } from '../config/admin-token.js';
import { ensureSecretKeys } from '../config/secret-key.js';
import type { SecretKey } from '../config/secret-box.js';
import type { Connectors } from '../connectors/connector-store.js';
import { PLANNER_SETTINGS, type Db, type PgConnection } from '../store/db.js';
import { openDb } from '../store/open-db.js';
import { pendingMigrations } from '../store/migrate.js';
import { createLocalBus } from '../bus/local-bus.js';
import { createRedisBus } from '../bus/redis-bus.js';
import type { Bus } from '../bus/bus.js';
import type { Logger } from '../telemetry/logger.js';
import { startTracing, tracesUrl, type Tracing } from '../telemetry/tracing.js';
import { AppError, type ErrorCode } from '../resilience/errors.js';
import type { Readiness } from '../http/routes/ops-routes.js';
import type { ServiceEvents } from './events.js';

/** The steps of a start that are more than a line, in the order the service takes them (service.ts). */

/** Refused before anything opens: credentials must never be written without a key to seal them. */
export function checkSecretKeySettings(config: Config): void {
  if (config.database.url && config.secrets.keys.length === 0) {
    throw new ConfigError([
      'HANDOVER_SECRET_KEYS: required when DATABASE_URL is set (connector credentials are encrypted with it; every instance needs the same keys), e.g. `main:$(openssl rand -base64 32)`',
    ]);
  }
  if (config.secrets.currentKeyId && config.secrets.keys.length > 0 && !config.secrets.keys.some((k) => k.id === config.secrets.currentKeyId)) {
    throw new ConfigError([`HANDOVER_SECRET_KEY_ID: "${config.secrets.currentKeyId}" is not a key id in HANDOVER_SECRET_KEYS`]);
  }
}

/** Off (null) unless a collector is configured: the SDK is loaded only then. */
export async function startTracingIfConfigured(config: Config, instanceId: string, log: Logger): Promise<Tracing | null> {
  const url = tracesUrl(config.tracing);
  if (!url) return null;
  const { serviceName, sampler, samplerRatio, headers } = config.tracing;
  return startTracing({ url, instanceId, serviceName, sampler, samplerRatio, headers }, log.child({ part: 'tracing' }));
}

export function openStore(config: Config, log: Logger): Promise<Db> {
  return openDb(config.database, {
    onIdleClientError: (err) => log.warn({ err }, 'an idle database connection failed; the pool drops it and opens another when one is needed'),
    onEmbeddedThreadLost: (err) => log.fatal({ err }, `${err.message} Every request that needs the database is answered database_unavailable until then.`),
  });
}

/** The configured admin token, or the one kept in the data directory (made on the first start). */
export async function adminTokenOf(config: Config): Promise<{ token: string; generated: boolean }> {
  if (config.adminToken) return { token: config.adminToken, generated: false };
  return ensureAdminToken(config.database.dataDir);
}

/** The configured keys that seal connector credentials, or the one kept in the data directory. */
export async function secretKeysOf(config: Config, log: Logger): Promise<SecretKey[]> {
  if (config.secrets.keys.length > 0) return config.secrets.keys;
  const ensured = await ensureSecretKeys(config.database.dataDir);
  if (ensured.generated)
    log.info({ path: ensured.path }, `generated the key that encrypts connector credentials, kept in ${ensured.path}; keep it with the data`);
  return ensured.keys;
}

/** Before anything runs: a credential no configured key can open stops the start here. */
export async function sealStoredCredentials(connectors: Connectors, currentKeyId: string, log: Logger): Promise<void> {
  const resealed = await connectors.sealStoredSecrets();
  if (resealed > 0) log.info({ connectors: resealed }, `encrypted the credentials of ${resealed} connector(s) under key ${currentKeyId}`);
}

/** Redis between instances when configured, else in process. */
export function openBus(config: Config, instanceId: string, events: ServiceEvents, log: Logger): Bus {
  if (!config.redis.url) return createLocalBus((err) => log.error({ err }, 'bus handler failed'));
  return createRedisBus({
    url: config.redis.url,
    prefix: config.redis.prefix,
    instanceId,
    log: log.child({ part: 'bus' }),
    timeoutMs: config.redis.timeoutMs,
    degradedWakeMs: config.redis.degradedPollMs,
    onPublishFailure: () => events.emit('bus:publishFailed', {}),
  });
}

/**
 * Warns, once at start, when the database sessions do not run with the planner settings the hot path's
 * prepared statements rely on (PLANNER_SETTINGS): an operator's own `options`, or a pooler that drops
 * start-up parameters, may have left them out. Answers the settings that differ.
 */
export async function checkPlannerSettings(db: Db, log: Logger): Promise<string[]> {
  const differing: string[] = [];
  for (const [name, value] of PLANNER_SETTINGS) {
    const { rows } = await db.query<{ value: string }>('select current_setting($1) as value', [name]);
    if (rows[0]?.value !== value) differing.push(`${name} = ${rows[0]?.value ?? 'unknown'}`);
  }
  if (differing.length > 0) {
    log.warn(
      { settings: differing, expected: PLANNER_SETTINGS.map(([name, value]) => `${name} = ${value}`) },
      'the database sessions run without the planner settings the service sets: the hot path statements may read whole tables as they grow (docs/deploy.md, "Database connections")',
    );
  }
  return differing;
}

/**
 * Warns, once at start, when the database's sessions commit without waiting for the disk: a `202` is then
 * not durable, whatever the service does (docs/architecture.md, "Invariants"). `synchronous_commit = off`
 * (a server's, a role's, or an operator's `options`) may lose the last commits in a crash of the database;
 * `fsync` or `full_page_writes` off may corrupt it. Answers the settings that do so.
 */
export async function checkDurabilitySettings(db: Db, log: Logger): Promise<string[]> {
  const { rows } = await db.query<{ fsync: string; synchronous_commit: string; full_page_writes: string }>(
    `select current_setting('fsync') as fsync, current_setting('synchronous_commit') as synchronous_commit,
            current_setting('full_page_writes') as full_page_writes`,
  );
  const row = rows[0]!;
  const unsafe = (['fsync', 'synchronous_commit', 'full_page_writes'] as const).filter((name) => row[name] === 'off').map((name) => `${name} = off`);
  if (unsafe.length > 0) {
    log.warn(
      { settings: unsafe },
      'the database sessions commit without waiting for the disk: a message answered 202 may be lost in a crash of the database or its machine (docs/deploy.md, "Database connections")',
    );
  }
  return unsafe;
}

/**
 * This round's check that the database answers (the status page), and whether a failure is the
 * database being busy (databaseBusy) rather than out of reach.
 */
export async function databaseAnswers(db: Db): Promise<Readiness | { ok: false; code: ErrorCode; message: string; busy: boolean }> {
  try {
    await db.ping();
    return { ok: true };
  } catch (err) {
    const error = asDatabaseError(err);
    return { ok: false, code: error.code, message: error.message, busy: databaseBusy(error) };
  }
}

/** What a failed database call is answered as: its own catalogued error, or `database_unavailable`. */
function asDatabaseError(err: unknown): AppError {
  return err instanceof AppError ? err : new AppError('database_unavailable', { message: (err as Error).message });
}

/**
 * Busy, not cut off: the pool's wait ran out, or the server itself ended a statement at its timeout
 * (a SQLSTATE from the server). A connection that got no answer at all (the client's read timeout: a
 * partition, a hung server) is not busy, and readiness fails on it.
 */
function databaseBusy(err: AppError): boolean {
  if (err.code === 'database_pool_exhausted') return true;
  const cause = err.cause as { code?: unknown } | undefined;
  return err.code === 'database_timeout' && typeof cause?.code === 'string' && /^[0-9A-Z]{5}$/.test(cause.code);
}

/**
 * Readiness: the database answers and every migration this code knows is applied. A busy database
 * (databaseBusy) keeps the instance ready: under load every instance's pool is busy at once,
 * and taking them all out of rotation would turn honest 503s into refused connections.
 */
export async function databaseReady(db: Db): Promise<Readiness> {
  try {
    await db.ping();
    const pending = await pendingMigrations(db);
    if (pending.length > 0) return { ok: false, code: 'database_unavailable', message: `Migrations not applied yet: ${pending.join(', ')}.` };
    return { ok: true };
  } catch (err) {
    const error = asDatabaseError(err);
    return databaseBusy(error) ? { ok: true } : { ok: false, code: error.code, message: error.message };
  }
}

/**
 * Cores this process may use: those it may run on, and no more than its container's CPU quota (cgroup
 * v2 `cpu.max`, or v1's `cfs_quota_us` / `cfs_period_us`), which Node's count does not see.
 */
export function usableCores(): number {
  const cores = availableParallelism();
  const quota = cgroupCpuQuota();
  return quota === null ? cores : Math.max(1, Math.min(cores, Math.floor(quota)));
}

function cgroupCpuQuota(): number | null {
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8').trim();
    } catch {
      return null;
    }
  };
  const v2 = read('/sys/fs/cgroup/cpu.max');
  if (v2 !== null) {
    const [quota, period] = v2.split(' ');
    return quota === 'max' || !Number(period) ? null : Number(quota) / Number(period);
  }
  const quota = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'));
  const period = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us'));
  return quota > 0 && period > 0 ? quota / period : null;
}

/**
 * Whether the delivery worker gets a thread of its own (HANDOVER_DELIVERY_THREAD), and then how it
 * reaches the database: PostgreSQL with a pool of its own (`connection`); the embedded store, whose one
 * connection is in its own thread, on a session of its own of that thread (`connection: null`,
 * pglite-sessions.ts).
 *
 * `auto`: always on PostgreSQL. On the embedded store with three cores or more; with two where the
 * thread runs at a lower priority than the HTTP thread (Linux, HANDOVER_DELIVERY_THREAD_NICE above 0),
 * so that when the cores are full the thread that answers and refuses requests goes first: measured
 * on two cores, the overload step then served more and answered sooner, where with the thread at the
 * HTTP thread's priority a third busy thread cost more than it saved (docs/performance.md, "The
 * delivery worker in its own thread"). With one core, never.
 */
export function deliveryInThread(
  setting: Config['delivery']['thread'],
  connection: PgConnection | undefined,
  machine: { cores: number; lowerPriority: boolean },
): { connection: PgConnection | null } | null {
  if (setting === 'off') return null;
  if (setting === 'auto' && !connection && machine.cores < (machine.lowerPriority ? 2 : 3)) return null;
  return { connection: connection ?? null };
}
