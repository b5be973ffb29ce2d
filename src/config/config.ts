import { parseSecretKeys } from './secret-box.js';

/**
 * Every setting of the service, parsed once at start from the environment. Nothing else in the code reads
 * `process.env`. All invalid settings are reported at once. Every default is listed in docs/configuration.md
 * (a test keeps that page in step with this table).
 *
 * The table below is the only description of a setting: `Config`'s type is derived from it (a dotted key
 * is a path, the value what its `parse` returns), so the two cannot drift. The loaded config is frozen.
 */
interface Setting<T = unknown> {
  env: string;
  default: string | undefined;
  doc: string;
  parse: (raw: string) => T;
}

const int = (min: number, max: number) => (raw: string) => {
  if (!/^-?\d+$/.test(raw.trim())) throw new Error(`expected a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new Error(`expected ${min}..${max}, got ${value}`);
  return value;
};
const bool = (raw: string) => {
  if (/^(true|1|yes|on)$/i.test(raw.trim())) return true;
  if (/^(false|0|no|off)$/i.test(raw.trim())) return false;
  throw new Error(`expected true or false, got "${raw}"`);
};
const ratio = (raw: string) => {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value <= 0 || value > 1) throw new Error(`expected a number in (0, 1], got "${raw}"`);
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
/**
 * Empty: no proxy; else a comma-separated list of addresses and CIDRs. No hop count: a count cannot tell
 * a proxy from a client connecting directly, which could then name any address it likes.
 */
const trustedProxies = (raw: string): false | string => {
  const value = raw.trim();
  if (value === '') return false;
  if (/^\d+$/.test(value))
    throw new Error(`a hop count ("${value}") cannot tell a proxy from a client connecting directly: list the proxies' addresses or CIDRs`);
  const entries = value
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  const bad = entries.filter((e) => !/^[0-9A-Fa-f:.]+(\/\d{1,3})?$/.test(e) && !['loopback', 'linklocal', 'uniquelocal'].includes(e));
  if (bad.length > 0 || entries.length === 0) throw new Error(`expected proxy addresses or CIDRs, got ${bad.map((b) => `"${b}"`).join(', ') || '""'}`);
  return entries.join(',');
};
/** `key=value,key2=value2` (values percent-encoded), as OTEL_EXPORTER_OTLP_HEADERS is written. */
const headerList = (raw: string) => {
  const headers: Record<string, string> = {};
  for (const pair of raw
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error('expected key=value pairs separated by commas');
    try {
      headers[pair.slice(0, at).trim().toLowerCase()] = decodeURIComponent(pair.slice(at + 1).trim());
    } catch {
      throw new Error('a header value is not valid percent-encoding');
    }
  }
  return headers;
};
const optionalBool = (raw: string) => (raw.trim() === '' ? undefined : bool(raw));
const optionalInt = (min: number, max: number) => (raw: string) => (raw.trim() === '' ? undefined : int(min, max)(raw));
const oneOf =
  <const V extends string>(...values: V[]) =>
  (raw: string): V => {
    const value = values.find((v) => v === raw);
    if (value === undefined) throw new Error(`expected one of ${values.join(', ')}, got "${raw}"`);
    return value;
  };

/** `image/png,application/pdf` → the set of types, lower case. */
const attachmentTypes = (raw: string): ReadonlySet<string> => {
  const types = raw
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
  const bad = types.filter((t) => !/^[a-z0-9.+-]+\/[a-z0-9.+-]+$/.test(t));
  if (bad.length > 0) throw new Error(`expected media types such as image/png, got ${bad.map((b) => `"${b}"`).join(', ')}`);
  return new Set(types);
};

/** The settings table: env name → default and meaning. Keys are dotted paths into Config. */
export const settings = {
  port: { env: 'PORT', default: '8080', doc: 'TCP port of the HTTP server.', parse: int(0, 65535) },
  host: { env: 'HOST', default: '127.0.0.1', doc: 'Address to listen on; `0.0.0.0` in containers.', parse: text },
  publicUrl: {
    env: 'HANDOVER_PUBLIC_URL',
    default: '',
    doc: 'Base URL others use to reach this service (inbound webhook URLs); default `http://localhost:PORT`.',
    parse: url,
  },
  logLevel: {
    env: 'HANDOVER_LOG_LEVEL',
    default: 'info',
    doc: 'fatal, error, warn, info, debug, trace or silent.',
    parse: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
  },
  redactContent: {
    env: 'HANDOVER_REDACT_CONTENT',
    default: 'false',
    doc: "`true`: a helpdesk's or bot webhook's refusing answer is described (status, content type, size, top-level JSON field names, a vendor error code) instead of quoted, in logs, stored delivery errors and a failed handover's detail, so no message text they echo is kept there. `false`: the first 200 characters are quoted, for debugging. See docs/security.md.",
    parse: bool,
  },
  adminToken: {
    env: 'HANDOVER_ADMIN_TOKEN',
    default: '',
    doc: 'Bearer token of the admin API; several, comma-separated, are all accepted (to rotate: add the new one, move clients to it, check in GET /v1/admin/tokens that the old one is no longer used, remove it). Required with DATABASE_URL; in embedded mode one is generated on first start and kept in the data directory.',
    parse: optionalText,
  },
  metricsToken: {
    env: 'HANDOVER_METRICS_TOKEN',
    default: '',
    doc: 'When set, `/metrics` answers only requests with `Authorization: Bearer <token>` (several, comma-separated, for rotation); others get `401 unauthorized`. Unset: `/metrics` is open, so keep it off the public network (docs/security.md).',
    parse: optionalText,
  },
  'database.url': {
    env: 'DATABASE_URL',
    default: '',
    doc: 'PostgreSQL URL. Unset or empty: the embedded store (PGlite) in HANDOVER_DATA_DIR.',
    parse: optionalText,
  },
  'database.dataDir': { env: 'HANDOVER_DATA_DIR', default: './.handover', doc: 'Directory of the embedded store and the generated admin token.', parse: text },
  'database.poolSize': {
    env: 'HANDOVER_DB_POOL_SIZE',
    default: '10',
    doc: "PostgreSQL connections of an instance's HTTP thread; its delivery thread (HANDOVER_DELIVERY_THREAD) opens half as many more, at least 2, plus one per accept batch written at once (HANDOVER_ACCEPT_BATCH_CONCURRENCY): it writes the accept path's batches.",
    parse: int(1, 500),
  },
  'database.poolTimeoutMs': {
    env: 'HANDOVER_DB_POOL_TIMEOUT_MS',
    default: '2000',
    doc: 'Longest wait for a free pooled connection before `database_pool_exhausted`.',
    parse: int(10, 60000),
  },
  'database.statementTimeoutMs': {
    env: 'HANDOVER_DB_STATEMENT_TIMEOUT_MS',
    default: '5000',
    doc: 'Longest a single SQL statement may run.',
    parse: int(10, 600000),
  },
  'database.idleInTransactionTimeoutMs': {
    env: 'HANDOVER_DB_IDLE_TX_TIMEOUT_MS',
    default: '10000',
    doc: 'A transaction left idle this long is ended by the server.',
    parse: int(100, 600000),
  },
  'database.idleTimeoutMs': {
    env: 'HANDOVER_DB_IDLE_TIMEOUT_MS',
    default: '0',
    doc: "How long a PostgreSQL connection may sit idle in a pool before it is closed. 0: kept while the service runs. A connection opened again costs a new server process, its caches and every prepared statement again, and after a quiet spell the first burst paid that for every connection at once (at half capacity, from idle, a few hundred requests refused at its onset in most runs; docs/performance.md). Set it when the database's connection limit must be shared with instances that are idle, and below any idle timeout of the server or a pooler in front of it (PostgreSQL's `idle_session_timeout`, PgBouncer's `client_idle_timeout`, RDS Proxy's `IdleClientTimeout`), so that the pool closes its connections before they are closed under it; a pool never holds more than its size either way.",
    parse: int(0, 86_400_000),
  },
  'database.maxLifetimeMs': {
    env: 'HANDOVER_DB_MAX_LIFETIME_MS',
    default: '0',
    doc: "Most a PostgreSQL connection lives: once this old it is closed (at once when idle, else when it is given back to the pool) and the pool opens another on demand, so that connections spread again over what serves them (pooler replicas added, a failover's new address). 0: no limit. Whole seconds. Connections opened together expire together, so keep it long (30 minutes or more): each expiry is a new database session for the next request.",
    parse: int(0, 86_400_000),
  },
  'database.embeddedVacuumIntervalMs': {
    env: 'HANDOVER_EMBEDDED_VACUUM_INTERVAL_MS',
    default: '10000',
    doc: "Embedded store only: how often the instance looks for tables to vacuum and analyse, as PostgreSQL's autovacuum does for a server (the embedded store has none). A table is vacuumed once its dead rows exceed 50 + 20 % of its rows, and analysed once its changes since the last analysis exceed 50 + 10 %, autovacuum's default thresholds. It also freezes the database before its transaction ids grow old, and makes a checkpoint 5 minutes (with a megabyte of write-ahead log written since) or 512 MB of log after the last, as a server's checkpointer would. Without it, every message's delivered outbox item and its lane's old row version stay in the files for good, the planner never learns the tables' sizes, and the write-ahead log grows without end. 0: off.",
    parse: int(0, 86400000),
  },
  'database.preparedStatements': {
    env: 'HANDOVER_DB_PREPARED_STATEMENTS',
    default: 'true',
    doc: "PostgreSQL: prepare the hot path's statements (accepting messages, claiming and recording deliveries) once per connection instead of parsing and planning them on every call, which cost about three times their execution. Set `false` behind a pooler in transaction mode that cannot keep prepared statements (PgBouncer before 1.21, or without `max_prepared_statements`).",
    parse: bool,
  },
  'redis.url': { env: 'REDIS_URL', default: '', doc: 'Redis URL for fan-out between instances; unset: in-process only.', parse: url },
  'redis.prefix': {
    env: 'HANDOVER_REDIS_PREFIX',
    default: 'handover:',
    doc: 'Prefix of every Redis channel, so several installations can share one Redis.',
    parse: text,
  },
  'redis.timeoutMs': {
    env: 'HANDOVER_REDIS_TIMEOUT_MS',
    default: '1000',
    doc: 'Bound of connecting to Redis and of each command; Redis is never waited on longer.',
    parse: int(50, 60000),
  },
  'redis.degradedPollMs': {
    env: 'HANDOVER_REDIS_DEGRADED_POLL_MS',
    default: '2000',
    doc: 'While Redis is unreachable, how often streams, consoles and workers re-read the database instead.',
    parse: int(100, 60000),
  },
  'http.bodyLimitBytes': {
    env: 'HANDOVER_BODY_LIMIT_BYTES',
    default: '262144',
    doc: 'Largest request body accepted (`body_too_large` above).',
    parse: int(1024, 16 * 1024 * 1024),
  },
  'http.requestTimeoutMs': {
    env: 'HANDOVER_REQUEST_TIMEOUT_MS',
    default: '10000',
    doc: 'Longest time to receive a whole request (slow clients are cut off).',
    parse: int(100, 600000),
  },
  'http.keepAliveTimeoutMs': {
    env: 'HANDOVER_KEEP_ALIVE_TIMEOUT_MS',
    default: '72000',
    doc: 'Idle keep-alive timeout; longer than common load balancer idle timeouts (60 s) to avoid sporadic 502s.',
    parse: int(1000, 600000),
  },
  'http.trustProxy': {
    env: 'HANDOVER_TRUST_PROXY',
    default: '',
    doc: "The proxies in front of the service whose `X-Forwarded-For` is believed: comma-separated addresses or CIDRs (`10.0.0.0/8`, `loopback`); a number of hops is refused, as it cannot tell a proxy from a client. Unset: the client is the TCP peer. Behind a proxy, set it: the per-address guards (sign-in failures, slow uploads, unverified inbound requests, fair admission) and the audit log's addresses otherwise see the proxy, so one client's failures would count for everyone. Never list addresses clients can connect from directly: they could then name any address.",
    parse: trustedProxies,
  },
  'http.directMessages': {
    env: 'HANDOVER_HTTP_DIRECT_MESSAGES',
    default: 'true',
    doc: "A bot's plain text messages (`POST /v1/handovers/{id}/messages` without attachments) are served straight from Node's HTTP server instead of through the web framework, with the same checks and answers at about a fifth less CPU (docs/performance.md); every other request goes through the framework either way. `false` sends these through it too (always so while tracing is on).",
    parse: bool,
  },
  'http.apiKeyCacheMs': {
    env: 'HANDOVER_API_KEY_CACHE_MS',
    default: '30000',
    doc: 'How long an API key check is reused, counted from when it read the key: a revoked key stops working on other instances within this (on an instance cut off from Redis, within `HANDOVER_REDIS_DEGRADED_POLL_MS`, as every check is made again then). A key in use is checked again in the background during the last fifth of that time, and requests that bring a key not checked yet wait for one check between them rather than each send its own.',
    parse: int(0, 3600000),
  },
  'http.uploads.minBytesPerSecond': {
    env: 'HANDOVER_UPLOAD_MIN_BYTES_PER_SECOND',
    default: '1024',
    doc: "Slowest a request body may arrive, averaged over each HANDOVER_UPLOAD_WINDOW_MS (a body smaller than one window's worth must arrive whole within one window); slower: `408 upload_too_slow` and the connection is closed. Bodies are read whole before a request takes an admission slot, so a slow one costs a socket, never capacity.",
    parse: int(1, 100 * 1024 * 1024),
  },
  'http.uploads.windowMs': {
    env: 'HANDOVER_UPLOAD_WINDOW_MS',
    default: '5000',
    doc: 'Window over which HANDOVER_UPLOAD_MIN_BYTES_PER_SECOND is measured.',
    parse: int(100, 600000),
  },
  'http.uploads.maxPerAddress': {
    env: 'HANDOVER_UPLOAD_MAX_SLOW_PER_ADDRESS',
    default: '16',
    doc: 'Request bodies still arriving 100 ms after their head that one client address may send at once (more: `429 too_many_uploads`, connection closed). Small bodies arrive with their head and never count. Behind a proxy, set HANDOVER_TRUST_PROXY so clients are told apart (or let the proxy buffer bodies, as nginx does by default).',
    parse: int(1, 100000),
  },
  'http.streams.recheckMs': {
    env: 'HANDOVER_STREAM_RECHECK_MS',
    default: '5000',
    doc: 'How often an open event stream (`/v1/events`, `/v1/desk/events`) checks that its API key or desk session is still valid (besides at once on a revocation, sign-out or logout signal); a stream whose credential is gone gets a final coded event and is closed.',
    parse: int(100, 600000),
  },
  'http.streams.maxPerCredential': {
    env: 'HANDOVER_STREAMS_PER_CREDENTIAL',
    default: '16',
    doc: 'Event streams one API key (or one desk session) may hold open at once on one instance; more: `429 too_many_streams`.',
    parse: int(1, 100000),
  },
  'http.shutdownGraceMs': {
    env: 'HANDOVER_SHUTDOWN_GRACE_MS',
    default: '15000',
    doc: 'On SIGTERM, how long in-flight requests and deliveries may take to finish, one period for the whole stop (a part after one that used it up still gets 2 s); connections still open then are closed.',
    parse: int(0, 600000),
  },
  'delivery.concurrency': {
    env: 'HANDOVER_DELIVERY_CONCURRENCY',
    default: '256',
    doc: "Lanes (handover × side) delivered in parallel per instance. Each lane has one call in flight at a time (order), so this bounds delivered messages per second to about this many ÷ the helpdesk's answer time; a lane in flight costs memory, not a connection.",
    parse: int(1, 1000),
  },
  'delivery.maxAttempts': {
    env: 'HANDOVER_DELIVERY_MAX_ATTEMPTS',
    default: '10',
    doc: 'Tries per outbox item before it is given up (the handover then fails, the bot is told).',
    parse: int(1, 100),
  },
  'delivery.retryBaseMs': {
    env: 'HANDOVER_DELIVERY_RETRY_BASE_MS',
    default: '500',
    doc: 'First retry delay; doubles per attempt up to HANDOVER_DELIVERY_RETRY_MAX_MS, with equal jitter (half of each delay fixed, half random) so no retry comes at once; a Retry-After from the other side is honoured up to that maximum.',
    parse: int(1, 600000),
  },
  'delivery.retryMaxMs': { env: 'HANDOVER_DELIVERY_RETRY_MAX_MS', default: '60000', doc: 'Longest delay between two tries.', parse: int(1, 3600000) },
  'delivery.timeoutMs': {
    env: 'HANDOVER_DELIVERY_TIMEOUT_MS',
    default: '10000',
    doc: 'Deadline of one outbound call (connect, headers and body).',
    parse: int(100, 120000),
  },
  'delivery.pollIntervalMs': {
    env: 'HANDOVER_DELIVERY_POLL_MS',
    default: '1000',
    doc: 'Safety-net poll of the outbox when no wake-up arrives.',
    parse: int(10, 60000),
  },
  'delivery.leaseMs': {
    env: 'HANDOVER_DELIVERY_LEASE_MS',
    default: '30000',
    doc: 'How long a claimed lane stays with one worker before another may take it.',
    parse: int(1000, 600000),
  },
  'delivery.thread': {
    env: 'HANDOVER_DELIVERY_THREAD',
    default: 'auto',
    doc: "Where the delivery worker runs. `on`: in a thread of its own, with its own outbound pool, so calling helpdesks and bots takes no time from the thread that answers HTTP (on PostgreSQL with database connections of its own; on the embedded store with a session of its own of the database's thread, on which it also writes the accept path's batches). `off`: in the HTTP thread. `auto`: `on` with PostgreSQL; with the embedded store `on` where the process may use two cores or more and the thread can run at a lower priority than the HTTP thread (Linux, HANDOVER_DELIVERY_THREAD_NICE above 0, the process not already at nice 19), otherwise where it may use three or more (its container's CPU quota counts; its HTTP and database threads take two). See docs/performance.md.",
    parse: oneOf('auto', 'on', 'off'),
  },
  'delivery.threadNice': {
    env: 'HANDOVER_DELIVERY_THREAD_NICE',
    default: '10',
    doc: "How much lower the delivery thread's CPU priority is than the HTTP thread's, in `nice` steps (Linux only; 0: the same). When the cores are full, the thread that answers and refuses requests runs first and deliveries take what is left; on a machine with a core to spare it changes nothing. On PostgreSQL that thread also writes the accept path's batches, which then wait at its priority too: at 19 the closed loop fell by about a fifth. The process's own priority is not touched, nor that of its other threads. With 0 (or a process already at 19) `HANDOVER_DELIVERY_THREAD=auto` keeps the embedded store's deliveries in the HTTP thread on two cores. See docs/performance.md.",
    parse: int(0, 19),
  },
  'delivery.warmUpCalls': {
    env: 'HANDOVER_DELIVERY_WARM_UP_CALLS',
    default: '200',
    doc: 'Before an instance reports ready, its delivery worker makes this many signed webhook calls to a server of its own on the loopback interface (in the delivery thread, or on the HTTP thread where delivery runs there), so the first real deliveries run on code already optimised (nothing leaves the process, nothing is written, no span is made; not warmed: TLS; at most 3 s). A new instance offered half its capacity at once refused fewer of its first requests with it (docs/overload.md, "The start"). 0: off.',
    parse: int(0, 10000),
  },
  'accept.batchMax': {
    env: 'HANDOVER_ACCEPT_BATCH_MAX',
    default: '200',
    doc: 'Most messages written by one statement and one commit on the accept path (group commit).',
    parse: int(1, 5000),
  },
  'accept.batchWaitMs': {
    env: 'HANDOVER_ACCEPT_BATCH_WAIT_MS',
    default: '0',
    doc: 'How long a batch stays open for more messages; 0: until the end of the event-loop turn (no added latency when idle, larger batches under load as writes queue behind the ones in flight).',
    parse: int(0, 50),
  },
  'accept.batchConcurrency': {
    env: 'HANDOVER_ACCEPT_BATCH_CONCURRENCY',
    default: '4',
    doc: 'Most accept batches written at once (each holds one database connection while it runs; the embedded store runs one at a time anyway). A batch starts beside others only once those in flight have run HANDOVER_ACCEPT_BATCH_OVERLAP_MS.',
    parse: int(1, 64),
  },
  'accept.batchOverlapMs': {
    env: 'HANDOVER_ACCEPT_BATCH_OVERLAP_MS',
    default: '50',
    doc: 'How long the accept batches in flight must have run before another starts beside them (up to HANDOVER_ACCEPT_BATCH_CONCURRENCY). One at a time while the database keeps up: messages that arrive meanwhile form the next, larger batch, and the database spends less per message (docs/performance.md, "One accept batch at a time"); more when one is held up (a row lock held elsewhere, a slow commit), so the others do not wait for it. 0: as many as allowed whenever messages wait.',
    parse: int(0, 10000),
  },
  'accept.maxQueued': {
    env: 'HANDOVER_ACCEPT_MAX_QUEUED',
    default: '5000',
    doc: 'Most messages waiting for their batch; more are refused at once with `overloaded_queue_wait`.',
    parse: int(1, 1000000),
  },
  'desk.sessionTtlSeconds': { env: 'HANDOVER_SESSION_TTL_SECONDS', default: '43200', doc: 'Lifetime of an agent session.', parse: int(60, 30 * 86400) },
  'desk.passwordScryptLogN': {
    env: 'HANDOVER_PASSWORD_SCRYPT_LOG_N',
    default: '15',
    doc: 'scrypt cost of new agent passwords, as log2 of N (r=8, p=1): 15 takes about 60 ms here; raise it where sign-ins can afford more (each step doubles the time and memory). A stored hash keeps the cost it was made with, so a change applies to passwords set after it; unknown emails are checked against a decoy of this cost, so both take the same time.',
    parse: int(10, 20),
  },
  'desk.sessionIdleSeconds': {
    env: 'HANDOVER_SESSION_IDLE_SECONDS',
    default: '1800',
    doc: 'An agent session unused this long ends (an open console keeps it alive).',
    parse: int(5, 30 * 86400),
  },
  'desk.loginMaxFailures': {
    env: 'HANDOVER_LOGIN_MAX_FAILURES',
    default: '5',
    doc: 'Wrong passwords for one email from one client address after which that address is refused sign-ins for that email for HANDOVER_LOGIN_LOCK_SECONDS (per instance). The account itself is never locked, so nobody can lock an agent out.',
    parse: int(1, 1000),
  },
  'desk.loginLockSeconds': {
    env: 'HANDOVER_LOGIN_LOCK_SECONDS',
    default: '900',
    doc: 'How long an email refused at an address (and an address with too many failed sign-ins) stays refused.',
    parse: int(1, 86400),
  },
  'desk.loginMaxFailuresPerAddress': {
    env: 'HANDOVER_LOGIN_MAX_FAILURES_PER_ADDRESS',
    default: '30',
    doc: 'Failed sign-ins from one client address (any account, known or not) before that address is refused for HANDOVER_LOGIN_LOCK_SECONDS; counted per instance.',
    parse: int(1, 100000),
  },
  'desk.retentionIntervalMs': {
    env: 'HANDOVER_RETENTION_INTERVAL_MS',
    default: '3600000',
    doc: "How often conversations past their tenant's retention period (`retentionDays`) are deleted.",
    parse: int(1000, 86400000),
  },
  'desk.timerIntervalMs': { env: 'HANDOVER_TIMER_INTERVAL_MS', default: '1000', doc: 'How often no-answer deadlines are checked.', parse: int(10, 60000) },
  'desk.presenceGraceMs': {
    env: 'HANDOVER_PRESENCE_GRACE_MS',
    default: '15000',
    doc: 'An agent counts as online only while a desk console of theirs is open (its live stream), and for this long after the last one closed, so a reload or a network blip does not take them offline. Past it they stop counting for availability, and users waiting in a queue nobody online serves are told at once.',
    parse: int(500, 600000),
  },
  'desk.consoleRenewMs': {
    env: 'HANDOVER_DESK_STREAM_RENEW_MS',
    default: '60000',
    doc: "A desk console's live stream is ended this often with a `renew` event, and the console opens a new one at once. A console whose network vanished without closing its connection (a laptop put to sleep) never comes back, so it stops counting as online within this time plus HANDOVER_PRESENCE_GRACE_MS, instead of when the operating system gives the connection up (minutes).",
    parse: int(1000, 3600000),
  },
  'attachments.store': {
    env: 'HANDOVER_ATTACHMENT_STORE',
    default: '',
    doc: 'Where files attached to messages are kept: `disk` (under HANDOVER_ATTACHMENT_DIR), `s3` (an S3-compatible bucket, HANDOVER_S3_*) or `off` (uploads answer `409 attachments_off`). Unset: `disk` on the embedded store, `off` with DATABASE_URL (several instances need one store they all reach: `s3`, or `disk` on a shared volume).',
    parse: (raw: string) => (raw.trim() === '' ? undefined : oneOf('disk', 's3', 'off')(raw.trim())),
  },
  'attachments.dir': {
    env: 'HANDOVER_ATTACHMENT_DIR',
    default: '',
    doc: 'Directory of the `disk` attachment store. Unset: `attachments/` in HANDOVER_DATA_DIR.',
    parse: optionalText,
  },
  'attachments.maxBytes': {
    env: 'HANDOVER_ATTACHMENT_MAX_BYTES',
    default: '10485760',
    doc: 'Largest file one upload may bring (`413 body_too_large` above). Uploads are read whole before they are stored: this many bytes of memory per upload in flight.',
    parse: int(1, 100 * 1024 * 1024),
  },
  'attachments.types': {
    env: 'HANDOVER_ATTACHMENT_TYPES',
    default: 'image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain',
    doc: 'Comma-separated allow-list of file types, as read from the bytes themselves (magic numbers), never only as declared: a file of another type, or of none this service recognises, is `415 attachment_type_not_allowed`; one declared as another type than its bytes show is `415 attachment_type_mismatch`. Recognised: image/png, image/jpeg, image/gif, image/webp, application/pdf, application/zip, video/mp4, audio/mpeg, text/plain (also declared as text/csv or text/markdown).',
    parse: attachmentTypes,
  },
  'attachments.linkTtlSeconds': {
    env: 'HANDOVER_ATTACHMENT_LINK_TTL_SECONDS',
    default: '900',
    doc: 'How long a signed attachment link stays valid. The desk signs new ones each time it reads a chat; a bot whose link expired fetches the file with its API key (`GET /v1/handovers/{id}/attachments/{attachmentId}`).',
    parse: int(10, 7 * 86400),
  },
  'attachments.helpdeskLinkTtlSeconds': {
    env: 'HANDOVER_ATTACHMENT_HELPDESK_LINK_TTL_SECONDS',
    default: '604800',
    doc: "How long a signed link given to an external helpdesk with a user's file stays valid (7 days): a system that shows a file as a link keeps it in a conversation its agents read later. Signed anew on every delivery try.",
    parse: int(10, 30 * 86400),
  },
  'attachments.s3.bucket': {
    env: 'HANDOVER_S3_BUCKET',
    default: '',
    doc: 'Bucket of the `s3` attachment store (it must exist). Required with HANDOVER_ATTACHMENT_STORE=s3.',
    parse: optionalText,
  },
  'attachments.s3.endpoint': {
    env: 'HANDOVER_S3_ENDPOINT',
    default: '',
    doc: 'URL of an S3-compatible service (MinIO, Ceph, R2, …). Unset: AWS S3 in HANDOVER_S3_REGION.',
    parse: url,
  },
  'attachments.s3.region': { env: 'HANDOVER_S3_REGION', default: 'us-east-1', doc: 'Region of the bucket.', parse: text },
  'attachments.s3.accessKeyId': {
    env: 'HANDOVER_S3_ACCESS_KEY_ID',
    default: '',
    doc: "Access key id for the bucket. Unset (with the secret unset too): the AWS SDK's default credentials (its environment variables, an instance or pod role).",
    parse: optionalText,
  },
  'attachments.s3.secretAccessKey': {
    env: 'HANDOVER_S3_SECRET_ACCESS_KEY',
    default: '',
    doc: 'Secret access key for the bucket; set with HANDOVER_S3_ACCESS_KEY_ID. Never logged.',
    parse: optionalText,
  },
  'attachments.s3.forcePathStyle': {
    env: 'HANDOVER_S3_FORCE_PATH_STYLE',
    default: 'false',
    doc: '`true`: address the bucket in the path (`endpoint/bucket/key`), as most S3-compatible services other than AWS need.',
    parse: bool,
  },
  'attachments.s3.timeoutMs': {
    env: 'HANDOVER_S3_TIMEOUT_MS',
    default: '10000',
    doc: 'Longest one call to the bucket may take, its one retry included (`503 attachment_store_unavailable` after).',
    parse: int(100, 120000),
  },
  'admission.enabled': {
    env: 'HANDOVER_ADMISSION',
    default: 'true',
    doc: 'Admission control in front of the API (`false` only to measure without it).',
    parse: bool,
  },
  'admission.adaptive': {
    env: 'HANDOVER_ADMISSION_ADAPTIVE',
    default: 'true',
    doc: 'Let the concurrency limit follow measured latency; `false` keeps it at the initial limit (with `auto`, HANDOVER_ADMISSION_MIN_LIMIT; capped at HANDOVER_ADMISSION_MAX_LIMIT).',
    parse: bool,
  },
  'admission.initialLimit': {
    env: 'HANDOVER_ADMISSION_INITIAL_LIMIT',
    default: 'auto',
    doc: 'Requests in flight per instance at start (the fixed limit when not adaptive). `auto`: half of HANDOVER_ADMISSION_MIN_LIMIT (64), which is also the floor until the warm-up (HANDOVER_ADMISSION_WARMUP_MS) is over; then the floor is HANDOVER_ADMISSION_MIN_LIMIT and the limit is raised to it if lower (fixed: HANDOVER_ADMISSION_MIN_LIMIT). An instance just started is several times slower for its first seconds: offered twice its capacity at once, one started at 64 refused the excess and answered at p99 0.28–0.45 s, one started at 128 in 0.49–1.15 s (docs/overload.md, "The start"). A number: the start, and the floor for good when it is lower than HANDOVER_ADMISSION_MIN_LIMIT.',
    parse: (raw: string) => (raw.trim() === 'auto' ? null : int(1, 100000)(raw)),
  },
  'admission.minLimit': {
    env: 'HANDOVER_ADMISSION_MIN_LIMIT',
    default: '128',
    doc: 'The adaptive limit never goes below this once the instance has warmed up (an initial limit set lower is the floor instead): requests in flight that only wait for their batch cost the database nothing more, and fewer of them only shrink the batches, so under overload a higher floor serves more (docs/overload.md, "The floor"). Keep it well below the connections your callers keep open to one instance: at or above them, nothing is ever refused for want of a slot and their backlog waits in the callers instead. Capped at HANDOVER_ADMISSION_MAX_LIMIT too.',
    parse: int(1, 100000),
  },
  'admission.maxLimit': { env: 'HANDOVER_ADMISSION_MAX_LIMIT', default: '512', doc: 'The adaptive limit never goes above this.', parse: int(1, 100000) },
  'admission.latencyTargetMs': {
    env: 'HANDOVER_ADMISSION_LATENCY_TARGET_MS',
    default: 'auto',
    doc: 'Request latency the adaptive limit defends: above it (and above twice the no-load latency) the limit shrinks. `auto`: 20 ms, on either store (docs/overload.md, "The limit", says why; the embedded store had 50 ms before the limit had a floor of 64).',
    parse: (raw: string) => (raw.trim() === 'auto' ? null : int(1, 60000)(raw)),
  },
  'admission.queueTimeoutMs': {
    env: 'HANDOVER_ADMISSION_QUEUE_TIMEOUT_MS',
    default: '20',
    doc: 'Longest wait for a slot while the queue drains normally (`overloaded_queue_wait` after). A waiting request holds its client\'s connection: longer waits (100 ms) filled the clients\' pools at the onset of overload, and every answer after came late (docs/overload.md, "The wait").',
    parse: int(0, 60000),
  },
  'admission.codelTargetMs': {
    env: 'HANDOVER_ADMISSION_CODEL_TARGET_MS',
    default: '5',
    doc: 'Wait bound once the queue has stood non-empty for the CoDel interval.',
    parse: int(0, 60000),
  },
  'admission.codelIntervalMs': {
    env: 'HANDOVER_ADMISSION_CODEL_INTERVAL_MS',
    default: '200',
    doc: 'How long the queue may stay non-empty before waits are cut to the target.',
    parse: int(1, 60000),
  },
  'admission.maxQueueLength': {
    env: 'HANDOVER_ADMISSION_MAX_QUEUE',
    default: '1000',
    doc: 'Most requests waiting for a slot (memory bound), shared fairly between callers.',
    parse: int(0, 1000000),
  },
  'admission.eventLoopDelayLimitMs': {
    env: 'HANDOVER_EVENT_LOOP_DELAY_LIMIT_MS',
    default: '50',
    doc: 'Refuse new requests (`overloaded_event_loop`) while event-loop timers run this late on average.',
    parse: int(1, 60000),
  },
  'admission.eventLoopUtilizationLimit': {
    env: 'HANDOVER_EVENT_LOOP_UTILIZATION_LIMIT',
    default: '1',
    doc: 'Below 1 (0.99, say): when the event loop was busy at least this share of two 0.5 s windows in a row, its thread on a CPU for most of them (not waiting for a core a fifth of the window or more), callers with requests already in flight are admitted at 85 % of the rate just admitted, refused `overloaded_event_loop` beyond it, until the loop has room again. `1`, the default: off; measured, it refused work the instance could do (docs/overload.md, "A loop with no time to spare").',
    parse: ratio,
  },
  'admission.warmupMs': {
    env: 'HANDOVER_ADMISSION_WARMUP_MS',
    default: '10000',
    doc: "After start-up, how long event-loop lag and utilization are not taken for overload (loading code and the embedded database keep the loop busy), and, with HANDOVER_ADMISSION_INITIAL_LIMIT=auto, how long the adaptive limit's floor stays at where it starts before it rises to HANDOVER_ADMISSION_MIN_LIMIT. Counted from when the instance starts, a second or two before it reports ready.",
    parse: int(0, 600000),
  },
  'admission.heapUsedLimitRatio': {
    env: 'HANDOVER_HEAP_LIMIT_RATIO',
    default: '0.92',
    doc: 'Refuse new requests (`overloaded_memory`) while the V8 heap is above this share of its limit.',
    parse: ratio,
  },
  'admission.handlerTimeoutMs': {
    env: 'HANDOVER_HANDLER_TIMEOUT_MS',
    default: '5000',
    doc: 'Deadline of one request from routing to response (`deadline_exceeded`).',
    parse: int(100, 600000),
  },
  'admission.stuckMs': {
    env: 'HANDOVER_ADMISSION_STUCK_MS',
    default: '30000',
    doc: 'Readiness (`/readyz`) fails with `admission_stuck` once every admission slot has been in use this long with none given back (or as soon as a slot is held for a request whose client has gone), so a stuck instance leaves rotation. Must be above HANDOVER_HANDLER_TIMEOUT_MS: every admitted request is answered or cut by then.',
    parse: int(1000, 3600000),
  },
  'connectors.failureThreshold': {
    env: 'HANDOVER_CONNECTOR_FAILURE_THRESHOLD',
    default: '5',
    doc: 'Consecutive transient failures that open a connector circuit.',
    parse: int(1, 1000),
  },
  'connectors.cooldownMs': {
    env: 'HANDOVER_CONNECTOR_COOLDOWN_MS',
    default: '10000',
    doc: 'How long an open circuit waits before one trial call.',
    parse: int(10, 3600000),
  },
  'connectors.maxInflight': {
    env: 'HANDOVER_CONNECTOR_CONCURRENCY',
    default: '128',
    doc: 'Handovers delivered to one external system at once per instance (bulkhead; keep it below HANDOVER_DELIVERY_CONCURRENCY so one slow system cannot take every worker). A handover counts from when its delivery starts until it asks to give its lane back, not while it waits for its deliveries to be recorded; it goes on only if a slot is free then. With one call in flight per handover, one system gets at most about this many ÷ its answer time messages per second from an instance (128 with a 50 ms helpdesk: 2,560/s).',
    parse: int(1, 1000),
  },
  'connectors.maxBacklog': {
    env: 'HANDOVER_CONNECTOR_MAX_BACKLOG',
    default: '10000',
    doc: 'Undelivered items towards one system above which it is reported degraded and new handovers to it are refused (judged on the backlog as last sampled: `HANDOVER_STATUS_SAMPLE_MS`).',
    parse: int(1, 100000000),
  },
  'outbound.allowPrivate': {
    env: 'HANDOVER_ALLOW_PRIVATE_URLS',
    default: '',
    doc: 'Let webhook and helpdesk URLs lead to loopback, private, link-local (cloud metadata) or reserved addresses. Unset: allowed with the embedded store (local use), refused with DATABASE_URL.',
    parse: optionalBool,
  },
  'outbound.allowHttp': {
    env: 'HANDOVER_ALLOW_HTTP_URLS',
    default: '',
    doc: 'Accept plain `http://` webhook and helpdesk URLs besides `https://`. Unset: allowed with the embedded store, refused with DATABASE_URL.',
    parse: optionalBool,
  },
  'connectors.inboundPerSecond': {
    env: 'HANDOVER_INBOUND_RATE_PER_SECOND',
    default: '200',
    doc: "Verified events one connector's inbound URL takes per second on average, per instance (`429 inbound_rate_limited` above; vendors retry). Only requests whose signature verifies spend it, so forged ones cannot.",
    parse: int(1, 1000000),
  },
  'connectors.inboundBurst': {
    env: 'HANDOVER_INBOUND_BURST',
    default: '400',
    doc: "Events one connector's inbound URL takes at once before the rate applies.",
    parse: int(1, 1000000),
  },
  'connectors.inboundUnverifiedPerSecond': {
    env: 'HANDOVER_INBOUND_UNVERIFIED_RATE_PER_SECOND',
    default: '5',
    doc: "Requests to inbound URLs that do not verify (forged or stale signature, unknown connector) one client address may send per second on average, per instance; past it, that address is refused before its signature is checked (`429 inbound_unverified_rate_limited`) unless it has sent a verified request in the last 24 hours (a helpdesk's own address is never locked out by forgeries sent through it).",
    parse: int(1, 1000000),
  },
  'connectors.inboundUnverifiedBurst': {
    env: 'HANDOVER_INBOUND_UNVERIFIED_BURST',
    default: '20',
    doc: 'Requests that do not verify one client address may send at once before HANDOVER_INBOUND_UNVERIFIED_RATE_PER_SECOND applies.',
    parse: int(1, 1000000),
  },
  'demo.enabled': {
    env: 'HANDOVER_DEMO',
    default: '',
    doc: 'Serve the demo at `/demo` and start the demo bot with a demo tenant, queue and agent. Unset: on with the embedded store, off with DATABASE_URL.',
    parse: optionalBool,
  },
  'demo.port': {
    env: 'HANDOVER_DEMO_PORT',
    default: '',
    doc: 'Port of the demo bot (on HOST). Unset: PORT + 1 (any free port when PORT is 0).',
    parse: optionalInt(0, 65535),
  },
  'streams.leaseMs': {
    env: 'HANDOVER_STREAM_LEASE_MS',
    default: '15000',
    doc: 'How long an instance holds a connector event stream (Salesforce) without renewing; another instance takes it over after this when the holder dies.',
    parse: int(1000, 600000),
  },
  'streams.tickMs': {
    env: 'HANDOVER_STREAM_TICK_MS',
    default: '1000',
    doc: 'How often stream leases are renewed and free streams claimed; keep it well below HANDOVER_STREAM_LEASE_MS.',
    parse: int(50, 60000),
  },
  'streams.maxPerInstance': { env: 'HANDOVER_STREAM_MAX', default: '1000', doc: 'Connector event streams one instance holds at most.', parse: int(1, 100000) },
  'secrets.keys': {
    env: 'HANDOVER_SECRET_KEYS',
    default: '',
    doc: 'Keys that encrypt connector credentials at rest: comma-separated `keyId:base64key` pairs of 32-byte keys (`openssl rand -base64 32`). Older keys stay listed to decrypt after a rotation. Required with DATABASE_URL; in embedded mode one is generated on first start and kept in the data directory.',
    parse: parseSecretKeys,
  },
  'secrets.currentKeyId': {
    env: 'HANDOVER_SECRET_KEY_ID',
    default: '',
    doc: 'Id of the key in HANDOVER_SECRET_KEYS that encrypts new and re-encrypted credentials. Unset: the first listed key.',
    parse: optionalText,
  },
  'connectors.availabilityRefreshMs': {
    env: 'HANDOVER_CONNECTOR_AVAILABILITY_REFRESH_MS',
    default: '15000',
    doc: "How often an external system's agent availability is fetched again in the background while its queues are being asked about.",
    parse: int(100, 3600000),
  },
  'connectors.latency.callP99Ms': {
    env: 'HANDOVER_CONNECTOR_CALL_P99_MS',
    default: '2000',
    doc: 'Latency objective of calls to an external system: slower at p99 over the window and it is `slow` — availability answers `degraded` (cause `slow`), the status page and the doctor name it. Settable per connector (`latency.callP99Ms` in its config).',
    parse: int(1, 3600000),
  },
  'connectors.latency.lagP99Ms': {
    env: 'HANDOVER_CONNECTOR_LAG_P99_MS',
    default: '15000',
    doc: 'Objective of the delivery lag towards an external system (accepted → delivered, p99 over the window); later and it is `slow` too. Per connector: `latency.lagP99Ms`.',
    parse: int(1, 86400000),
  },
  'connectors.latency.windowMs': {
    env: 'HANDOVER_CONNECTOR_LATENCY_WINDOW_MS',
    default: '30000',
    doc: "Window over which a system's latency is judged (also how long a recovered system takes to be judged normal again).",
    parse: int(5000, 3600000),
  },
  'connectors.latency.minCalls': {
    env: 'HANDOVER_CONNECTOR_LATENCY_MIN_CALLS',
    default: '5',
    doc: 'Fewest calls in the window for a latency verdict: fewer say nothing.',
    parse: int(1, 1000000),
  },
  'connectors.latency.offerWhileSlow': {
    env: 'HANDOVER_CONNECTOR_OFFER_WHILE_SLOW',
    default: 'false',
    doc: 'Keep offering handovers to a slow system (availability stays true; status and doctor still say it is slow). Per connector: `latency.offerWhileSlow`.',
    parse: bool,
  },
  'connectors.availabilityMaxAgeMs': {
    env: 'HANDOVER_CONNECTOR_AVAILABILITY_MAX_AGE_MS',
    default: '60000',
    doc: 'An availability answer older than this is not used (the system is then taken at its word: open means open).',
    parse: int(100, 86400000),
  },
  'connectors.checkIntervalMs': {
    env: 'HANDOVER_CONNECTOR_CHECK_INTERVAL_MS',
    default: '300000',
    doc: 'How often every connector runs its own setup check (credentials, account ids) in the background; the status page, `handover doctor`, metrics and the admin API show the last verdict.',
    parse: int(1000, 86400000),
  },
  'connectors.checkConcurrency': {
    env: 'HANDOVER_CONNECTOR_CHECK_CONCURRENCY',
    default: '4',
    doc: 'Connector checks in flight at once (each bounded by HANDOVER_DELIVERY_TIMEOUT_MS).',
    parse: int(1, 100),
  },
  'status.sampleMs': {
    env: 'HANDOVER_STATUS_SAMPLE_MS',
    default: '10000',
    doc: 'How often the status is judged and the outbox backlog sampled (metrics, the status page and the backlog bound of availability read the last sample).',
    parse: int(10, 600000),
  },
  'status.windowMs': {
    env: 'HANDOVER_STATUS_WINDOW_MS',
    default: '60000',
    doc: 'Recent window of API traffic the status page judges (latency percentiles, refusals).',
    parse: int(100, 3600000),
  },
  'status.latencyTargetMs': {
    env: 'HANDOVER_LATENCY_TARGET_MS',
    default: '250',
    doc: 'Bot API latency target (p95 over the window, and the SLO bucket of the alert rules): above it the API is degraded.',
    parse: int(1, 600000),
  },
  'status.backlogAgeTargetSeconds': {
    env: 'HANDOVER_BACKLOG_AGE_TARGET_SECONDS',
    default: '60',
    doc: 'Oldest undelivered item older than this: delivery is degraded (ten times: major outage).',
    parse: int(1, 86400),
  },
  'status.recoveryMs': {
    env: 'HANDOVER_STATUS_RECOVERY_MS',
    default: '120000',
    doc: 'How long every component must stay operational before an open incident is resolved.',
    parse: int(0, 86400000),
  },
  'tracing.endpoint': {
    env: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    default: '',
    doc: 'Base URL of an OTLP/HTTP collector (spans go to `/v1/traces` under it, as JSON). Unset, with OTEL_EXPORTER_OTLP_TRACES_ENDPOINT unset too: tracing is off and its SDK is not loaded.',
    parse: url,
  },
  'tracing.tracesEndpoint': {
    env: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
    default: '',
    doc: 'Full URL spans are sent to (OTLP/HTTP JSON), used as is; takes precedence over OTEL_EXPORTER_OTLP_ENDPOINT.',
    parse: url,
  },
  'tracing.serviceName': { env: 'OTEL_SERVICE_NAME', default: 'handover', doc: 'The `service.name` of exported spans.', parse: text },
  'tracing.sampler': {
    env: 'OTEL_TRACES_SAMPLER',
    default: 'parentbased_always_on',
    doc: "Which traces are recorded: `parentbased_always_on` (all, unless a caller's `traceparent` says not sampled), `parentbased_traceidratio` (a share, OTEL_TRACES_SAMPLER_ARG, of new traces; callers' decisions kept), `always_on` or `traceidratio` (ignoring callers).",
    parse: oneOf('parentbased_always_on', 'parentbased_traceidratio', 'always_on', 'traceidratio'),
  },
  'tracing.samplerRatio': {
    env: 'OTEL_TRACES_SAMPLER_ARG',
    default: '1',
    doc: 'Share of traces recorded by the `traceidratio` samplers, in (0, 1].',
    parse: ratio,
  },
  'tracing.headers': {
    env: 'OTEL_EXPORTER_OTLP_HEADERS',
    default: '',
    doc: "Headers sent with every export, e.g. the collector's credentials: `key=value,key2=value2` (values percent-encoded). Never logged.",
    parse: headerList,
  },
} satisfies Record<string, Setting>;

/** A setting's dotted key. */
export type SettingKey = keyof typeof settings;
/** Each setting's value as its `parse` returns it, by dotted key. */
export type SettingValues = { [K in SettingKey]: ReturnType<(typeof settings)[K]['parse']> };

type AtPath<P extends string, V> = P extends `${infer Head}.${infer Rest}` ? { [K in Head]: AtPath<Rest, V> } : { [K in P]: V };
type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
/** An intersection of nested objects as one readonly object type (arrays, buffers and functions kept). */
type Settled<T> = T extends readonly unknown[] | Buffer | ((...args: never[]) => unknown)
  ? T
  : T extends object
    ? { readonly [K in keyof T]: Settled<T[K]> }
    : T;
/** The settings as nested groups: `http.uploads.windowMs` → `{ http: { uploads: { windowMs } } }`. */
type LoadedSettings = Settled<UnionToIntersection<{ [K in SettingKey]: AtPath<K, SettingValues[K]> }[SettingKey]>>;

type Writable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * The service's settings. Read-only, and frozen when loaded, except:
 * - the two values known only once the service listens: `publicUrl` (PORT=0 without
 *   HANDOVER_PUBLIC_URL) and `demo.port` (HANDOVER_DEMO_PORT=0);
 * - `admission`, which admission control holds by reference and reads live, so its thresholds can be
 *   moved while the service runs (its tests shed load that way).
 * The settings left unset to be chosen by the store are resolved here.
 */
export interface Config extends Omit<LoadedSettings, 'publicUrl' | 'demo' | 'outbound' | 'admission' | 'attachments'> {
  /** Where bots and helpdesks reach this service; used to build inbound webhook URLs. */
  publicUrl: string;
  readonly admission: Writable<LoadedSettings['admission']>;
  readonly demo: { readonly enabled: boolean; port: number };
  /** Where tenant-supplied URLs may lead (src/outbound/outbound-guard.ts). */
  readonly outbound: { readonly allowPrivate: boolean; readonly allowHttp: boolean };
  /** The attachment store, resolved: its kind chosen, its directory set (src/attachments/). */
  readonly attachments: Omit<LoadedSettings['attachments'], 'store' | 'dir'> & { readonly store: 'disk' | 's3' | 'off'; readonly dir: string };
}

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
 * overrides by dotted key (values as the setting's parse would return them). Throws ConfigError listing
 * every problem, an override of a setting that does not exist included.
 */
export function loadConfig(env: Record<string, string | undefined>, overrides: Readonly<Partial<SettingValues>> = {}): Config {
  const problems: string[] = [];
  // Typed callers cannot name a setting that does not exist; a caller passing a plain record can.
  for (const key of Object.keys(overrides)) {
    if (!Object.hasOwn(settings, key)) problems.push(`${key}: no such setting (overrides are dotted keys of the settings table, e.g. "delivery.timeoutMs")`);
  }
  const values: Partial<Record<SettingKey, unknown>> = {};
  for (const key of Object.keys(settings) as SettingKey[]) {
    const setting: Setting = settings[key];
    if (Object.hasOwn(overrides, key)) {
      values[key] = overrides[key];
      continue;
    }
    try {
      values[key] = setting.parse(env[setting.env] ?? setting.default ?? '');
    } catch (err) {
      problems.push(`${setting.env}: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  // Every key holds what its own setting's parse returned (or its override): the table's types.
  const loaded = nest(values as SettingValues);
  const port = loaded.port;
  const embedded = !loaded.database.url;
  const config: Config = {
    ...loaded,
    publicUrl: loaded.publicUrl ?? `http://localhost:${port}`,
    demo: { enabled: loaded.demo.enabled ?? embedded, port: loaded.demo.port ?? (port === 0 || port === 65535 ? 0 : port + 1) },
    outbound: { allowPrivate: loaded.outbound.allowPrivate ?? embedded, allowHttp: loaded.outbound.allowHttp ?? embedded },
    attachments: {
      ...loaded.attachments,
      store: loaded.attachments.store ?? (embedded ? 'disk' : 'off'),
      dir: loaded.attachments.dir ?? `${loaded.database.dataDir.replace(/\/$/, '')}/attachments`,
    },
  };
  if (config.attachments.store === 's3' && !config.attachments.s3.bucket) {
    throw new ConfigError(['HANDOVER_S3_BUCKET: required with HANDOVER_ATTACHMENT_STORE=s3']);
  }
  if (!config.attachments.s3.accessKeyId !== !config.attachments.s3.secretAccessKey) {
    throw new ConfigError(["HANDOVER_S3_ACCESS_KEY_ID and HANDOVER_S3_SECRET_ACCESS_KEY: set both, or neither (the SDK's default credentials)"]);
  }
  if (config.admission.stuckMs <= config.admission.handlerTimeoutMs) {
    throw new ConfigError([
      `HANDOVER_ADMISSION_STUCK_MS: must be above HANDOVER_HANDLER_TIMEOUT_MS (${config.admission.handlerTimeoutMs}); slots are held that long by requests that are merely slow`,
    ]);
  }
  if (config.database.url && !config.adminToken) {
    throw new ConfigError(['HANDOVER_ADMIN_TOKEN: required when DATABASE_URL is set (instances share it)']);
  }
  // The group first: locking the whole then leaves a group already locked as it is.
  freezeExcept(config.demo, ['port']);
  freezeExcept(config.admission, Object.keys(config.admission));
  freezeExcept(config, ['publicUrl']);
  return config;
}

/** Dotted keys as nested groups. */
function nest(values: SettingValues): LoadedSettings {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    const parts = key.split('.');
    let node = out;
    for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
    node[parts.at(-1)!] = value;
  }
  // The shape LoadedSettings describes, built key by key from the same table.
  return out as LoadedSettings;
}

/**
 * Freezes a config object and everything under it not locked yet (buffers aside: their bytes cannot be
 * frozen), except the named properties of this object, which stay writable (none can be deleted or added).
 */
function freezeExcept(node: object, writable: readonly string[]): void {
  for (const [key, value] of Object.entries(node)) {
    if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value) && Object.isExtensible(value)) freezeExcept(value, []);
    Object.defineProperty(node, key, { writable: writable.includes(key), configurable: false });
  }
  Object.preventExtensions(node);
}

/** The environment of this process: the one place it is read. */
export function processEnv(): Record<string, string | undefined> {
  return process.env;
}

/** Settings of the CLI's client commands, which talk to a running instance over HTTP. */
export interface CliConfig {
  url: string;
  adminToken: string | undefined;
  /** Sent to `/metrics` by `handover doctor` when the instance asks for one. */
  metricsToken: string | undefined;
  dataDir: string;
}

export function loadCliConfig(env: Record<string, string | undefined>): CliConfig {
  const port = env.PORT && /^\d+$/.test(env.PORT) ? env.PORT : (settings.port.default ?? '8080');
  return {
    url: (env.HANDOVER_URL ?? `http://127.0.0.1:${port}`).replace(/\/$/, ''),
    // A client sends the first of the tokens the service accepts.
    adminToken: env.HANDOVER_ADMIN_TOKEN?.split(',')[0]?.trim() || undefined,
    metricsToken: env.HANDOVER_METRICS_TOKEN?.split(',')[0]?.trim() || undefined,
    dataDir: env.HANDOVER_DATA_DIR ?? settings['database.dataDir'].default,
  };
}
