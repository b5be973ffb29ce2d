import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { keepFailureScreenshots, launchChromium, startHandover, watchPage, type HandoverProcess } from './browser-support.js';

/**
 * A supervisor's console shows the team panel: the agent signed in elsewhere, available, with their
 * load and the chat they hold. The supervisor puts that chat back in the waiting line, sets the agent
 * away, then signs them out; the agent's console follows each step, and ends on the sign-in form. An
 * agent's console has no team panel.
 */
describe('the supervisor’s team panel', () => {
  let handover: HandoverProcess;
  let browser: Browser;
  let agentPage: Page;
  let supervisorPage: Page;
  let widget: Page;
  const problems: string[] = [];
  const supervisor = { email: 'sam@demo.test', password: 'supervisor password 1' };

  beforeAll(async () => {
    [handover, browser] = await Promise.all([startHandover(), launchChromium()]);
    agentPage = await (await browser.newContext()).newPage();
    supervisorPage = await (await browser.newContext()).newPage();
    watchPage(agentPage, problems, 'agent');
    watchPage(supervisorPage, problems, 'supervisor');
    widget = await (await browser.newContext({ viewport: { width: 390, height: 780 } })).newPage();
    watchPage(widget, problems, 'widget');
    const tenants = await handover.admin('GET', '/v1/admin/tenants');
    const tenantId: string = tenants.body.tenants[0].id;
    const created = await handover.admin('POST', `/v1/admin/tenants/${tenantId}/agents`, { ...supervisor, name: 'Sam Supervisor', role: 'supervisor' });
    expect(created.status).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await handover?.stop();
  }, 30_000);

  const signIn = async (page: Page, who: { email: string; password: string }) => {
    await page.goto(handover.deskUrl);
    await page.getByLabel('Email').fill(who.email);
    await page.getByLabel('Password').fill(who.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#connection[data-state="live"]').waitFor();
  };

  it('sets an agent away and signs them out, and the agent’s console follows', async () => {
    onTestFailed(() => keepFailureScreenshots('desk-supervisor', { agent: agentPage, supervisor: supervisorPage, widget }, handover));
    await signIn(agentPage, handover.agent);
    await agentPage.getByLabel('Available').check();
    await agentPage.locator('#presence[data-presence="available"]').waitFor();
    expect(await agentPage.locator('#team').isHidden()).toBe(true);

    // A user asks for a person; the agent takes the chat.
    await widget.goto(handover.demoUrl);
    await widget.getByRole('button', { name: 'Talk to a human' }).click();
    await agentPage
      .locator('.waiting-item')
      .getByRole('button', { name: /^Accept / })
      .click();
    await widget.locator('#status', { hasText: 'chatting with Ada' }).waitFor();
    await agentPage.locator('#my-chats .chat-tab:not(.ended)').waitFor();

    await signIn(supervisorPage, supervisor);
    const ada = supervisorPage.locator('#team-list .team-member', { hasText: 'Ada' });
    await ada.and(supervisorPage.locator('[data-state="available"]')).waitFor();
    expect(await ada.textContent()).toContain('1/');

    // The supervisor puts the chat back in the line: it leaves the agent's chats and waits again.
    await ada.getByRole('button', { name: /^Return .* to the support queue$/ }).click();
    await agentPage.locator('.waiting-item').first().waitFor();
    await agentPage.locator('#my-chats .chat-tab.ended').waitFor();
    await ada.locator('.held-chats').waitFor({ state: 'detached' });
    expect(await ada.textContent()).toContain('0/');

    await ada.getByRole('button', { name: /^Set .* away$/ }).click();
    await agentPage.locator('#presence[data-presence="away"]').waitFor();
    await ada.and(supervisorPage.locator('[data-state="away"]')).waitFor();

    await ada.getByRole('button', { name: /^Sign .* out$/ }).click();
    await agentPage.locator('#signin-error', { hasText: 'Your session was ended' }).waitFor();
    expect(await agentPage.locator('#desk').isHidden()).toBe(true);
    await ada.and(supervisorPage.locator('[data-state="signed out"]')).waitFor();
    expect(problems).toEqual([]);
  });
});
