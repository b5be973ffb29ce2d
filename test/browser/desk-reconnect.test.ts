import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import {
  artifactsDir,
  keepFailureScreenshots,
  launchChromium,
  startHandover,
  startProxy,
  watchPage,
  type CuttableProxy,
  type HandoverProcess,
} from './browser-support.js';

/**
 * The desk's network drops mid-chat (a proxy between the browser and the server cuts every connection
 * and refuses new ones); the user keeps writing meanwhile. After the desk reconnects it shows every
 * message exactly once, in order — the same list the server has.
 */
describe('desk reconnects after a network drop', () => {
  let handover: HandoverProcess;
  let proxy: CuttableProxy;
  let browser: Browser;
  let desk: Page;
  let widget: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    [handover, browser] = await Promise.all([startHandover(), launchChromium()]);
    proxy = await startProxy(Number(new URL(handover.url).port));
    desk = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    widget = await (await browser.newContext({ viewport: { width: 390, height: 780 } })).newPage();
    watchPage(desk, problems, 'desk');
    watchPage(widget, problems, 'widget');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await handover?.stop();
  }, 30_000);

  it('loses and doubles nothing across the drop', async () => {
    onTestFailed(() => keepFailureScreenshots('desk-reconnect', { desk, widget }, handover));
    await desk.goto(`${proxy.url}/desk`);
    await desk.getByLabel('Email').fill(handover.agent.email);
    await desk.getByLabel('Password').fill(handover.agent.password);
    await desk.getByRole('button', { name: 'Sign in' }).click();
    await desk.getByLabel('Available').check();
    await desk.locator('#presence[data-presence="available"]').waitFor();

    await widget.goto(handover.demoUrl);
    await widget.getByRole('button', { name: 'Talk to a human' }).click();
    // (Not "Accept next": the user's own Accept button, once they are in the list.)
    await desk
      .locator('.waiting-item')
      .getByRole('button', { name: /^Accept / })
      .click();
    await widget.locator('#status', { hasText: 'chatting with Ada' }).waitFor();
    const chat = desk.locator('section.chat:not([hidden])');
    const userInput = widget.getByLabel('Your message');
    // The reply box, not the transfer note beside it.
    const reply = chat.getByLabel(/^Reply to /);

    const userSays = async (text: string) => {
      await userInput.fill(text);
      await userInput.press('Enter');
      await widget.locator('.msg.from-user', { hasText: text }).waitFor();
    };
    await userSays('before the drop 1');
    await chat.locator('.msg.from-user', { hasText: 'before the drop 1' }).waitFor();
    await reply.fill('before the drop 2');
    await reply.press('Enter');
    await chat.locator('.msg.from-agent', { hasText: 'before the drop 2' }).waitFor();

    // The network goes: the desk says so, the user keeps writing, the agent's send fails visibly.
    proxy.cut();
    await desk.locator('#connection[data-state="reconnecting"]').waitFor();
    for (const n of [1, 2, 3]) await userSays(`during the drop ${n}`);
    await reply.fill('written while offline');
    await reply.press('Enter');
    await chat.locator('.chat-notice', { hasText: 'Not sent' }).waitFor();
    await desk.screenshot({ path: join(artifactsDir, 'desk-offline.png') });

    // Back online: everything missed arrives, then the agent's retry (same client id) is stored once.
    proxy.restore();
    await desk.locator('#connection[data-state="live"]').waitFor({ timeout: 20_000 });
    await chat.locator('.msg.from-user', { hasText: 'during the drop 3' }).waitFor();
    await chat.getByRole('button', { name: 'Send' }).click();
    await chat.locator('.msg.from-agent', { hasText: 'written while offline' }).waitFor();
    await userSays('after the drop');
    await chat.locator('.msg.from-user', { hasText: 'after the drop' }).waitFor();

    const expected = [
      'before the drop 1',
      'before the drop 2',
      'during the drop 1',
      'during the drop 2',
      'during the drop 3',
      'written while offline',
      'after the drop',
    ];
    expect(await chat.locator('.log li.live .text').allTextContents()).toEqual(expected);
    const seqs = await chat.locator('.log li.live').evaluateAll((items) => items.map((li) => Number(li.getAttribute('data-seq'))));
    expect(seqs).toEqual(expected.map((_, i) => i + 1));

    // The server's own record agrees (read over the desk API with a second session).
    const login = await fetch(`${handover.url}/v1/desk/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(handover.agent),
      signal: AbortSignal.timeout(10_000),
    });
    const { token } = (await login.json()) as { token: string };
    const handoverId = await chat.getAttribute('data-handover-id');
    const res = await fetch(`${handover.url}/v1/desk/handovers/${handoverId}/messages`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
    const { messages } = (await res.json()) as { messages: Array<{ text: string }> };
    expect(messages.map((m) => m.text)).toEqual(expected);
    expect(problems).toEqual([]);
  }, 60_000);
});
