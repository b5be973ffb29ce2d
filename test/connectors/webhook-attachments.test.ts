import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { eventually, startTestService, type TestService } from '../support/test-service.js';
import { diskStoreSettings, download, files, upload } from '../support/attachment-files.js';

/**
 * A system that fetches a user's file by its URL (the generic webhook here; Zendesk and Genesys alike)
 * gets a link signed when the message is delivered, not when it was accepted: a delivery retried after
 * the link's lifetime still carries one that works.
 */
describe('attachment links towards a helpdesk (pg)', () => {
  let t: TestService;
  let helpdesk: GenericHelpdesk;
  let apiKey: string;

  beforeAll(async () => {
    [t, helpdesk] = await Promise.all([
      // Delivery in the HTTP thread whatever HANDOVER_TEST_DELIVERY_THREAD says: the case moves that thread's
      // clock (deps.now), and a delivery thread signs links by its own.
      startTestService('pg', {
        ...(await diskStoreSettings()),
        'attachments.linkTtlSeconds': 60,
        'attachments.helpdeskLinkTtlSeconds': 60,
        'delivery.thread': 'off',
      }),
      startGenericHelpdesk('whsec_dGVzdC1oZWxwZGVzay1zZWNyZXQ='),
    ]);
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Acme' });
    apiKey = tenant.body.apiKey;
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'webhook',
      name: 'hd',
      config: { url: helpdesk.url, secret: helpdesk.secret },
    });
    helpdesk.inboundUrl = connector.body.inboundUrl;
    await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'helpdesk', connectorId: connector.body.id });
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await helpdesk?.close();
  }, 30_000);

  it('signs the link anew on a retry that comes after the first one expired', async () => {
    const created = await t.api('POST', '/v1/handovers', { token: apiKey, body: { conversationId: 'c-link', queue: 'helpdesk', user: { id: 'u-link' } } });
    const handoverId: string = created.body.id;
    await eventually(async () => helpdesk.eventsFor(handoverId, 'handover.requested').length > 0, 'the handover at the helpdesk');
    const photo = await upload(t, `/v1/handovers/${handoverId}/attachments`, { token: apiKey, bytes: files.png, type: 'image/png', name: 'brake.png' });

    // The helpdesk refuses the message once; before the retry, two link lifetimes pass (the service's clock).
    const deps = t.service.deps;
    const realNow = deps.now;
    let refusedUrl = '';
    helpdesk.respond = (body, attempt) => {
      if (body.type !== 'message.created' || attempt > 1) return { status: 200 };
      refusedUrl = (body.data as any).message.attachments[0].url;
      deps.now = () => new Date(realNow().getTime() + 120_000);
      return { status: 503 };
    };
    try {
      await t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: apiKey, body: { text: 'photo', attachments: [{ id: photo.body.id }] } });
      const [delivered] = await eventually(async () => {
        const got = helpdesk.eventsFor(handoverId, 'message.created');
        return got.length > 0 ? got : null;
      }, 'the message at the helpdesk after its retry');
      const attachment = (delivered as any).data.message.attachments[0];
      expect(attachment).toMatchObject({ id: photo.body.id, name: 'brake.png', contentType: 'image/png', size: files.png.length });
      // The first link has expired by the service's clock; the retried one works.
      expect((await download(t, refusedUrl)).json.error.code).toBe('attachment_link_expired');
      const got = await download(t, attachment.url);
      expect(got.status).toBe(200);
      expect(got.bytes.equals(files.png)).toBe(true);
    } finally {
      deps.now = realNow;
    }
  });
});
