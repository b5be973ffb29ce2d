import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { browserStores, keepFailureScreenshots, launchChromium, watchPage } from './browser-support.js';
import type { DbKind } from '../support/test-db.js';
import { setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * History through the console, on both stores: a returning user's earlier chat is listed beside the
 * live one and opens read-only (messages and notes); the History panel finds closed chats by text and
 * by user, and opens them; Close goes back to the live chat.
 */
describe.each<DbKind>(browserStores('pglite'))('history in the desk (%s)', (kind) => {
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

  async function closedChat(conversationId: string, user: Record<string, string>, said: string, note?: string) {
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId, queue: 'support', user } });
    expect(created.status).toBe(201);
    const id: string = created.body.id;
    expect((await t.api('POST', `/v1/desk/handovers/${id}/accept`, { token: desk.agentToken })).status).toBe(200);
    expect((await t.api('POST', `/v1/handovers/${id}/messages`, { token: desk.apiKey, body: { id: `${conversationId}-1`, text: said } })).status).toBe(202);
    expect(
      (await t.api('POST', `/v1/desk/handovers/${id}/messages`, { token: desk.agentToken, body: { id: `${conversationId}-2`, text: 'Sorted, thanks!' } }))
        .status,
    ).toBe(202);
    if (note) expect((await t.api('POST', `/v1/desk/handovers/${id}/notes`, { token: desk.agentToken, body: { text: note } })).status).toBe(201);
    expect((await t.api('POST', `/v1/desk/handovers/${id}/end`, { token: desk.agentToken, body: {} })).status).toBe(200);
    return id;
  }

  it("shows a returning user's earlier chat beside the live one, and finds closed chats by text and user", async () => {
    onTestFailed(() => keepFailureScreenshots(`desk-history-${kind}`, { agent: page }));
    await page.goto(`${t.url}/desk`);
    await page.getByLabel('Email').fill(desk.agentEmail);
    await page.getByLabel('Password').fill('correct horse battery');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#connection[data-state="live"]').waitFor();
    await closedChat(`parcel-${kind}`, { id: 'u-1', name: 'Uma' }, 'My parcel is late', 'Sent a replacement');
    await closedChat(`invoice-${kind}`, { id: 'u-2', name: 'Otto' }, 'Wrong amount on my invoice');

    // Uma comes back: her earlier chat is listed beside the live one.
    expect(
      (
        await t.api('POST', '/v1/handovers', {
          token: desk.apiKey,
          body: { conversationId: `again-${kind}`, queue: 'support', user: { id: 'u-1', name: 'Uma' } },
        })
      ).status,
    ).toBe(201);
    await page
      .locator('.waiting-item')
      .getByRole('button', { name: /^Accept / })
      .click();
    const live = page.locator('section.chat:not(.history-view):not([hidden])');
    const earlier = live.locator('.earlier-list li');
    await earlier.first().waitFor();
    expect(await earlier.count()).toBe(1);
    expect(await earlier.textContent()).toContain('Sorted, thanks!');

    // Opened read-only: the messages and the note; no reply box.
    await earlier.getByRole('button').click();
    const view = page.getByRole('region', { name: 'Closed chat with Uma' });
    await view.locator('.msg.live', { hasText: 'My parcel is late' }).waitFor();
    await view.locator('.msg.note', { hasText: 'Sent a replacement' }).waitFor();
    expect(await view.locator('textarea').count()).toBe(0);
    expect(await live.count()).toBe(0);
    await view.getByRole('button', { name: 'Close' }).click();
    await view.waitFor({ state: 'detached' });
    // Back to the live chat (the closed ones the agent held earlier are still listed, ended).
    await page.locator('#my-chats .chat-tab:not(.ended)').click();
    await live.locator('textarea:not([disabled])').waitFor();

    // The History panel: my closed chats, newest first; then by text, then by user in the team's.
    const panel = page.locator('#history');
    await panel.getByText('History', { exact: true }).click();
    const results = panel.locator('.history-list > li');
    await results.nth(1).waitFor();
    expect(await results.allTextContents()).toEqual([expect.stringContaining('Otto'), expect.stringContaining('Uma')]);
    await panel.getByLabel('Text').fill('INVOICE');
    await panel.getByRole('button', { name: 'Search history' }).click();
    await results.nth(1).waitFor({ state: 'detached' });
    expect(await results.allTextContents()).toEqual([expect.stringContaining('Otto')]);
    await panel.getByLabel('Text').fill('');
    await panel.getByLabel('Whose').selectOption('team');
    await panel.getByLabel('User').fill('uma');
    await panel.getByRole('button', { name: 'Search history' }).click();
    await results.filter({ hasText: 'Uma' }).waitFor();
    expect(await results.count()).toBe(1);
    await panel.getByLabel('User').fill('nobody');
    await panel.getByRole('button', { name: 'Search history' }).click();
    await panel.getByText('No closed chat matches').waitFor();
    await panel.getByLabel('User').fill('otto');
    await panel.getByRole('button', { name: 'Search history' }).click();
    await results.filter({ hasText: 'Otto' }).getByRole('button').click();
    await page.getByRole('region', { name: 'Closed chat with Otto' }).locator('.msg', { hasText: 'Wrong amount on my invoice' }).waitFor();
    expect(problems).toEqual([]);
  });
});
