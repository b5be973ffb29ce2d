import type { Deps } from '../../src/deps.js';
import { createLocalBus } from '../../src/bus/local-bus.js';
import { loadConfig } from '../../src/config/config.js';
import { createDeskConsoles } from '../../src/desk/consoles.js';
import { createAgent, login, setPresence } from '../../src/desk/agents.js';
import type { Agent } from '../../src/model/agent.js';
import { UserIdDigests } from '../../src/privacy/user-digest.js';
import { createQueue, type CreateQueueInput } from '../../src/routing/queues.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createTenant } from '../../src/tenants/tenants.js';
import { createTestDb, type TestDb } from './test-db.js';
import { TEST_SECRET_KEY, testSettings } from './test-service.js';

/**
 * The use cases with nothing in front of them: the parts a service would pass in (`Deps`) built on an
 * embedded database loaded from the migrated template, no HTTP, no worker, no timers. A test calls
 * `requestHandover`, `postUserMessage`, `acceptHandover`, ... and reads the rows and signals they left.
 */
export interface DomainWorld {
  deps: Deps;
  db: TestDb;
  /** Every signal published on the bus, by channel, in order. */
  signals: Array<{ channel: string; message: unknown }>;
  tenant(name?: string): Promise<string>;
  queue(input: Omit<CreateQueueInput, 'name'> & { name?: string }): Promise<string>;
  /** A desk agent who can answer now: available, signed in, with a console open. */
  agentOnline(tenantId: string, options?: { queues?: string[]; maxChats?: number; role?: Agent['role'] }): Promise<Agent>;
  close(): Promise<void>;
}

export async function domainWorld(): Promise<DomainWorld> {
  const db = await createTestDb('pglite');
  const config = loadConfig({}, testSettings);
  const bus = createLocalBus();
  const signals: DomainWorld['signals'] = [];
  const publish = bus.publish.bind(bus);
  bus.publish = (channel, message) => {
    signals.push({ channel, message });
    publish(channel, message);
  };
  const log = createLogger('silent');
  const deskConsoles = createDeskConsoles({ db, bus, log, instanceId: 'domain-test', graceMs: config.desk.presenceGraceMs });
  const deps: Deps = {
    db,
    bus,
    log,
    config,
    now: () => new Date(),
    userIds: new UserIdDigests([TEST_SECRET_KEY], TEST_SECRET_KEY.id),
    deskConsoles,
    connectorBacklog: () => null,
    connectorState: () => 'closed',
  };
  const releases: Array<() => void> = [];
  let agents = 0;
  return {
    deps,
    db,
    signals,
    async tenant(name = 'Domainco') {
      return (await createTenant(deps, { name })).id;
    },
    async queue(input) {
      return (await createQueue(deps, { name: 'support', ...input })).id;
    },
    async agentOnline(tenantId, options = {}) {
      const email = `agent-${++agents}@example.test`;
      await createAgent(deps, { tenantId, email, name: `Agent ${agents}`, password: 'correct horse battery', ...options });
      const session = await login(deps, { tenantId, email, password: 'correct horse battery' }, { failed() {}, succeeded() {} });
      const console = deskConsoles.open(session.agent);
      releases.push(console.release);
      await console.recorded;
      return setPresence(deps, session.agent, 'available');
    },
    async close() {
      for (const release of releases) release();
      await deskConsoles.stop();
      await bus.close();
      await db.dropAndClose();
    },
  };
}

/** The AppError code a promise rejects with (or 'resolved'). */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}
