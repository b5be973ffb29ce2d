import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { browserStores, keepFailureScreenshots, launchChromium, signInToDesk, watchPage } from './browser-support.js';
import type { DbKind } from '../support/test-db.js';
import { setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * Replies in background chats, on both stores: the agent holds two chats and looks at the second; the
 * user of the first writes twice. Its unread count shows on the chat and in the tab title, a sound is
 * made with WebAudio and a browser notification is shown (permission granted); a reply in the chat on
 * screen does neither. Opening the chat clears its count. The console observes the page's own WebAudio
 * and Notification calls (recorded, then passed on to the browser's real ones).
 */
describe.each<DbKind>(browserStores('pglite'))('notifications for replies in background chats (%s)', (kind) => {
  let t: TestService;
  let desk: DeskSetup;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    [t, browser] = await Promise.all([startTestService(kind), launchChromium()]);
    desk = await setUpDesk(t, { console: false });
    context = await browser.newContext();
    await context.grantPermissions(['notifications'], { origin: t.url });
    // Records the page's own calls, then makes them: the real Notification and WebAudio run as usual.
    await context.addInitScript({
      content: `
        window.__notes = [];
        window.__tones = 0;
        const Real = window.Notification;
        class Recorded extends Real {
          constructor(title, options = {}) {
            window.__notes.push({ title, body: options.body ?? '', tag: options.tag ?? '' });
            super(title, options);
          }
        }
        Object.defineProperty(window, 'Notification', { value: Recorded, configurable: true, writable: true });
        const create = AudioContext.prototype.createOscillator;
        AudioContext.prototype.createOscillator = function () {
          window.__tones++;
          return create.call(this);
        };`,
    });
    page = await context.newPage();
    watchPage(page, problems, 'agent');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  }, 30_000);

  // What the init script recorded, and the title, read in the page (as functions: the desk's CSP forbids eval).
  type InPage = { __notes: Array<{ title: string; body: string; tag: string }>; __tones: number; document: { title: string } };
  const recorded = () => page.evaluate(() => (globalThis as unknown as InPage).__notes);
  const tones = () => page.evaluate(() => (globalThis as unknown as InPage).__tones);
  const notes = (n: number) => page.waitForFunction((count) => (globalThis as unknown as InPage).__notes.length === count, n);
  const titleIs = (title: string) => page.waitForFunction((wanted) => (globalThis as unknown as InPage).document.title === wanted, title);
  const say = async (id: string, n: number, text: string) =>
    expect((await t.api('POST', `/v1/handovers/${id}/messages`, { token: desk.apiKey, body: { id: `m-${n}`, text } })).status).toBe(202);

  it('counts, sounds and notifies a reply in a background chat; opening it clears the count', async () => {
    onTestFailed(() => keepFailureScreenshots(`desk-notify-${kind}`, { agent: page }));
    await signInToDesk(page, t.url, { email: desk.agentEmail, password: 'correct horse battery' });
    // Permission was granted: nothing to ask.
    expect(await page.getByRole('button', { name: 'Allow notifications' }).isHidden()).toBe(true);
    expect(await page.getByLabel('Sound on replies').isChecked()).toBe(true);

    const ids: string[] = [];
    for (const [n, name] of [
      [1, 'Uma'],
      [2, 'Vic'],
    ] as const) {
      const created = await t.api('POST', '/v1/handovers', {
        token: desk.apiKey,
        body: { conversationId: `notify-${kind}-${n}`, queue: 'support', user: { id: `u-${n}`, name } },
      });
      expect(created.status).toBe(201);
      ids.push(created.body.id);
      await page
        .locator('.waiting-item', { hasText: name })
        .getByRole('button', { name: /^Accept / })
        .click();
      await page.getByLabel(`Reply to ${name}`).waitFor();
    }
    const [uma, vic] = ids as [string, string];
    const umaTab = page.locator(`#my-chats .chat-tab[data-handover-id="${uma}"]`);
    expect(await page.locator(`#my-chats .chat-tab[data-handover-id="${vic}"]`).getAttribute('aria-current')).toBe('true');
    const tonesBefore = await tones();

    await say(uma, 1, 'Are you still there?');
    await umaTab.locator('.badge.unread', { hasText: '1' }).waitFor();
    await titleIs('(1) handover desk');
    await notes(1);
    expect(await recorded()).toEqual([{ title: 'Uma wrote', body: 'Are you still there?', tag: `handover-${uma}` }]);
    expect(await tones()).toBeGreaterThan(tonesBefore);

    await say(uma, 2, 'Hello?');
    await umaTab.locator('.badge.unread', { hasText: '2' }).waitFor();
    await titleIs('(2) handover desk');
    await notes(2);

    // A reply in the chat on screen: shown there, no count, no notification.
    const tonesNow = await tones();
    await say(vic, 3, 'Thanks, got it');
    await page.locator(`section.chat[data-handover-id="${vic}"] .log li.from-user`, { hasText: 'Thanks, got it' }).waitFor();
    expect((await recorded()).length).toBe(2);
    expect(await tones()).toBe(tonesNow);
    // (The title alternates with "● New chat waiting" for a few seconds after a chat arrived.)
    await titleIs('(2) handover desk');

    // Opening Uma's chat clears its count.
    await umaTab.click();
    await titleIs('handover desk');
    expect(await umaTab.locator('.badge.unread').count()).toBe(0);
    expect(problems).toEqual([]);
  });
});
