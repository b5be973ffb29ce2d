import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HandoverClient, HandoverError } from '../../packages/client/src/index.js';
import { setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';
import { diskStoreSettings, files } from '../support/attachment-files.js';

/** The client's attachment calls against a running service: upload, send by id, read back with the key. */
describe('the client with attachments (pglite)', () => {
  let t: TestService;
  let desk: DeskSetup;

  beforeAll(async () => {
    t = await startTestService('pglite', await diskStoreSettings());
    desk = await setUpDesk(t);
  }, 60_000);

  afterAll(async () => {
    desk?.console?.close();
    await t?.close();
  }, 30_000);

  it('uploads a file, sends it in a message and reads it back; a refused type is a coded error', async () => {
    const bot = new HandoverClient({ baseUrl: t.url, apiKey: desk.apiKey });
    const {
      handover: { id: handoverId },
    } = await bot.createHandover({ conversationId: 'c-client-files', queue: 'support', user: { id: 'u-1', name: 'Uma' } });
    const uploaded = await bot.uploadAttachment(handoverId, { bytes: files.pdf, name: 'order A-1001.pdf', contentType: 'application/pdf' });
    expect(uploaded).toMatchObject({ name: 'order A-1001.pdf', contentType: 'application/pdf', size: files.pdf.length });
    await t.api('POST', `/v1/desk/handovers/${handoverId}/accept`, { token: desk.agentToken });
    await bot.sendMessage(handoverId, { text: 'my order', attachments: [{ id: uploaded.id }] });
    const listed = await t.api('GET', `/v1/desk/handovers/${handoverId}/messages`, { token: desk.agentToken });
    expect(listed.body.messages.at(-1).attachments[0]).toMatchObject({ id: uploaded.id, name: 'order A-1001.pdf' });

    const file = await bot.getAttachment(handoverId, uploaded.id);
    expect(Buffer.from(file.bytes).equals(files.pdf)).toBe(true);
    expect(file).toMatchObject({ contentType: 'application/pdf', name: 'order A-1001.pdf' });

    const refused = await bot.uploadAttachment(handoverId, { bytes: files.elf, name: 'tool' }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(HandoverError);
    expect(refused).toMatchObject({ status: 415, code: 'attachment_type_not_allowed' });
  });
});
