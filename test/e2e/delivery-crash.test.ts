import { afterEach, describe, expect, it } from 'vitest';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { messageTexts, numbered } from '../support/receivers.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { createTestDb } from '../support/test-db.js';
import { ADMIN_TOKEN, startTestService, type DbKind, type TestService } from '../support/test-service.js';

const SECRET = 'whsec_' + Buffer.from('crash-test-secret-0123456789abcdef').toString('base64');

/** What the helpdesk saw of one handover's user messages: every text, in order of first arrival. */
function deliveredTexts(helpdesk: GenericHelpdesk, handoverId: string): string[] {
  return messageTexts(helpdesk.eventsFor(handoverId));
}

/** Duplicates are allowed (at-least-once) only as exact repeats the receiver can drop by id. */
function expectOnlyExactRepeats(helpdesk: GenericHelpdesk, handoverId: string): void {
  const byEventId = new Map<string, string>();
  for (const body of helpdesk.eventsFor(handoverId)) {
    const text = JSON.stringify(body);
    const previous = byEventId.get(body.id as string);
    if (previous) expect(text).toBe(previous);
    byEventId.set(body.id as string, text);
  }
}

async function setUpConnectorQueue(api: TestService['api'], helpdesk: GenericHelpdesk) {
  const admin = (method: string, path: string, body?: unknown) => api(method, path, { token: ADMIN_TOKEN, body });
  const tenant = await admin('POST', '/v1/admin/tenants', { name: 'Crashco' });
  const connector = await admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
    type: 'webhook',
    name: 'hd',
    config: { url: helpdesk.url, secret: SECRET },
  });
  helpdesk.inboundUrl = connector.body.inboundUrl;
  await admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'q', connectorId: connector.body.id });
  const handover = await api('POST', '/v1/handovers', { token: tenant.body.apiKey, body: { conversationId: 'crash', queue: 'q', user: { id: 'u' } } });
  expect(handover.status).toBe(201);
  return { apiKey: tenant.body.apiKey as string, handoverId: handover.body.id as string };
}

async function postMessages(api: TestService['api'], apiKey: string, handoverId: string, from: number, to: number) {
  for (let i = from; i < to; i++) {
    const res = await api('POST', `/v1/handovers/${handoverId}/messages`, { token: apiKey, body: { id: `m-${i}`, text: `message ${i}` } });
    expect(res.status).toBe(202);
  }
}

describe.each<DbKind>(['pglite', 'pg'])('delivery survives a worker stopped mid-flight (%s)', (kind) => {
  let t: TestService | undefined;
  let helpdesk: GenericHelpdesk | undefined;
  afterEach(async () => {
    await t?.close();
    await helpdesk?.close();
  });

  it('loses nothing accepted and keeps the order when the worker is killed and restarted', async () => {
    t = await startTestService(kind);
    helpdesk = await startGenericHelpdesk(SECRET);
    // A slow helpdesk, so the stop lands while deliveries are in flight.
    helpdesk.respond = () => ({ status: 200, delayMs: 25 });
    const { apiKey, handoverId } = await setUpConnectorQueue(t.api, helpdesk);
    await postMessages(t.api, apiKey, handoverId, 0, 60);
    await helpdesk.waitFor(() => deliveredTexts(helpdesk!, handoverId).length >= 10, 20_000, 'the first deliveries');

    // No grace: the call in flight is aborted mid-request, as when a process dies.
    await t.service.stopBackground(0);
    const deliveredAtStop = deliveredTexts(helpdesk, handoverId).length;
    expect(deliveredAtStop).toBeLessThan(60);
    // Accepted while no worker runs: stored, delivered later.
    await postMessages(t.api, apiKey, handoverId, 60, 80);
    t.service.startBackground();

    await helpdesk.waitFor(() => deliveredTexts(helpdesk!, handoverId).length >= 80, 30_000, 'all 80 messages');
    expect(deliveredTexts(helpdesk, handoverId)).toEqual(numbered('message', 80));
    expectOnlyExactRepeats(helpdesk, handoverId);
  });
});

describe('delivery survives the process being killed (pg, kill -9)', () => {
  let server: ServerProcess | undefined;
  let t: TestService | undefined;
  let helpdesk: GenericHelpdesk | undefined;
  let db: Awaited<ReturnType<typeof createTestDb>> | undefined;
  afterEach(async () => {
    server?.child.kill('SIGKILL');
    await t?.close();
    await helpdesk?.close();
    await db?.dropAndClose();
  });

  it('another instance takes over the dead one’s lanes when their lease ends, in order, losing nothing', async () => {
    db = await createTestDb('pg');
    helpdesk = await startGenericHelpdesk(SECRET);
    helpdesk.respond = () => ({ status: 200, delayMs: 25 });
    server = await startServerProcess({
      DATABASE_URL: db.url!,
      HANDOVER_ADMIN_TOKEN: ADMIN_TOKEN,
      HANDOVER_DELIVERY_LEASE_MS: '2000',
      HANDOVER_DELIVERY_POLL_MS: '50',
    });
    const api = server.api;
    const { apiKey, handoverId } = await setUpConnectorQueue(api, helpdesk);
    await postMessages(api, apiKey, handoverId, 0, 60);
    await helpdesk.waitFor(() => deliveredTexts(helpdesk!, handoverId).length >= 10, 20_000, 'the first deliveries');
    server.child.kill('SIGKILL');
    await server.exited;
    const deliveredAtKill = deliveredTexts(helpdesk, handoverId).length;
    expect(deliveredAtKill).toBeLessThan(60);

    // A second instance on the same database; it also accepts more work.
    t = await startTestService('pg', {}, { db });
    await postMessages(t.api, apiKey, handoverId, 60, 80);
    await helpdesk.waitFor(() => deliveredTexts(helpdesk!, handoverId).length >= 80, 30_000, 'all 80 messages after takeover');
    expect(deliveredTexts(helpdesk, handoverId)).toEqual(numbered('message', 80));
    expectOnlyExactRepeats(helpdesk, handoverId);
  });
});

describe('SIGTERM loses nothing (pg)', () => {
  let server: ServerProcess | undefined;
  let t: TestService | undefined;
  let helpdesk: GenericHelpdesk | undefined;
  let db: Awaited<ReturnType<typeof createTestDb>> | undefined;
  afterEach(async () => {
    server?.child.kill('SIGKILL');
    await t?.close();
    await helpdesk?.close();
    await db?.dropAndClose();
  });

  it('finishes requests in flight, releases its lanes at once, and the next instance delivers everything in order', async () => {
    db = await createTestDb('pg');
    helpdesk = await startGenericHelpdesk(SECRET);
    helpdesk.respond = () => ({ status: 200, delayMs: 25 });
    // Default 30 s lease: if the lanes were not released on shutdown, the takeover below would stall.
    server = await startServerProcess({
      DATABASE_URL: db.url!,
      HANDOVER_ADMIN_TOKEN: ADMIN_TOKEN,
      HANDOVER_DELIVERY_POLL_MS: '50',
      HANDOVER_SHUTDOWN_GRACE_MS: '3000',
    });
    const { apiKey, handoverId } = await setUpConnectorQueue(server.api, helpdesk);

    // Keep sending while the signal arrives: each message is either accepted (202) or clearly refused.
    const accepted: string[] = [];
    let refused = 0;
    const sender = (async () => {
      for (let i = 0; i < 400 && server!.child.exitCode === null; i++) {
        try {
          const res = await server!.api('POST', `/v1/handovers/${handoverId}/messages`, { token: apiKey, body: { id: `m-${i}`, text: `message ${i}` } });
          if (res.status === 202) accepted.push(`message ${i}`);
          else refused++;
        } catch {
          refused++;
          break;
        }
      }
    })();
    await helpdesk.waitFor(() => deliveredTexts(helpdesk!, handoverId).length >= 5, 20_000, 'the first deliveries');
    server.child.kill('SIGTERM');
    expect(await server.exited, server.output()).toBe(0);
    await sender;
    expect(accepted.length, `${refused} refused while shutting down`).toBeGreaterThan(5);

    const { rows } = await db.query('select lane, locked_by from outbox_lanes where locked_by is not null');
    expect(rows).toEqual([]);

    t = await startTestService('pg', {}, { db });
    await helpdesk.waitFor(() => deliveredTexts(helpdesk!, handoverId).length >= accepted.length, 20_000, 'every accepted message');
    expect(deliveredTexts(helpdesk, handoverId)).toEqual(accepted);
    expect(accepted).toEqual(numbered('message', accepted.length));
    expectOnlyExactRepeats(helpdesk, handoverId);
  });
});
