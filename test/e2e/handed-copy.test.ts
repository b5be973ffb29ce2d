import { afterEach, describe, expect, it } from 'vitest';
import { writeUserMessages, type UserMessageWrite } from '../../src/handover/accept-user-messages.js';
import { LaneHandoff } from '../../src/delivery/lane-handoff.js';
import { startDeliveryWorker, type DeliveryWorker, type OutboxRow } from '../../src/delivery/worker.js';
import { ConnectorHealth } from '../../src/resilience/circuit-breaker.js';
import { newId } from '../../src/store/ids.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { eventually, startTestService, type TestService } from '../support/test-service.js';

const SECRET = 'whsec_' + Buffer.from('handed-copy-secret-0123456789abcd').toString('base64');

/**
 * A copy of an item handed to the worker after the item was delivered — as when the accept path's
 * hand-over arrives (from the HTTP thread) after the lane's run already read and delivered it — is not
 * delivered again: the outbox decides what is still pending. Driven step by step, not by timing.
 */
describe('a handed copy of a delivered item (pg)', () => {
  let t: TestService | undefined;
  let helpdesk: GenericHelpdesk | undefined;
  let worker: DeliveryWorker | undefined;
  afterEach(async () => {
    await worker?.stop({ graceMs: 1000 });
    await t?.close();
    await helpdesk?.close();
    t = helpdesk = worker = undefined;
  });

  it('is not delivered a second time', async () => {
    t = await startTestService('pg');
    helpdesk = await startGenericHelpdesk(SECRET);
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Copyco' });
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'webhook',
      name: 'hd',
      config: { url: helpdesk.url, secret: SECRET },
    });
    await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'q', connectorId: connector.body.id });
    const created = await t.api('POST', '/v1/handovers', { token: tenant.body.apiKey, body: { conversationId: 'c-1', queue: 'q', user: { id: 'u-1' } } });
    expect(created.status).toBe(201);
    const handoverId: string = created.body.id;
    await helpdesk.waitFor((r) => r.some((w) => w.body.type === 'handover.requested'), 10_000, 'handover.requested');
    // From here on only this test's worker delivers.
    await t.service.stopBackground(1000);

    const delivered: OutboxRow[] = [];
    let runs = 0;
    const handoff = new LaneHandoff('copy-test', 30_000);
    const noDelivery = async () => {
      throw new Error('not this side');
    };
    worker = startDeliveryWorker({
      db: t.db,
      bus: t.service.deps.bus,
      log: createLogger('silent'),
      instanceId: 'copy-test',
      concurrency: 4,
      leaseMs: 30_000,
      timeoutMs: 2000,
      pollIntervalMs: 60_000,
      retryBaseMs: 20,
      retryMaxMs: 200,
      deliverers: {
        agent: {
          async deliver(row) {
            delivered.push(row);
          },
          onGiveUp: noDelivery,
        },
        bot: { deliver: noDelivery, onGiveUp: noDelivery },
      },
      health: new ConnectorHealth({ failureThreshold: 5, cooldownMs: 1000, maxInflightPerConnector: 4 }),
      quoteAnswers: false,
      handoff,
      onRunsChanged: (n) => (runs = n),
    });

    const now = new Date();
    const id = newId('message', now.getTime());
    const write: UserMessageWrite = {
      tenantId: tenant.body.id,
      handoverId,
      clientId: 'once',
      messageId: id,
      text: 'once',
      attachments: [],
      createdAt: now,
      work: { kind: 'message.created', eventId: newId('event'), handoverId, message: { id, text: 'once', attachments: [], createdAt: now.toISOString() } },
      traceParent: null,
    };
    const [written] = await writeUserMessages(t.db, [write], 3, handoff);
    expect(written).toMatchObject({ handed: true });
    // Delivered, recorded, and the lane given back.
    await eventually(async () => delivered.length === 1 && runs === 0, 'the item delivered and its lane given back');
    const { rows: left } = await t.db.query(`select id from outbox where id = $1 and state = 'pending'`, [delivered[0]!.id]);
    expect(left).toEqual([]);

    // The late copy: a run starts for it, reads the outbox, finds nothing pending, and ends.
    const copy = delivered[0]!;
    expect(handoff.hand([{ lane: copy.lane, connectorId: copy.connector_id, items: [copy], wasIdle: false }])).toBe(true);
    // Taken at once, in the same turn.
    expect(runs).toBe(1);
    await eventually(async () => runs === 0 || undefined, 'the run of the copy ended');
    expect(delivered).toHaveLength(1);
  });
});
