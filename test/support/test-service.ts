import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { createService, type Service } from '../../src/service.js';
import type { Logger } from '../../src/telemetry/logger.js';
import { createTestDb, type TestDb } from './test-db.js';
import { contractOf, type Contract } from './openapi-contract.js';
import { openSseClient, type SseClient } from './sse-client.js';

export type { DbKind } from './test-db.js';
import type { DbKind } from './test-db.js';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface TestService {
  service: Service;
  db: TestDb;
  url: string;
  adminToken: string;
  /** JSON over real HTTP. `token` goes into Authorization: Bearer. */
  api<T = any>(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; rawBody?: string | Uint8Array; headers?: Record<string, string> },
  ): Promise<ApiResponse<T>>;
  admin<T = any>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>>;
  /**
   * The OpenAPI document's checker, which every answer `api()` gets goes through: an answer that does
   * not match the document (an undocumented status or error code, a body off its schema, a missing
   * Retry-After) fails the call, so every test's traffic checks the document. On unless `contract: false`
   * (or HANDOVER_TEST_CONTRACT=0 for a whole run).
   * (An object: that document instead of the instance's own.)
   */
  contract?: Contract | undefined;
  close(): Promise<void>;
}

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
/** The key that encrypts connector credentials in tests (HANDOVER_SECRET_KEYS form: `${id}:${key}`). */
export const TEST_SECRET_KEY = { id: 'test-1', key: Buffer.alloc(32, 7).toString('base64') };

/** Fast retries and polls so failure paths finish in test time; everything else as in production. */
export const testSettings: Record<string, unknown> = {
  port: 0,
  host: '127.0.0.1',
  adminToken: ADMIN_TOKEN,
  logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
  'delivery.retryBaseMs': 20,
  'delivery.retryMaxMs': 200,
  'delivery.pollIntervalMs': 50,
  'delivery.timeoutMs': 2000,
  // Most tests read the worker's state in process (stopping it to play a dead instance, its logs);
  // test/e2e/delivery-thread.test.ts runs it in its thread, as production does on PostgreSQL.
  // HANDOVER_TEST_DELIVERY_THREAD=on runs a whole suite that way.
  'delivery.thread': process.env.HANDOVER_TEST_DELIVERY_THREAD ?? 'off',
  // Without a start's delivery warm-up (loopback calls, a tenth of a second): tests start hundreds of
  // services. test/e2e/delivery-thread.test.ts and test/outbound/warm-up.test.ts cover it.
  'delivery.warmUpCalls': 0,
  'desk.timerIntervalMs': 100,
  // Without the embedded store's vacuums at an interval: a pass in the middle of a test that counts the
  // statements about messages would count its own. test/store/embedded-maintenance.test.ts covers it.
  'database.embeddedVacuumIntervalMs': 0,
  // Sign-ins and new agents at scrypt's lowest cost here (2^10, about 1 ms): tests create hundreds.
  'desk.passwordScryptLogN': 10,
  // Test consoles (plain SSE readers) do not reconnect on `renew`; test/e2e/desk-presence.test.ts sets its own.
  'desk.consoleRenewMs': 3_600_000,
  'http.shutdownGraceMs': 2000,
  // Functional tests share two cores with other test workers: they must not shed load because the
  // machine is busy. The admission tests set their own limits.
  'admission.eventLoopDelayLimitMs': 60_000,
  'admission.eventLoopUtilizationLimit': 1,
  // Nor narrow the limit because a request took longer than PostgreSQL's 20 ms default target here.
  'admission.latencyTargetMs': 50,
  // The fakes listen on loopback over http; test/e2e/outbound-guard.test.ts covers the default refusal.
  'outbound.allowPrivate': true,
  'outbound.allowHttp': true,
  'secrets.keys': [TEST_SECRET_KEY],
  // Files uploaded by tests that do not choose a store of their own stay out of the working tree.
  'attachments.dir': join(tmpdir(), 'handover-test-attachments'),
};

export async function startTestService(
  kind: DbKind,
  overrides: Record<string, unknown> = {},
  options: { db?: TestDb; log?: Logger; contract?: boolean | Record<string, unknown> } = {},
): Promise<TestService> {
  const db = options.db ?? (await createTestDb(kind));
  const config = loadConfig({}, { ...testSettings, ...overrides });
  const service = await createService(config, { db, ...(options.log ? { log: options.log } : {}) });
  const address = await service.listen();
  // The port is known only now; inbound URLs must point at it.
  service.deps.config.publicUrl = address;
  let contract: Contract | undefined;
  if (typeof options.contract === 'object') contract = contractOf(options.contract);
  // The app's own document (what /openapi.json serves), read without a request: an instance that
  // sheds load from its start still has one.
  else if (options.contract ?? process.env.HANDOVER_TEST_CONTRACT !== '0') contract = contractOf(service.app.swagger() as unknown as Record<string, unknown>);
  const api: TestService['api'] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | Uint8Array | undefined;
    if (opts.rawBody !== undefined) body = opts.rawBody;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    const res = await fetch(`${address}${path}`, { method, headers, body: body ?? null, signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    const problems = contract?.check({ method, path, status: res.status, headers: res.headers, body: text }) ?? [];
    if (problems.length > 0) throw new Error(`The answer does not match the OpenAPI document:\n${problems.join('\n')}`);
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON (docs page): keep the text
    }
    return { status: res.status, body: parsed as any, headers: res.headers };
  };
  return {
    service,
    db,
    url: address,
    adminToken: ADMIN_TOKEN,
    api,
    admin: (method, path, body) => api(method, path, { token: ADMIN_TOKEN, body }),
    contract,
    async close() {
      await service.stop();
      if (!options.db) await db.dropAndClose();
    },
  };
}

export interface DeskSetup {
  tenantId: string;
  apiKey: string;
  webhookSecret: string;
  queue: string;
  agentToken: string;
  agentId: string;
  agentEmail: string;
  /** The agent's open desk console (its live stream, on the agentToken session); null with `console: false`. */
  console: SseClient | null;
}

/**
 * A tenant with one desk queue and one signed-in, available agent at a desk: the agent's console
 * stream is open, so they count as online (docs/desk.md, "Presence") until it is closed.
 */
export async function setUpDesk(
  t: TestService,
  options: { webhookUrl?: string; queue?: Record<string, unknown>; agent?: Record<string, unknown>; available?: boolean; console?: boolean } = {},
): Promise<DeskSetup> {
  const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Acme', ...(options.webhookUrl ? { webhookUrl: options.webhookUrl } : {}) });
  if (tenant.status !== 201) throw new Error(`tenant: ${JSON.stringify(tenant.body)}`);
  const queue = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'support', ...options.queue });
  if (queue.status !== 201) throw new Error(`queue: ${JSON.stringify(queue.body)}`);
  const email = typeof options.agent?.email === 'string' ? options.agent.email : `agent-${Math.random().toString(36).slice(2)}@example.com`;
  const agent = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/agents`, {
    email,
    name: 'Ada Agent',
    password: 'correct horse battery',
    ...options.agent,
  });
  if (agent.status !== 201) throw new Error(`agent: ${JSON.stringify(agent.body)}`);
  const session = await t.api('POST', '/v1/desk/login', { body: { email, password: 'correct horse battery' } });
  if (session.status !== 200) throw new Error(`login: ${JSON.stringify(session.body)}`);
  if (options.available !== false) {
    const presence = await t.api('PUT', '/v1/desk/presence', { token: session.body.token, body: { presence: 'available' } });
    if (presence.status !== 200) throw new Error(`presence: ${JSON.stringify(presence.body)}`);
  }
  const deskConsole = options.console === false ? null : await openDeskConsole(t, session.body.token);
  return {
    tenantId: tenant.body.id,
    apiKey: tenant.body.apiKey,
    webhookSecret: tenant.body.webhookSecret,
    queue: 'support',
    agentToken: session.body.token,
    agentId: agent.body.id,
    agentEmail: email,
    console: deskConsole,
  };
}

/**
 * Opens a desk console's live stream for a session, as the web desk does, and waits for its `ready`:
 * from then on the agent is at a desk. It ends with `close()`, with the session, or when the service stops.
 */
export async function openDeskConsole(t: Pick<TestService, 'url'>, token: string): Promise<SseClient> {
  const stream = openSseClient(`${t.url}/v1/desk/events`, { authorization: `Bearer ${token}` });
  const status = await stream.opened;
  if (status !== 200) throw new Error(`desk console: the stream answered ${status}`);
  await stream.waitFor((events) => events.some((e) => e.event === 'ready'), 10_000, 'the desk console to be ready');
  return stream;
}

export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
