import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbKinds, type DbKind } from '../support/test-db.js';
import { eventually, setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';
import { diskStoreSettings, download, files, upload } from '../support/attachment-files.js';

/**
 * Attachments over real HTTP on both stores (disk attachment store): both ways through the desk, the
 * signed links and what they answer, and every bound — size, type from the bytes, a link changed or
 * expired, a file of another handover — each with its stable code.
 */
describe.each<DbKind>(dbKinds)('attachments (%s)', (kind) => {
  let t: TestService;
  let desk: DeskSetup;
  let handoverId: string;

  beforeAll(async () => {
    t = await startTestService(kind, { ...(await diskStoreSettings()), 'attachments.maxBytes': 4096 });
    desk = await setUpDesk(t);
    const created = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId: `att-${kind}`, queue: 'support', user: { id: 'u-1', name: 'Uma' } },
    });
    handoverId = created.body.id;
    expect((await t.api('POST', `/v1/desk/handovers/${handoverId}/accept`, { token: desk.agentToken })).status).toBe(200);
  }, 60_000);

  afterAll(async () => {
    desk?.console?.close();
    await t?.close();
  }, 30_000);

  it("carries the user's file to the desk and the agent's to the bot, each through a signed link", async () => {
    // The bot uploads the user's photo, then sends it in a message by id.
    const photo = await upload(t, `/v1/handovers/${handoverId}/attachments`, { token: desk.apiKey, bytes: files.png, type: 'image/png', name: 'brake.png' });
    expect(photo.status).toBe(201);
    expect(photo.body).toMatchObject({ name: 'brake.png', contentType: 'image/png', size: files.png.length });
    expect(photo.body.id).toMatch(/^att_/);
    expect(
      (
        await t.api('POST', `/v1/handovers/${handoverId}/messages`, {
          token: desk.apiKey,
          body: { text: 'Here is the brake', attachments: [{ id: photo.body.id }] },
        })
      ).status,
    ).toBe(202);

    const listed = await t.api('GET', `/v1/desk/handovers/${handoverId}/messages`, { token: desk.agentToken });
    const [seen] = listed.body.messages.at(-1).attachments;
    expect(seen).toMatchObject({ id: photo.body.id, name: 'brake.png', contentType: 'image/png', size: files.png.length });
    const image = await download(t, seen.url);
    expect(image.status).toBe(200);
    expect(image.bytes.equals(files.png)).toBe(true);
    expect(image.headers.get('content-type')).toBe('image/png');
    expect(image.headers.get('content-disposition')).toMatch(/^inline; /);
    expect(image.headers.get('x-content-type-options')).toBe('nosniff');
    expect(image.headers.get('content-security-policy')).toContain('sandbox');

    // The agent sends a PDF: the bot's event carries it with a link; it is a download, never a page.
    const invoice = await upload(t, `/v1/desk/handovers/${handoverId}/attachments`, {
      token: desk.agentToken,
      bytes: files.pdf,
      type: 'application/pdf',
      name: 'invoice "A-1001".pdf',
    });
    expect(invoice.status).toBe(201);
    expect(
      (await t.api('POST', `/v1/desk/handovers/${handoverId}/messages`, { token: desk.agentToken, body: { text: '', attachments: [{ id: invoice.body.id }] } }))
        .status,
    ).toBe(202);
    const event = await eventually(async () => {
      const res = await t.api('GET', `/v1/handovers/${handoverId}/events`, { token: desk.apiKey });
      return res.body.events.find((e: any) => e.type === 'message.created' && e.data.message.attachments.length > 0);
    }, 'the agent message event');
    const [sent] = event.data.message.attachments;
    expect(sent).toMatchObject({ id: invoice.body.id, contentType: 'application/pdf', name: 'invoice _A-1001_.pdf' });
    const pdf = await download(t, sent.url);
    expect(pdf.status).toBe(200);
    expect(pdf.bytes.equals(files.pdf)).toBe(true);
    expect(pdf.headers.get('content-disposition')).toMatch(/^attachment; filename="invoice _A-1001_.pdf"/);

    // With its own key the bot reads the file even after the link has expired.
    const own = await download(t, `${t.url}/v1/handovers/${handoverId}/attachments/${invoice.body.id}`, desk.apiKey);
    expect(own.status).toBe(200);
    expect(own.bytes.equals(files.pdf)).toBe(true);
  });

  it('refuses what is too large, of a type not allowed or not what it claims, and empty files', async () => {
    const path = `/v1/handovers/${handoverId}/attachments`;
    const big = await upload(t, path, { token: desk.apiKey, bytes: Buffer.concat([files.pdf, Buffer.alloc(5000, 0x20)]), type: 'application/pdf' });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('body_too_large');

    const elf = await upload(t, path, { token: desk.apiKey, bytes: files.elf, type: 'application/octet-stream', name: 'tool' });
    expect(elf.status).toBe(415);
    expect(elf.body.error.code).toBe('attachment_type_not_allowed');

    // Declared an image, but the bytes are a PDF; a page declared as such, even though it is text.
    const lying = await upload(t, path, { token: desk.apiKey, bytes: files.pdf, type: 'image/png', name: 'photo.png' });
    expect(lying.status).toBe(415);
    expect(lying.body.error.code).toBe('attachment_type_mismatch');
    const page = await upload(t, path, { token: desk.apiKey, bytes: files.html, type: 'text/html', name: 'page.html' });
    expect(page.status).toBe(415);
    expect(page.body.error.code).toBe('attachment_type_mismatch');

    const empty = await upload(t, path, { token: desk.apiKey, bytes: Buffer.alloc(0), type: 'image/png' });
    expect(empty.status).toBe(400);
    expect(empty.body.error.code).toBe('attachment_empty');
  });

  it('answers 403 with a stable code for a changed or expired link, and 404 for a file of another handover', async () => {
    const file = await upload(t, `/v1/handovers/${handoverId}/attachments`, { token: desk.apiKey, bytes: files.png, type: 'image/png', name: 'a.png' });
    const link = new URL(file.body.url);
    const tampered = new URL(link);
    tampered.searchParams.set('expires', String(Number(link.searchParams.get('expires')) + 3600));
    const changed = await download(t, tampered.toString());
    expect(changed.status).toBe(403);
    expect(changed.json.error.code).toBe('attachment_link_invalid');
    const bare = await download(t, `${t.url}/v1/attachments/${file.body.id}`);
    expect(bare.status).toBe(403);
    expect(bare.json.error.code).toBe('attachment_link_invalid');

    const { path } = t.service.deps.attachments!.links.sign(file.body.id, new Date(Date.now() - 3_600_000));
    const expired = await download(t, `${t.url}${path}`);
    expect(expired.status).toBe(403);
    expect(expired.json.error.code).toBe('attachment_link_expired');

    // Another handover of the same tenant cannot send this one's file.
    const other = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId: `att-other-${kind}`, queue: 'support', user: { id: 'u-2' } },
    });
    const misused = await t.api('POST', `/v1/handovers/${other.body.id}/messages`, {
      token: desk.apiKey,
      body: { text: 'x', attachments: [{ id: file.body.id }] },
    });
    expect(misused.status).toBe(404);
    expect(misused.body.error.code).toBe('attachment_not_found');
  });

  it("erases a user's files with their data: the bytes leave the store and the link finds nothing", async () => {
    const created = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId: `att-erase-${kind}`, queue: 'support', user: { id: 'u-erase' } },
    });
    const file = await upload(t, `/v1/handovers/${created.body.id}/attachments`, {
      token: desk.apiKey,
      bytes: files.png,
      type: 'image/png',
      name: 'id-card.png',
    });
    expect(file.status).toBe(201);
    const key = `${desk.tenantId}/${file.body.id}`;
    expect((await t.service.deps.attachments!.store.get(key))?.equals(files.png)).toBe(true);
    await t.api('POST', `/v1/handovers/${created.body.id}/end`, { token: desk.apiKey, body: { reason: 'user_ended' } });
    const erased = await t.api('DELETE', '/v1/users/u-erase', { token: desk.apiKey });
    expect(erased.status).toBe(200);
    expect(await t.service.deps.attachments!.store.get(key)).toBeNull();
    const gone = await download(t, file.body.url);
    expect(gone.status).toBe(404);
    expect(gone.json.error.code).toBe('attachment_not_found');
  });
});
