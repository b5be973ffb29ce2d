import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeSalesforce, type FakeSalesforce } from '../fakes/salesforce.js';
import { eventually, startTestService, type TestService } from '../support/test-service.js';
import { diskStoreSettings, files, upload } from '../support/attachment-files.js';

/**
 * Salesforce Messaging for In-App and Web attachments both ways, against the fake org: a user's file
 * kept by the service goes as a file entry (`…/conversation/{id}/file`, multipart `messageEntry` and
 * `fileData`), with the message's text on the first; a link given as such stays a line of the text; an
 * agent's file reaches the bot as an attachment with its URL, name and type.
 */
describe('Salesforce attachments against its fake (pg)', () => {
  let t: TestService;
  let fake: FakeSalesforce;
  let apiKey: string;

  beforeAll(async () => {
    [t, fake] = await Promise.all([
      startTestService('pg', { ...(await diskStoreSettings()), 'streams.leaseMs': 2000, 'streams.tickMs': 100 }),
      startFakeSalesforce({ pingMs: 200 }),
    ]);
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Initech' });
    apiKey = tenant.body.apiKey;
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'salesforce',
      name: 'sf',
      config: { baseUrl: fake.url, orgId: fake.orgId, esDeveloperName: fake.esDeveloperName },
    });
    expect(connector.status).toBe(201);
    await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'sales', connectorId: connector.body.id });
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await fake?.close();
  }, 30_000);

  it("sends the user's kept files as file entries and the agent's file to the bot", async () => {
    const created = await t.api('POST', '/v1/handovers', { token: apiKey, body: { conversationId: 'c-files', queue: 'sales', user: { id: 'u-files' } } });
    const handoverId: string = created.body.id;
    const conversation = await fake.waitFor(() => fake.latest(), 'the conversation at Salesforce');
    await fake.waitFor(() => conversation.openStreams.size === 1, 'the event stream');

    const photo = await upload(t, `/v1/handovers/${handoverId}/attachments`, { token: apiKey, bytes: files.png, type: 'image/png', name: 'brake.png' });
    const pdf = await upload(t, `/v1/handovers/${handoverId}/attachments`, { token: apiKey, bytes: files.pdf, type: 'application/pdf', name: 'invoice.pdf' });
    const sent = await t.api('POST', `/v1/handovers/${handoverId}/messages`, {
      token: apiKey,
      body: {
        text: 'The front brake',
        attachments: [{ id: photo.body.id }, { url: 'https://shop.example/manual.pdf', name: 'manual.pdf' }, { id: pdf.body.id }],
      },
    });
    expect(sent.status).toBe(202);
    await fake.waitFor(() => conversation.filesReceived.length >= 2, 'the two file entries');
    const [first, second] = conversation.filesReceived;
    expect(first).toMatchObject({ name: 'brake.png', type: 'image/png', text: 'The front brake\nmanual.pdf: https://shop.example/manual.pdf' });
    expect(first!.bytes.equals(files.png)).toBe(true);
    expect(second).toMatchObject({ name: 'invoice.pdf', type: 'application/pdf', text: '' });
    expect(second!.bytes.equals(files.pdf)).toBe(true);
    // Not sent a second time as a text message, and the echo of the user's own entries is dropped.
    expect(fake.userMessages(conversation.id).some((m) => m.includes('The front brake'))).toBe(false);

    fake.agentJoins(conversation.id);
    const attachment = fake.agentSendsFile(conversation.id, { name: 'return form.pdf', mimeType: 'application/pdf' }, 'Please fill this in');
    const event = await eventually(async () => {
      const res = await t.api('GET', `/v1/handovers/${handoverId}/events`, { token: apiKey });
      return res.body.events.find((e: any) => e.type === 'message.created' && e.data.message.text === 'Please fill this in');
    }, "the agent's file on the bot side");
    expect(event.data.message.attachments).toEqual([{ url: attachment.url, name: 'return form.pdf', contentType: 'application/pdf' }]);
    const echoes = (await t.api('GET', `/v1/handovers/${handoverId}/events`, { token: apiKey })).body.events.filter((e: any) => e.type === 'message.created');
    expect(echoes).toHaveLength(1);
  });
});
