import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeChatwoot, type FakeChatwoot } from '../fakes/chatwoot.js';
import { eventually, startTestService, type TestService } from '../support/test-service.js';
import { diskStoreSettings, files, upload } from '../support/attachment-files.js';

/**
 * Chatwoot attachments both ways, against the fake: the user's file kept by the service reaches the
 * conversation as the message's own attachment (multipart `attachments[]` on the messages API), a link
 * given as such stays a link in the text; an agent's reply with a file reaches the bot as an attachment
 * (its `data_url`, named).
 */
describe('chatwoot attachments against its fake (pg)', () => {
  let t: TestService;
  let fake: FakeChatwoot;
  let apiKey: string;

  beforeAll(async () => {
    [t, fake] = await Promise.all([startTestService('pg', await diskStoreSettings()), startFakeChatwoot()]);
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Woot' });
    apiKey = tenant.body.apiKey;
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'chatwoot',
      name: 'chatwoot',
      config: {
        baseUrl: fake.url,
        accountId: fake.accountId,
        inboxId: fake.inboxId,
        userToken: fake.userToken,
        botToken: fake.botToken,
        webhookSecret: fake.webhookSecret,
      },
    });
    fake.webhookTarget = connector.body.inboundUrl;
    await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'general', connectorId: connector.body.id });
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await fake?.close();
  }, 30_000);

  it("sends the user's kept file as a Chatwoot attachment and the agent's file to the bot", async () => {
    const created = await t.api('POST', '/v1/handovers', {
      token: apiKey,
      body: { conversationId: 'c-files', queue: 'general', user: { id: 'u-files', name: 'Uma' } },
    });
    const handoverId: string = created.body.id;
    const conversation = await eventually(async () => {
      const c = fake.conversationForHandover(handoverId);
      return c?.toggles.includes('open') ? c : null;
    }, 'the conversation opened for agents');

    const photo = await upload(t, `/v1/handovers/${handoverId}/attachments`, { token: apiKey, bytes: files.png, type: 'image/png', name: 'brake.png' });
    expect(photo.status).toBe(201);
    const sent = await t.api('POST', `/v1/handovers/${handoverId}/messages`, {
      token: apiKey,
      body: { text: 'The front brake', attachments: [{ id: photo.body.id }, { url: 'https://shop.example/manual.pdf', name: 'manual.pdf' }] },
    });
    expect(sent.status).toBe(202);
    const message = await eventually(
      async () => conversation.messages.find((m) => m.message_type === 'incoming' && m.content.startsWith('The front brake')),
      'the user message in Chatwoot',
    );
    expect(message.content).toBe('The front brake\nhttps://shop.example/manual.pdf');
    expect(message.attachments).toHaveLength(1);
    expect(message.attachments![0]).toMatchObject({ name: 'brake.png', content_type: 'image/png', file_type: 'image', file_size: files.png.length });
    expect(message.attachments![0]!.bytes.equals(files.png)).toBe(true);

    // A file alone (no text) is a message too.
    const pdf = await upload(t, `/v1/handovers/${handoverId}/attachments`, { token: apiKey, bytes: files.pdf, type: 'application/pdf', name: 'invoice.pdf' });
    await t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: apiKey, body: { text: '', attachments: [{ id: pdf.body.id }] } });
    const alone = await eventually(
      async () => conversation.messages.find((m) => m.attachments?.[0]?.name === 'invoice.pdf'),
      'the file-only message in Chatwoot',
    );
    expect(alone.content).toBe('');
    expect(alone.attachments![0]!.bytes.equals(files.pdf)).toBe(true);

    // The agent answers with a file: the bot gets it as an attachment, not as text.
    await fake.assign(conversation.id, { id: 1, name: 'Cora' });
    const reply = {
      event: 'message_created',
      id: 7001,
      content: 'Here is the form',
      message_type: 'outgoing',
      private: false,
      sender: { id: 1, name: 'Cora', type: 'user' },
      attachments: [
        {
          id: 1,
          message_id: 7001,
          file_type: 'file',
          extension: 'pdf',
          data_url: `${fake.url}/rails/active_storage/blobs/abc/return%20form.pdf`,
          file_size: 1234,
        },
      ],
      conversation: { id: conversation.id, status: 'open' },
      account: { id: fake.accountId },
    };
    const body = JSON.stringify(reply);
    expect((await fake.resend({ body, headers: fake.sign(body) })).status).toBe(200);
    const event = await eventually(async () => {
      const res = await t.api('GET', `/v1/handovers/${handoverId}/events`, { token: apiKey });
      return res.body.events.find((e: any) => e.type === 'message.created' && e.data.message.text === 'Here is the form');
    }, "the agent's file on the bot side");
    expect(event.data.message.attachments).toEqual([{ url: reply.attachments[0]!.data_url, name: 'return form.pdf' }]);
  });
});
