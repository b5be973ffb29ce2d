import { afterEach, describe, expect, it } from 'vitest';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { startTestService, type TestService } from '../support/test-service.js';

const SECRET_A = 'whsec_' + Buffer.from('first-secret-of-the-helpdesk-000000').toString('base64');
const SECRET_B = 'whsec_' + Buffer.from('second-secret-of-the-helpdesk-11111').toString('base64');

describe('changing a connector (pg)', () => {
  let t: TestService | undefined;
  const helpdesks: GenericHelpdesk[] = [];
  afterEach(async () => {
    await t?.close();
    for (const h of helpdesks.splice(0)) await h.close();
    t = undefined;
  });

  it('applies a new config at once, keeps secrets left out, and never answers with them', async () => {
    t = await startTestService('pg');
    const [first, moved, rekeyed] = await Promise.all([startGenericHelpdesk(SECRET_A), startGenericHelpdesk(SECRET_A), startGenericHelpdesk(SECRET_B)]);
    helpdesks.push(first!, moved!, rekeyed!);
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Umbrella' });
    const path = `/v1/admin/tenants/${tenant.body.id}/connectors`;
    const connector = await t.admin('POST', path, { type: 'webhook', name: 'desk', config: { url: first!.url, secret: SECRET_A } });
    await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'hd', connectorId: connector.body.id });
    const handOver = async (helpdesk: GenericHelpdesk, conversationId: string) => {
      const created = await t!.api('POST', '/v1/handovers', { token: tenant.body.apiKey, body: { conversationId, queue: 'hd', user: { id: conversationId } } });
      expect(created.status).toBe(201);
      await helpdesk.waitFor((r) => r.some((w) => w.body.conversationId === conversationId), 15_000, `${conversationId} at the helpdesk`);
      return created.body.id as string;
    };
    await handOver(first!, 'c-1');

    // A new URL only: the stored secret stays and still signs.
    const moveUrl = await t.admin('PATCH', `${path}/${connector.body.id}`, { config: { url: moved!.url } });
    expect(moveUrl.status).toBe(200);
    expect(JSON.stringify(moveUrl.body)).not.toContain(SECRET_A);
    await handOver(moved!, 'c-2');
    expect(moved!.rejected).toEqual([]);

    // A new secret: used at once both ways; the old one no longer verifies inbound events.
    const rekey = await t.admin('PATCH', `${path}/${connector.body.id}`, { name: 'desk-2', config: { url: rekeyed!.url, secret: SECRET_B } });
    expect(rekey.body).toMatchObject({ name: 'desk-2' });
    const handoverId = await handOver(rekeyed!, 'c-3');
    expect(rekeyed!.rejected).toEqual([]);
    rekeyed!.inboundUrl = connector.body.inboundUrl;
    first!.inboundUrl = connector.body.inboundUrl;
    expect((await first!.send({ type: 'agent.joined', handoverId, data: { agent: { id: 'a' } } })).status).toBe(401);
    expect((await rekeyed!.send({ type: 'agent.joined', handoverId, data: { agent: { id: 'a' } } })).status).toBe(200);

    const invalid = await t.admin('PATCH', `${path}/${connector.body.id}`, { config: { url: 'not a url' } });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.code).toBe('invalid_connector_config');
    const unknown = await t.admin('PATCH', `${path}/con_nope`, { name: 'x' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('connector_not_found');
    const { rows } = await t.db.query<{ config: string }>('select config::text as config from connectors');
    expect(rows[0]!.config).not.toContain(SECRET_B.slice(6));
  });
});
