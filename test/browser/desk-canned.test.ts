import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { browserStores, keepFailureScreenshots, launchChromium, watchPage } from './browser-support.js';
import type { DbKind } from '../support/test-db.js';
import { eventually, setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * Canned responses through the console, on both stores: a supervisor adds one for the whole team and
 * an agent one of their own in the Canned responses panel; in a chat the agent types `/`, picks one
 * with the keyboard, and it goes into the reply box with the user's and the agent's names filled in;
 * Enter sends it to the user.
 */
describe.each<DbKind>(browserStores('pg'))('canned responses in the desk (%s)', (kind) => {
  let t: TestService;
  let desk: DeskSetup;
  let browser: Browser;
  let agentPage: Page;
  let supervisorPage: Page;
  const problems: string[] = [];
  const supervisor = { email: `sam-${kind}@example.com`, password: 'supervisor password 1' };

  beforeAll(async () => {
    [t, browser] = await Promise.all([startTestService(kind), launchChromium()]);
    desk = await setUpDesk(t, { console: false });
    expect((await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/agents`, { ...supervisor, name: 'Sam Supervisor', role: 'supervisor' })).status).toBe(
      201,
    );
    agentPage = await (await browser.newContext()).newPage();
    supervisorPage = await (await browser.newContext()).newPage();
    watchPage(agentPage, problems, 'agent');
    watchPage(supervisorPage, problems, 'supervisor');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  }, 30_000);

  const signIn = async (page: Page, who: { email: string; password: string }) => {
    await page.goto(`${t.url}/desk`);
    await page.getByLabel('Email').fill(who.email);
    await page.getByLabel('Password').fill(who.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#connection[data-state="live"]').waitFor();
  };

  const addCanned = async (page: Page, shortcut: string, text: string, forEveryone: boolean) => {
    const panel = page.locator('#canned');
    if (!(await panel.locator('details').evaluate((d) => d.hasAttribute('open')))) await panel.getByText('Canned responses').click();
    await panel.getByLabel('Shortcut').fill(shortcut);
    await panel.getByLabel('Text').fill(text);
    if (forEveryone) await panel.getByLabel('For').selectOption('tenant');
    await panel.getByRole('button', { name: 'Add canned response' }).click();
    await panel.locator('.canned-list li', { hasText: `/${shortcut}` }).waitFor();
  };

  it("inserts the team's and the agent's own with `/`, placeholders filled from the chat", async () => {
    onTestFailed(() => keepFailureScreenshots(`desk-canned-${kind}`, { agent: agentPage, supervisor: supervisorPage }));
    await signIn(supervisorPage, supervisor);
    await addCanned(supervisorPage, 'hello', 'Hi {{user.name}}, {{agent.name}} here. How can I help?', true);

    await signIn(agentPage, { email: desk.agentEmail, password: 'correct horse battery' });
    // An agent may only add their own: the scope choice is not offered.
    await agentPage.locator('#canned').getByText('Canned responses').click();
    expect(await agentPage.locator('#canned').getByLabel('For').isHidden()).toBe(true);
    await addCanned(agentPage, 'bye', 'Thanks {{user.name}}, have a good day!', false);
    // The team's shows in the agent's list, without Delete; their own with it.
    const list = agentPage.locator('#canned .canned-list');
    await list.locator('li', { hasText: '/hello' }).waitFor();
    expect(await list.locator('li', { hasText: '/hello' }).getByRole('button').count()).toBe(0);
    expect(await list.locator('li', { hasText: '/bye' }).getByRole('button', { name: 'Delete /bye' }).count()).toBe(1);

    const created = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId: `canned-${kind}`, queue: 'support', user: { id: 'u-1', name: 'Uma' } },
    });
    expect(created.status).toBe(201);
    const handoverId: string = created.body.id;
    await agentPage
      .locator('.waiting-item')
      .getByRole('button', { name: /^Accept / })
      .click();
    const reply = agentPage.getByLabel('Reply to Uma');
    await reply.waitFor();

    // `/he` finds the team's greeting; Enter inserts it filled in (and does not send it yet).
    await reply.pressSequentially('/he');
    const picker = agentPage.getByRole('listbox', { name: 'Canned responses' });
    await picker.getByRole('option', { name: /\/hello/ }).waitFor();
    // Each keystroke asks again: the list for `/` or `/h` (both) may still be shown until `/he`'s answer arrives.
    await expect.poll(() => picker.getByRole('option').count(), { timeout: 10_000 }).toBe(1);
    await reply.press('Enter');
    await picker.waitFor({ state: 'hidden' });
    expect(await reply.inputValue()).toBe('Hi Uma, Ada Agent here. How can I help?');
    await reply.press('Enter');
    await agentPage.locator('.msg.from-agent', { hasText: 'Hi Uma, Ada Agent here.' }).waitFor();

    // `/` alone lists both; ↓ then Tab takes the second (by shortcut: bye, hello → hello second).
    await reply.pressSequentially('Ok. /');
    await picker.getByRole('option', { name: /\/bye/ }).waitFor();
    expect(await picker.getByRole('option').allTextContents()).toEqual(['/byeThanks Uma, have a good day!', '/helloHi Uma, Ada Agent here. How can I help?']);
    await reply.press('ArrowDown');
    await reply.press('ArrowDown');
    await reply.press('Tab');
    expect(await reply.inputValue()).toBe('Ok. Thanks Uma, have a good day!');
    // Escape closes the picker and keeps what was typed.
    await reply.pressSequentially(' /zz');
    await picker.getByText('No canned response matches').waitFor();
    await reply.press('Escape');
    await picker.waitFor({ state: 'hidden' });
    expect(await reply.inputValue()).toBe('Ok. Thanks Uma, have a good day! /zz');

    // The user (through the bot) got the greeting as the agent's message, as it was shown.
    const texts = await eventually(async () => {
      const events = await t.api('GET', `/v1/handovers/${handoverId}/events`, { token: desk.apiKey });
      const sent = events.body.events
        .filter((e: { type: string }) => e.type === 'message.created')
        .map((e: { data: { message: { text: string } } }) => e.data.message.text);
      return sent.length > 0 ? sent : null;
    }, 'the agent message on the bot side');
    expect(texts).toEqual(['Hi Uma, Ada Agent here. How can I help?']);

    // The agent deletes their own; it leaves their list.
    await list.getByRole('button', { name: 'Delete /bye' }).click();
    await list.locator('li', { hasText: '/bye' }).waitFor({ state: 'detached' });
    expect(problems).toEqual([]);
  });
});
