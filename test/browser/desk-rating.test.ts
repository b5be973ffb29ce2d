import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { browserStores, keepFailureScreenshots, launchChromium, signInToDesk, watchPage } from './browser-support.js';
import type { DbKind } from '../support/test-db.js';
import { setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * Satisfaction ratings in the console, on both stores: the agent ends a chat; the bot records the
 * user's rating; the ended chat still on screen shows it at once, and so do the History list, the
 * closed chat opened from it, and the user's Earlier chats when they come back.
 */
describe.each<DbKind>(browserStores('pg'))('satisfaction ratings in the desk (%s)', (kind) => {
  let t: TestService;
  let desk: DeskSetup;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    [t, browser] = await Promise.all([startTestService(kind), launchChromium()]);
    desk = await setUpDesk(t, { console: false });
    page = await (await browser.newContext()).newPage();
    watchPage(page, problems, 'agent');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  }, 30_000);

  it('shows the rating in the ended chat, in History, in the closed chat and in Earlier chats', async () => {
    onTestFailed(() => keepFailureScreenshots(`desk-rating-${kind}`, { agent: page }));
    await signInToDesk(page, t.url, { email: desk.agentEmail, password: 'correct horse battery' });
    const created = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId: `rate-${kind}`, queue: 'support', user: { id: 'u-1', name: 'Uma' } },
    });
    expect(created.status).toBe(201);
    const id: string = created.body.id;
    await page
      .locator('.waiting-item')
      .getByRole('button', { name: /^Accept / })
      .click();
    await page.getByLabel('Reply to Uma').waitFor();
    await page.getByRole('button', { name: 'End chat' }).click();
    await page.locator('#my-chats .chat-tab.ended').waitFor();

    const rated = await t.api('POST', `/v1/handovers/${id}/rating`, { token: desk.apiKey, body: { score: 4, comment: 'Quick and friendly' } });
    expect(rated.status).toBe(201);
    const line = page.locator(`section.chat[data-handover-id="${id}"] .log li.rating-line`);
    await line.waitFor();
    expect(await line.textContent()).toContain('★★★★☆ 4/5 · “Quick and friendly”');
    expect(await line.locator('[data-score="4"]').getAttribute('aria-label')).toBe('Rated 4 of 5: Quick and friendly');

    await page.getByRole('button', { name: 'Close' }).click();
    await page.locator('#history summary').click();
    const item = page.locator(`#history .history-list li[data-handover-id="${id}"]`);
    await item.locator('.rating[data-score="4"]').waitFor();
    await item.getByRole('button').click();
    const closed = page.locator(`section.history-view[data-handover-id="${id}"]`);
    expect(await closed.locator('li.rating-line').textContent()).toContain('4/5');

    // Uma comes back: beside her new chat, her earlier one shows how she rated it.
    const again = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId: `rate-${kind}-2`, queue: 'support', user: { id: 'u-1', name: 'Uma' } },
    });
    expect(again.status).toBe(201);
    await page
      .locator('.waiting-item')
      .getByRole('button', { name: /^Accept / })
      .click();
    await page.locator(`section.chat[data-handover-id="${again.body.id}"] .earlier-list li[data-handover-id="${id}"] .rating[data-score="4"]`).waitFor();
    expect(problems).toEqual([]);
  });
});
