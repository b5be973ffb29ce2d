import { afterAll, onTestFinished } from 'vitest';
import { eventually, setUpDesk, startTestService, type DbKind, type DeskSetup, type TestService } from './test-service.js';

/**
 * Services shared by the cases of one describe block: starting a service (a migrated database, every
 * part of it) costs more than most cases, so cases that need nothing but their own tenant share one.
 * One service per set of settings, started when a case first asks for it and stopped after the block.
 *
 * A case on a shared service keeps to a tenant of its own (`setUpDesk`, or `POST /v1/admin/tenants`),
 * scopes any query of the database to it, and lets its work settle (`deliveriesSettled`) before it
 * closes the fakes that work goes to. A case that stops, breaks or reconfigures the service starts its
 * own with `startTestService`.
 *
 * Call in the body of a `describe`:
 *   const service = sharedServices('pg');
 *   it('...', async () => { const t = await service({ 'desk.presenceGraceMs': 1000 }); ... });
 */
export function sharedServices(kind: DbKind): (settings?: Record<string, unknown>) => Promise<TestService> {
  const started = new Map<string, Promise<TestService>>();
  afterAll(async () => {
    const services = await Promise.allSettled(started.values());
    started.clear();
    for (const s of services) if (s.status === 'fulfilled') await s.value.close();
  });
  return (settings = {}) => {
    const key = JSON.stringify(Object.entries(settings).sort(([a], [b]) => a.localeCompare(b)));
    let service = started.get(key);
    if (!service) started.set(key, (service = startTestService(kind, settings)));
    return service;
  };
}

/**
 * Resolves once nothing of the tenant is waiting in the outbox: every delivery it caused was made or
 * given up. A case on a shared service waits for this before it closes the fakes its deliveries go to,
 * so no retry towards a closed fake runs on into the next case.
 */
export async function deliveriesSettled(t: TestService, tenantId: string): Promise<void> {
  await eventually(async () => {
    const { rows } = await t.db.query<{ n: number }>(`select count(*)::int as n from outbox where tenant_id = $1 and state = 'pending'`, [tenantId]);
    return rows[0]!.n === 0;
  }, "the tenant's deliveries to be settled");
}

/**
 * Ends the tenant's handovers still open (through the bot API, as a bot would) and waits for its
 * deliveries to settle: what a case on a shared service does before it closes the fakes its tenant
 * talks to, so no delivery, poll or event stream of it runs on into the next case.
 */
export async function closeTenantWork(t: TestService, tenant: { id: string; apiKey: string }): Promise<void> {
  const { rows } = await t.db.query<{ id: string }>(`select id from handovers where tenant_id = $1 and state <> 'ended'`, [tenant.id]);
  for (const { id } of rows) {
    const ended = await t.api('POST', `/v1/handovers/${id}/end`, { token: tenant.apiKey, body: { reason: 'bot_ended' } });
    // Ended meanwhile by the system (409) is as good.
    if (ended.status !== 200 && ended.status !== 409) throw new Error(`ending ${id}: ${ended.status} ${JSON.stringify(ended.body)}`);
  }
  await deliveriesSettled(t, tenant.id);
}

/**
 * `setUpDesk` for a case on a shared service: the agent's console stream closes when the case ends, as
 * it did when the case stopped its own service.
 */
export async function setUpCaseDesk(t: TestService, options: Parameters<typeof setUpDesk>[1] = {}): Promise<DeskSetup> {
  const desk = await setUpDesk(t, options);
  const deskConsole = desk.console;
  if (deskConsole) onTestFinished(() => deskConsole.close());
  return desk;
}
