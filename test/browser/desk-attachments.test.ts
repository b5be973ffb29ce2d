import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { keepFailureScreenshots, launchChromium, watchPage } from './browser-support.js';
import type { DbKind } from '../support/test-db.js';
import { eventually, setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';
import { diskStoreSettings, download, files, upload } from '../support/attachment-files.js';
import { startS3Server, type S3Server } from '../support/s3-server.js';

/**
 * Attachments through the console, on both databases and both attachment stores (embedded with the
 * disk store, PostgreSQL with an S3 bucket served by s3rver): the user's photo and PDF, sent through
 * the bot API, show as an image preview and a download; the agent attaches a file from the reply box
 * and the bot's event carries it with a signed link; a file of a refused type is not sent and the agent
 * is told why; a page sent as text never runs in the desk's origin.
 */
describe.each<{ kind: DbKind; store: 'disk' | 's3' }>([
  { kind: 'pglite', store: 'disk' },
  { kind: 'pg', store: 's3' },
])('attachments in the desk ($kind, $store store)', ({ kind, store }) => {
  let s3: S3Server | undefined;
  let t: TestService;
  let desk: DeskSetup;
  let browser: Browser;
  let ada: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    if (store === 's3') s3 = await startS3Server();
    const settings = store === 's3' ? s3!.settings : await diskStoreSettings();
    [t, browser] = await Promise.all([startTestService(kind, settings), launchChromium()]);
    desk = await setUpDesk(t, { console: false });
    ada = await (await browser.newContext({ acceptDownloads: false })).newPage();
    watchPage(ada, problems, 'ada');
  }, 60_000);

  afterAll(async () => {
    await Promise.all([browser?.close(), t?.close()]);
    await s3?.stop();
  }, 60_000);

  it('shows the user’s files as a preview and a download, and sends the agent’s to the bot', async () => {
    onTestFailed(() => keepFailureScreenshots(`desk-attachments-${kind}-${store}`, { ada }));
    await ada.goto(`${t.url}/desk`);
    await ada.getByLabel('Email').fill(desk.agentEmail);
    await ada.getByLabel('Password').fill('correct horse battery');
    await ada.getByRole('button', { name: 'Sign in' }).click();
    await ada.locator('#connection[data-state="live"]').waitFor();
    const created = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId: `files-${kind}-${store}`, queue: 'support', user: { id: 'u-1', name: 'Uma' } },
    });
    const handoverId: string = created.body.id;
    await ada
      .locator('.waiting-item')
      .getByRole('button', { name: /^Accept / })
      .click();
    await ada.getByLabel('Reply to Uma').waitFor();

    // The user sends a photo of the brake and a page disguised as text, through the bot.
    const photo = await upload(t, `/v1/handovers/${handoverId}/attachments`, { token: desk.apiKey, bytes: files.png, type: 'image/png', name: 'brake.png' });
    const page = await upload(t, `/v1/handovers/${handoverId}/attachments`, { token: desk.apiKey, bytes: files.html, type: 'text/plain', name: 'notes.html' });
    expect([photo.status, page.status]).toEqual([201, 201]);
    const sent = await t.api('POST', `/v1/handovers/${handoverId}/messages`, {
      token: desk.apiKey,
      body: { text: 'Here is the brake', attachments: [{ id: photo.body.id }, { id: page.body.id }] },
    });
    expect(sent.status).toBe(202);

    const message = ada.locator('.log li.live.from-user', { hasText: 'Here is the brake' });
    const preview = message.locator('figure.attachment.image img[alt="brake.png"]');
    await preview.waitFor();
    // The image really loaded (the desk's policy lets its own origin's images in; the link is signed).
    await eventually(() => preview.evaluate((img: any) => img.complete && img.naturalWidth === 1), 'the preview to load');
    const fileLink = message.locator('.attachment.file a', { hasText: 'notes.html' });
    await fileLink.waitFor();
    expect(await message.textContent()).not.toContain('Attachment:');
    // The page is served as a download, sandboxed, of the type its bytes showed: it can never run here.
    const served = await ada.evaluate(
      async (url) => {
        const res = await fetch(url);
        return {
          type: res.headers.get('content-type'),
          disposition: res.headers.get('content-disposition'),
          csp: res.headers.get('content-security-policy'),
          nosniff: res.headers.get('x-content-type-options'),
        };
      },
      (await fileLink.getAttribute('href'))!,
    );
    expect(served.type).toBe('text/plain; charset=utf-8');
    expect(served.disposition).toMatch(/^attachment; /);
    expect(served.csp).toContain('sandbox');
    expect(served.nosniff).toBe('nosniff');

    // The agent attaches a PDF from the reply box: the bot gets it as an attachment with a signed link.
    await ada.getByLabel('Attach file').setInputFiles({ name: 'receipt.pdf', mimeType: 'application/pdf', buffer: files.pdf });
    await ada.locator('.log li.live.from-agent .attachment.file a', { hasText: 'receipt.pdf' }).waitFor();
    const event = await eventually(async () => {
      const res = await t.api('GET', `/v1/handovers/${handoverId}/events`, { token: desk.apiKey });
      return res.body.events.find((e: any) => e.type === 'message.created' && e.data.message.attachments?.[0]?.name === 'receipt.pdf');
    }, "the agent's file on the bot side");
    const [attachment] = event.data.message.attachments;
    expect(attachment).toMatchObject({ contentType: 'application/pdf', size: files.pdf.length });
    const fetched = await download(t, attachment.url);
    expect(fetched.status).toBe(200);
    expect(fetched.bytes.equals(files.pdf)).toBe(true);

    // A program is not taken: nothing is sent and the agent reads why.
    await ada.getByLabel('Attach file').setInputFiles({ name: 'tool.exe', mimeType: 'application/octet-stream', buffer: files.elf });
    await ada.locator('.chat-notice', { hasText: 'tool.exe was not sent' }).waitFor();
    expect(await ada.locator('.log li.live .attachment', { hasText: 'tool.exe' }).count()).toBe(0);

    // Ended and opened again from History, the chat still shows its files. The list is on screen
    // before the chat ends: it is read again when the chat ends.
    const panel = ada.locator('#history');
    await panel.getByText('History', { exact: true }).click();
    await panel.locator('.history-list > li', { hasText: 'No closed chat matches' }).waitFor();
    await ada.getByRole('button', { name: 'End chat' }).click();
    await panel.locator('.history-list > li', { hasText: 'Uma' }).getByRole('button').click();
    const closed = ada.getByRole('region', { name: 'Closed chat with Uma' });
    await closed.locator('figure.attachment.image img[alt="brake.png"]').waitFor();
    await closed.locator('.attachment.file a', { hasText: 'receipt.pdf' }).waitFor();
    expect(problems).toEqual([]);
  });
});
