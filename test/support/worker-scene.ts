import { expect } from 'vitest';
import type { UserMessageWrite } from '../../src/handover/accept-user-messages.js';
import { LaneHandoff } from '../../src/delivery/lane-handoff.js';
import { startDeliveryWorker, type DeliveryWorker, type OutboxRow } from '../../src/delivery/worker.js';
import { ConnectorHealth } from '../../src/resilience/circuit-breaker.js';
import type { Db, QueryResult } from '../../src/store/db.js';
import { newId } from '../../src/store/ids.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { startTestService, type TestService } from './test-service.js';

/**
 * For tests that drive a delivery worker of their own step by step: a service on PostgreSQL with live
 * handovers on a generic-webhook helpdesk, whose own background work (its worker) is stopped once the
 * handovers were opened at the helpdesk, and a worker started by the test with the deliverers it gives.
 */
export interface WorkerScene {
  t: TestService;
  helpdesk: GenericHelpdesk;
  tenantId: string;
  handovers: string[];
  /** Hands lanes from `writeUserMessages` to the scene's worker (attached when it starts). */
  handoff: LaneHandoff;
  /** Starts the scene's worker; `db` defaults to the service's. */
  startWorker(options: WorkerSceneOptions): DeliveryWorker;
  close(): Promise<void>;
}

export interface WorkerSceneOptions {
  deliver: (row: OutboxRow) => Promise<void>;
  db?: Db;
  concurrency?: number;
  pollIntervalMs?: number;
  leaseMs?: number;
  retryMaxMs?: number;
  onRunsChanged?: (runs: number) => void;
  /** Lanes of one connector in work at once (the bulkhead); 8 by default. */
  maxPerConnector?: number;
}

export async function startWorkerScene(count: number, secret: string): Promise<WorkerScene> {
  const t = await startTestService('pg');
  const helpdesk = await startGenericHelpdesk(secret);
  let worker: DeliveryWorker | undefined;
  const close = async () => {
    await worker?.stop({ graceMs: 1000 });
    await t.close();
    await helpdesk.close();
  };
  try {
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Workerco' });
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'webhook',
      name: 'hd',
      config: { url: helpdesk.url, secret },
    });
    await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'q', connectorId: connector.body.id });
    const handovers: string[] = [];
    for (let i = 0; i < count; i++) {
      const created = await t.api('POST', '/v1/handovers', {
        token: tenant.body.apiKey,
        body: { conversationId: `c-${i + 1}`, queue: 'q', user: { id: `u-${i + 1}` } },
      });
      expect(created.status).toBe(201);
      handovers.push(created.body.id);
    }
    await helpdesk.waitFor((r) => r.filter((w) => w.body.type === 'handover.requested').length === count, 10_000, 'every handover.requested');
    // From here on only the test's worker delivers.
    await t.service.stopBackground(1000);
    const handoff = new LaneHandoff('scene-worker', 30_000);
    const notThisSide = async () => {
      throw new Error('not this side');
    };
    return {
      t,
      helpdesk,
      tenantId: tenant.body.id,
      handovers,
      handoff,
      startWorker(o) {
        worker = startDeliveryWorker({
          db: o.db ?? t.db,
          bus: t.service.deps.bus,
          log: createLogger('silent'),
          instanceId: 'scene-worker',
          concurrency: o.concurrency ?? 4,
          leaseMs: o.leaseMs ?? 30_000,
          timeoutMs: 2000,
          pollIntervalMs: o.pollIntervalMs ?? 60_000,
          retryBaseMs: 20,
          retryMaxMs: o.retryMaxMs ?? 200,
          deliverers: { agent: { deliver: o.deliver, onGiveUp: notThisSide }, bot: { deliver: notThisSide, onGiveUp: notThisSide } },
          health: new ConnectorHealth({ failureThreshold: 5, cooldownMs: 1000, maxInflightPerConnector: o.maxPerConnector ?? 8 }),
          quoteAnswers: false,
          handoff,
          ...(o.onRunsChanged ? { onRunsChanged: o.onRunsChanged } : {}),
        });
        return worker;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** A user's message to a handover, ready for `writeUserMessages`; its client id is its text. */
export function userMessage(tenantId: string, handoverId: string, text: string): UserMessageWrite {
  const now = new Date();
  const id = newId('message', now.getTime());
  return {
    tenantId,
    handoverId,
    clientId: text,
    messageId: id,
    text,
    attachments: [],
    eventId: newId('event'),
    createdAt: now,
    traceParent: null,
  };
}

/** The text of a message item. */
export function textOf(row: OutboxRow): string {
  return (row.payload as { message: { text: string } }).message.text;
}

/** `db` whose statements go through `around` (given each one's name, or null, and a way to run it). */
function aroundEachStatement(
  db: Db,
  around: (name: string | null, params: readonly unknown[] | undefined, run: () => Promise<QueryResult<unknown>>) => Promise<QueryResult<unknown>>,
): Db {
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (prop === 'query')
        return (sql: Parameters<Db['query']>[0], params?: Parameters<Db['query']>[1]) =>
          around(typeof sql === 'string' ? null : sql.name, params, () => target.query(sql, params));
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * `db` with `after` run once each statement has answered, before its caller reads the answer: for a
 * test that makes something happen at that very point (another statement, a stop). `name` is the
 * statement's name (named statements) or null.
 */
export function afterEachStatement(db: Db, after: (name: string | null, params: readonly unknown[] | undefined, result: QueryResult<unknown>) => unknown): Db {
  return aroundEachStatement(db, async (name, params, run) => {
    const result = await run();
    await after(name, params, result);
    return result;
  });
}

/**
 * `db` with `before` run before each statement, which waits for what it answers (a promise): for a test
 * that holds a statement back, or counts them. `name` is the statement's name (named statements) or null.
 */
export function beforeEachStatement(db: Db, before: (name: string | null) => unknown): Db {
  return aroundEachStatement(db, async (name, _params, run) => {
    await before(name);
    return run();
  });
}
