import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { browserStores, keepFailureScreenshots, launchChromium, watchPage } from './browser-support.js';
import type { DbKind } from '../support/test-db.js';
import { eventually, setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * Internal notes through the console, on both stores: an agent switches the reply box to "Internal
 * note" and adds one, shown apart from the conversation; a reply still goes to the user, the note does
 * not. The agent transfers the chat with a note for the next agent; the agent of the other queue
 * accepts it and reads both notes in the chat.
 */
describe.each<DbKind>(browserStores('pg'))('internal notes in the desk (%s)', (kind) => {
  let t: TestService;
  let desk: DeskSetup;
  let browser: Browser;
  let ada: Page;
  let bea: Page;
  const problems: string[] = [];
  const billing = { email: `bea-${kind}@example.com`, password: 'correct horse battery' };

  beforeAll(async () => {
    [t, browser] = await Promise.all([startTestService(kind), launchChromium()]);
    desk = await setUpDesk(t, { console: false });
    expect((await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/queues`, { name: 'billing' })).status).toBe(201);
    expect((await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/agents`, { ...billing, name: 'Bea Billing', queues: ['billing'] })).status).toBe(201);
    const login = await t.api('POST', '/v1/desk/login', { body: billing });
    expect((await t.api('PUT', '/v1/desk/presence', { token: login.body.token, body: { presence: 'available' } })).status).toBe(200);
    ada = await (await browser.newContext()).newPage();
    bea = await (await browser.newContext()).newPage();
    watchPage(ada, problems, 'ada');
    watchPage(bea, problems, 'bea');
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

  it('adds a note apart from the conversation, and hands one over with a transfer', async () => {
    onTestFailed(() => keepFailureScreenshots(`desk-notes-${kind}`, { ada, bea }));
    await Promise.all([signIn(ada, { email: desk.agentEmail, password: 'correct horse battery' }), signIn(bea, billing)]);
    const created = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId: `notes-${kind}`, queue: 'support', user: { id: 'u-1', name: 'Uma' } },
    });
    expect(created.status).toBe(201);
    const handoverId: string = created.body.id;
    await ada
      .locator('.waiting-item')
      .getByRole('button', { name: /^Accept / })
      .click();
    const reply = ada.getByLabel('Reply to Uma');
    await reply.waitFor();

    // A note: the box switches to note mode; Enter adds it, shown as a note, not as a message.
    await ada.getByLabel('Internal note', { exact: true }).check();
    await ada.locator('.composer.note-mode').waitFor();
    expect(await ada.getByRole('button', { name: 'Add note' }).isVisible()).toBe(true);
    await reply.fill('VIP customer; refund already approved');
    await reply.press('Enter');
    const note = ada.locator('.log li.note', { hasText: 'VIP customer; refund already approved' });
    await note.waitFor();
    expect(await note.locator('.meta').textContent()).toContain('Internal note · Ada Agent');
    expect(await reply.inputValue()).toBe('');
    expect(await ada.locator('.log li.live').count()).toBe(0);

    // Back to replying: this one goes to the user.
    await ada.getByLabel('Internal note', { exact: true }).uncheck();
    await reply.fill('Hello Uma, let me pass you to billing.');
    await reply.press('Enter');
    await ada.locator('.log li.live.from-agent', { hasText: 'let me pass you to billing' }).waitFor();

    // Transfer with a note for the next agent.
    await ada.getByLabel('Transfer to').selectOption('billing');
    await ada.getByLabel('Note for the next agent').fill('Charged twice on order A-1001');
    await ada.getByRole('button', { name: 'Transfer' }).click();
    // The chat leaves Ada's screen (it waits in billing now).
    await ada.locator(`section.chat[data-handover-id="${handoverId}"]`).waitFor({ state: 'detached' });

    await bea
      .locator('.waiting-item')
      .getByRole('button', { name: /^Accept / })
      .click();
    const beaLog = bea.locator('section.chat[data-handover-id] .log');
    const handed = beaLog.locator('li.note.transfer-note');
    await handed.waitFor();
    expect(await handed.textContent()).toContain('Note with the transfer to billing · Ada Agent');
    expect(await handed.textContent()).toContain('Charged twice on order A-1001');
    await beaLog.locator('li.note', { hasText: 'VIP customer' }).waitFor();
    // In time order: the first note, the reply, then the transfer note.
    const order = await beaLog.locator('li.note, li.live').evaluateAll((els) => els.map((el) => (el.classList.contains('note') ? 'note' : 'message')));
    expect(order).toEqual(['note', 'message', 'note']);

    // The user (through the bot) got the reply and the transfer, never a note.
    const events = await eventually(async () => {
      const res = await t.api('GET', `/v1/handovers/${handoverId}/events`, { token: desk.apiKey });
      return res.body.events.some(
        (e: { type: string }) => e.type === 'handover.accepted' && res.body.events.filter((x: { type: string }) => x.type === 'handover.accepted').length === 2,
      )
        ? res.body.events
        : null;
    }, 'the second accept on the bot side');
    const sent = JSON.stringify(events);
    expect(sent).toContain('let me pass you to billing');
    expect(sent).not.toContain('VIP customer');
    expect(sent).not.toContain('Charged twice');
    expect(problems).toEqual([]);
  });
});
