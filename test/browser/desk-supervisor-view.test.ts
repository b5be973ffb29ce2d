import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { browserStores, keepFailureScreenshots, launchChromium, signInToDesk, watchPage } from './browser-support.js';
import type { DbKind } from '../support/test-db.js';
import { eventually, setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * The supervisor's view in the Team panel, on both stores: queue figures (waiting, longest wait, agents
 * online, chats held, chats per agent) and every live chat. The supervisor reads the chat an agent holds,
 * read-only and live as both sides write, then takes it: it moves to the supervisor's chats, the agent's
 * console lets it go, and the supervisor's reply reaches the user.
 */
describe.each<DbKind>(browserStores('pglite'))('the supervisor view in the desk (%s)', (kind) => {
  let t: TestService;
  let desk: DeskSetup;
  let browser: Browser;
  let ada: Page;
  let sam: Page;
  const problems: string[] = [];
  const supervisor = { email: `sam-${kind}@example.com`, password: 'supervisor password 1' };

  beforeAll(async () => {
    [t, browser] = await Promise.all([startTestService(kind), launchChromium()]);
    desk = await setUpDesk(t, { console: false });
    expect((await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/agents`, { ...supervisor, name: 'Sam Supervisor', role: 'supervisor' })).status).toBe(
      201,
    );
    ada = await (await browser.newContext()).newPage();
    sam = await (await browser.newContext()).newPage();
    watchPage(ada, problems, 'ada');
    watchPage(sam, problems, 'sam');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  }, 30_000);

  const ask = async (n: number, name: string) => {
    const res = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId: `view-${kind}-${n}`, queue: 'support', user: { id: `u-${n}`, name } },
    });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };

  it('shows queue figures, reads a held chat live, and takes it over', async () => {
    onTestFailed(() => keepFailureScreenshots(`desk-supervisor-view-${kind}`, { ada, sam }));
    await signInToDesk(ada, t.url, { email: desk.agentEmail, password: 'correct horse battery' });
    expect(await ada.locator('#team').isHidden()).toBe(true);
    const uma = await ask(1, 'Uma');
    await ada
      .locator('.waiting-item')
      .getByRole('button', { name: /^Accept / })
      .click();
    await ada.getByLabel('Reply to Uma').waitFor();
    expect((await t.api('POST', `/v1/handovers/${uma}/messages`, { token: desk.apiKey, body: { id: 'm-1', text: 'My parcel is late' } })).status).toBe(202);
    await ask(2, 'Vic');

    await signInToDesk(sam, t.url, supervisor);
    const support = sam.locator('#team .queue-figures tr[data-queue="support"]');
    await support.locator('td.waiting', { hasText: '1' }).waitFor();
    expect(await support.locator('td.online').textContent()).toBe('1');
    expect(await support.locator('td.held').textContent()).toBe('1');
    expect(await support.locator('td[data-wait]').textContent()).toMatch(/^0:\d\d$/);
    expect(await sam.locator('#team .overview-summary').textContent()).toBe('1 agent online · chats per agent: Ada Agent 1/3, Sam Supervisor 0/3');
    const chats = sam.locator('#team .live-chats');
    expect(await chats.locator('li[data-state="queued"]').textContent()).toContain('Vic (support) · waiting');
    expect(await chats.locator(`li[data-handover-id="${uma}"]`).textContent()).toContain('Uma (support) · with Ada Agent');

    // Read-only, and live: what the user and the agent write next shows up.
    await sam.getByRole('button', { name: 'Read the chat with Uma' }).click();
    const view = sam.locator(`section.watch-view[data-handover-id="${uma}"]`);
    await view.locator('li.from-user', { hasText: 'My parcel is late' }).waitFor();
    expect(await view.locator('.badge').textContent()).toBe('read-only · with Ada Agent');
    expect(await sam.getByLabel('Reply to Uma').count()).toBe(0);
    expect((await t.api('POST', `/v1/handovers/${uma}/messages`, { token: desk.apiKey, body: { id: 'm-2', text: 'Order A-1001' } })).status).toBe(202);
    await view.locator('li.from-user', { hasText: 'Order A-1001' }).waitFor();
    await ada.getByLabel('Reply to Uma').fill('Looking into it');
    await ada.getByLabel('Reply to Uma').press('Enter');
    await view.locator('li.from-agent', { hasText: 'Looking into it' }).waitFor();
    expect((await t.api('POST', `/v1/desk/handovers/${uma}/notes`, { token: desk.agentToken, body: { text: 'Carrier says Friday' } })).status).toBe(201);
    await view.locator('li.note', { hasText: 'Carrier says Friday' }).waitFor();
    expect(await view.locator('li.live, li.note').evaluateAll((els) => els.map((el) => (el.textContent?.includes('Carrier') ? 'note' : 'message')))).toEqual([
      'message',
      'message',
      'message',
      'note',
    ]);

    // Taken over: the chat is the supervisor's now, and the agent's console lets it go.
    await view.getByRole('button', { name: 'Take chat' }).click();
    await view.waitFor({ state: 'detached' });
    const reply = sam.getByLabel('Reply to Uma');
    await reply.waitFor();
    await ada.locator(`#my-chats .chat-tab.ended[data-handover-id="${uma}"]`, { hasText: 'taken over' }).waitFor();
    await ada.locator('li.divider', { hasText: 'Taken over by Sam Supervisor' }).waitFor();
    await reply.fill('Sam here, I will sort it out.');
    await reply.press('Enter');
    await eventually(async () => {
      const events = (await t.api('GET', `/v1/handovers/${uma}/events`, { token: desk.apiKey })).body.events as Array<{
        type: string;
        data: { message?: { text: string }; agent?: { name: string } };
      }>;
      return events.some(
        (e) => e.type === 'message.created' && e.data.message?.text === 'Sam here, I will sort it out.' && e.data.agent?.name === 'Sam Supervisor',
      );
    }, "the supervisor's reply at the bot");
    await support.locator('td.held', { hasText: '1' }).waitFor();
    expect(await sam.locator('#team .overview-summary').textContent()).toContain('Ada Agent 0/3');
    expect(problems).toEqual([]);
  });
});
