import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeChatwoot, type FakeChatwoot } from '../fakes/chatwoot.js';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { eventually, startTestService, type TestService } from '../support/test-service.js';

/** 6,000 characters that do not compress: far past what one B-tree index entry can hold. */
const longId = () => randomBytes(4500).toString('base64');

describe('inbound ids of any length (pg)', () => {
  let t: TestService;
  let helpdesk: GenericHelpdesk;
  let chatwoot: FakeChatwoot;
  let apiKey: string;
  const handovers: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestService('pg');
    helpdesk = await startGenericHelpdesk(`whsec_${randomBytes(32).toString('base64')}`);
    chatwoot = await startFakeChatwoot();
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Long ids' });
    apiKey = tenant.body.apiKey;
    const configs = {
      webhook: { url: helpdesk.url, secret: helpdesk.secret },
      chatwoot: {
        baseUrl: chatwoot.url,
        accountId: chatwoot.accountId,
        inboxId: chatwoot.inboxId,
        userToken: chatwoot.userToken,
        botToken: chatwoot.botToken,
        webhookSecret: chatwoot.webhookSecret,
      },
    };
    for (const [type, config] of Object.entries(configs)) {
      const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, { type, name: type, config });
      if (type === 'webhook') helpdesk.inboundUrl = connector.body.inboundUrl;
      else chatwoot.webhookTarget = connector.body.inboundUrl;
      await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: type, connectorId: connector.body.id });
      const created = await t.api('POST', '/v1/handovers', { token: apiKey, body: { conversationId: `c-${type}`, queue: type, user: { id: 'u' } } });
      expect(created.status).toBe(201);
      handovers[type] = created.body.id;
    }
  });

  afterAll(async () => {
    await t?.close();
    await helpdesk?.close();
    await chatwoot?.close();
  });

  async function agentTexts(handoverId: string): Promise<string[]> {
    const res = await t.api('GET', `/v1/handovers/${handoverId}/events`, { token: apiKey });
    return res.body.events
      .filter((e: { type: string }) => e.type === 'message.created')
      .map((e: { data: { message: { text: string } } }) => e.data.message.text);
  }

  it('takes a generic webhook whose webhook-id is very long, once', async () => {
    const webhookId = longId();
    const event = { type: 'message.created', handoverId: handovers.webhook!, data: { message: { id: 'm-1', text: 'long delivery id' } } };
    expect(await helpdesk.send(event, { webhookId })).toMatchObject({ status: 200, body: { duplicate: false } });
    expect(await helpdesk.send(event, { webhookId })).toMatchObject({ status: 200, body: { duplicate: true } });
    expect(await agentTexts(handovers.webhook!)).toEqual(['long delivery id']);
  });

  it('takes a Chatwoot reply whose message id is very long, once', async () => {
    const conversation = await eventually(async () => chatwoot.conversationForHandover(handovers.chatwoot!), 'the Chatwoot conversation');
    // Chatwoot's events name its conversation: wait until the handover knows it, or the event finds nothing.
    await eventually(
      async () =>
        (await t.db.query<{ external_ref: string | null }>('select external_ref from handovers where id = $1', [handovers.chatwoot!])).rows[0]?.external_ref,
      'the conversation id stored',
    );
    const body = JSON.stringify({
      event: 'message_created',
      id: longId(),
      content: 'long message id',
      message_type: 'outgoing',
      private: false,
      sender: { id: 1, name: 'Cora', type: 'user' },
      conversation: { id: conversation.id },
    });
    expect(await chatwoot.resend({ body, headers: chatwoot.sign(body) })).toMatchObject({ status: 200, body: { duplicate: false } });
    expect(await chatwoot.resend({ body, headers: chatwoot.sign(body) })).toMatchObject({ status: 200, body: { duplicate: true } });
    expect(await agentTexts(handovers.chatwoot!)).toEqual(['long message id']);
  });

  it('recognises a long id stored as it came, before ids were kept by digest (a retry across an upgrade)', async () => {
    const webhookId = randomBytes(300).toString('base64').slice(0, 400);
    const { rows } = await t.db.query<{ connector_id: string }>(`select connector_id from handovers where id = $1`, [handovers.webhook!]);
    await t.db.query('insert into inbound_receipts (connector_id, webhook_id) values ($1, $2)', [rows[0]!.connector_id, webhookId]);
    const event = { type: 'message.created', handoverId: handovers.webhook!, data: { message: { id: 'm-legacy', text: 'sent before the upgrade' } } };
    expect(await helpdesk.send(event, { webhookId })).toMatchObject({ status: 200, body: { duplicate: true } });
    expect(await agentTexts(handovers.webhook!)).not.toContain('sent before the upgrade');
  });
});
