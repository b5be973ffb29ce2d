/**
 * Every setting of the service, parsed once at start from the environment. Nothing else in the code reads
 * `process.env`. All invalid settings are reported at once. Every default is listed in docs/configuration.md
 * (a test keeps that page in step with this table).
 */
export interface Config {
  port: number;
  host: string;
  /** Where bots and helpdesks reach this service; used to build inbound webhook URLs. */
  publicUrl: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  adminToken: string | undefined;
  database: {
    url: string | undefined;
    dataDir: string;
    poolSize: number;
    poolTimeoutMs: number;
    statementTimeoutMs: number;
    idleInTransactionTimeoutMs: number;
  };
  redisUrl: string | undefined;
  http: {
    bodyLimitBytes: number;
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
    shutdownGraceMs: number;
  };
  delivery: {
    concurrency: number;
    maxAttempts: number;
    retryBaseMs: number;
    retryMaxMs: number;
    timeoutMs: number;
    pollIntervalMs: number;
    leaseMs: number;
  };
  desk: {
    sessionTtlSeconds: number;
    timerIntervalMs: number;
  };
}

interface Setting {
  env: string;
  default: string | undefined;
  doc: string;
  parse: (raw: string) => unknown;
}

const int = (min: number, max: number) => (raw: string) => {
  if (!/^-?\d+$/.test(raw.trim())) throw new Error(`expected a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new Error(`expected ${min}..${max}, got ${value}`);
  return value;
};
const text = (raw: string) => raw;
const optionalText = (raw: string) => (raw.trim() === '' ? undefined : raw.trim());
const url = (raw: string) => {
  if (raw.trim() === '') return undefined;
  try {
    return new URL(raw).toString().replace(/\/$/, '');
  } catch {
    throw new Error(`not a URL: "${raw}"`);
  }
};
const oneOf =
  (...values: string[]) =>
  (raw: string) => {
    if (!values.includes(raw)) throw new Error(`expected one of ${values.join(', ')}, got "${raw}"`);
    return raw;
  };

/** The settings table: env name → default and meaning. Keys are dotted paths into Config. */
export const settings: Record<string, Setting> = {
  port: { env: 'PORT', default: '8080', doc: 'TCP port of the HTTP server.', parse: int(0, 65535) },
  host: { env: 'HOST', default: '127.0.0.1', doc: 'Address to listen on; `0.0.0.0` in containers.', parse: text },
  publicUrl: { env: 'HANDOVER_PUBLIC_URL', default: '', doc: 'Base URL others use to reach this service (inbound webhook URLs); default `http://localhost:PORT`.', parse: url },
  logLevel: { env: 'HANDOVER_LOG_LEVEL', default: 'info', doc: 'fatal, error, warn, info, debug, trace or silent.', parse: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent') },
  adminToken: { env: 'HANDOVER_ADMIN_TOKEN', default: '', doc: 'Bearer token of the admin API. Required with DATABASE_URL; in embedded mode one is generated on first start and kept in the data directory.', parse: optionalText },
  'database.url': { env: 'DATABASE_URL', default: '', doc: 'PostgreSQL URL. Unset or empty: the embedded store (PGlite) in HANDOVER_DATA_DIR.', parse: optionalText },
  'database.dataDir': { env: 'HANDOVER_DATA_DIR', default: './.handover', doc: 'Directory of the embedded store and the generated admin token.', parse: text },
  'database.poolSize': { env: 'HANDOVER_DB_POOL_SIZE', default: '10', doc: 'PostgreSQL connections per instance.', parse: int(1, 500) },
  'database.poolTimeoutMs': { env: 'HANDOVER_DB_POOL_TIMEOUT_MS', default: '2000', doc: 'Longest wait for a free pooled connection before `database_pool_exhausted`.', parse: int(10, 60000) },
  'database.statementTimeoutMs': { env: 'HANDOVER_DB_STATEMENT_TIMEOUT_MS', default: '5000', doc: 'Longest a single SQL statement may run.', parse: int(10, 600000) },
  'database.idleInTransactionTimeoutMs': { env: 'HANDOVER_DB_IDLE_TX_TIMEOUT_MS', default: '10000', doc: 'A transaction left idle this long is ended by the server.', parse: int(100, 600000) },
  redisUrl: { env: 'REDIS_URL', default: '', doc: 'Redis URL for fan-out between instances; unset: in-process only.', parse: url },
  'http.bodyLimitBytes': { env: 'HANDOVER_BODY_LIMIT_BYTES', default: '262144', doc: 'Largest request body accepted (`body_too_large` above).', parse: int(1024, 16 * 1024 * 1024) },
  'http.requestTimeoutMs': { env: 'HANDOVER_REQUEST_TIMEOUT_MS', default: '10000', doc: 'Longest time to receive a whole request (slow clients are cut off).', parse: int(100, 600000) },
  'http.keepAliveTimeoutMs': { env: 'HANDOVER_KEEP_ALIVE_TIMEOUT_MS', default: '72000', doc: 'Idle keep-alive timeout; longer than common load balancer idle timeouts (60 s) to avoid sporadic 502s.', parse: int(1000, 600000) },
  'http.shutdownGraceMs': { env: 'HANDOVER_SHUTDOWN_GRACE_MS', default: '15000', doc: 'On SIGTERM, how long in-flight requests and deliveries may take to finish.', parse: int(0, 600000) },
  'delivery.concurrency': { env: 'HANDOVER_DELIVERY_CONCURRENCY', default: '16', doc: 'Lanes (handover × side) delivered in parallel per instance.', parse: int(1, 1000) },
  'delivery.maxAttempts': { env: 'HANDOVER_DELIVERY_MAX_ATTEMPTS', default: '10', doc: 'Tries per outbox item before it is given up (the handover then fails, the bot is told).', parse: int(1, 100) },
  'delivery.retryBaseMs': { env: 'HANDOVER_DELIVERY_RETRY_BASE_MS', default: '500', doc: 'First retry delay; doubles per attempt, with full jitter.', parse: int(1, 600000) },
  'delivery.retryMaxMs': { env: 'HANDOVER_DELIVERY_RETRY_MAX_MS', default: '60000', doc: 'Longest delay between two tries.', parse: int(1, 3600000) },
  'delivery.timeoutMs': { env: 'HANDOVER_DELIVERY_TIMEOUT_MS', default: '10000', doc: 'Deadline of one outbound call (connect, headers and body).', parse: int(100, 120000) },
  'delivery.pollIntervalMs': { env: 'HANDOVER_DELIVERY_POLL_MS', default: '1000', doc: 'Safety-net poll of the outbox when no wake-up arrives.', parse: int(10, 60000) },
  'delivery.leaseMs': { env: 'HANDOVER_DELIVERY_LEASE_MS', default: '30000', doc: 'How long a claimed lane stays with one worker before another may take it.', parse: int(1000, 600000) },
  'desk.sessionTtlSeconds': { env: 'HANDOVER_SESSION_TTL_SECONDS', default: '43200', doc: 'Lifetime of an agent session.', parse: int(60, 30 * 86400) },
  'desk.timerIntervalMs': { env: 'HANDOVER_TIMER_INTERVAL_MS', default: '1000', doc: 'How often no-answer deadlines are checked.', parse: int(10, 60000) },
};

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Builds the config from an environment map (process.env at start; a plain object in tests) plus
 * overrides by dotted key. Throws ConfigError listing every problem.
 */
export function loadConfig(env: Record<string, string | undefined>, overrides: Partial<Record<string, unknown>> = {}): Config {
  const problems: string[] = [];
  const flat: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(settings)) {
    if (key in overrides) {
      flat[key] = overrides[key];
      continue;
    }
    const raw = env[setting.env] ?? setting.default ?? '';
    try {
      flat[key] = setting.parse(raw);
    } catch (err) {
      problems.push(`${setting.env}: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const config = unflatten(flat) as unknown as Config;
  config.publicUrl ??= `http://localhost:${config.port}`;
  if (config.database.url && !config.adminToken) {
    throw new ConfigError(['HANDOVER_ADMIN_TOKEN: required when DATABASE_URL is set (instances share it)']);
  }
  return config;
}

function unflatten(flat: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(flat)) {
    const parts = key.split('.');
    let node = out;
    for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
    node[parts.at(-1)!] = value;
  }
  return out;
}

/** The environment of this process: the one place it is read. */
export function processEnv(): Record<string, string | undefined> {
  return process.env;
}

/** Settings of the CLI's client commands, which talk to a running instance over HTTP. */
export interface CliConfig {
  url: string;
  adminToken: string | undefined;
  dataDir: string;
}

export function loadCliConfig(env: Record<string, string | undefined>): CliConfig {
  const port = env.PORT && /^\d+$/.test(env.PORT) ? env.PORT : (settings.port!.default ?? '8080');
  return {
    url: (env.HANDOVER_URL ?? `http://127.0.0.1:${port}`).replace(/\/$/, ''),
    adminToken: env.HANDOVER_ADMIN_TOKEN || undefined,
    dataDir: env.HANDOVER_DATA_DIR ?? settings['database.dataDir']!.default!,
  };
}
