import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { artifactsDir, keepFailureScreenshots, launchChromium, startHandover, watchPage, type HandoverProcess } from './browser-support.js';

const XSS = '<img src=x onerror=alert(1)>';

/**
 * The whole story in real Chromium against `handover start` with its demo: a user in /demo asks for a
 * human, an agent in /desk sees them arrive, accepts, they talk (typing shown both ways, markup shown
 * as text), the agent ends, and the bot answers again.
 */
describe('desk and demo in a real browser', () => {
  let handover: HandoverProcess;
  let browser: Browser;
  let desk: Page;
  let widget: Page;
  let secondWidget: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    [handover, browser] = await Promise.all([startHandover(), launchChromium()]);
    desk = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    widget = await (await browser.newContext({ viewport: { width: 390, height: 780 }, isMobile: true, hasTouch: true })).newPage();
    watchPage(desk, problems, 'desk');
    secondWidget = await (await browser.newContext({ viewport: { width: 390, height: 780 } })).newPage();
    watchPage(widget, problems, 'widget');
    watchPage(secondWidget, problems, 'second widget');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await handover?.stop();
  }, 30_000);

  it('hands a demo user over to a desk agent and back to the bot', async () => {
    onTestFailed(() => keepFailureScreenshots('desk-story', { desk, widget, secondWidget }, handover));
    // The agent signs in and becomes available.
    await desk.goto(handover.deskUrl);
    await desk.getByLabel('Email').fill(handover.agent.email);
    await desk.getByLabel('Password').fill(handover.agent.password);
    await desk.getByRole('button', { name: 'Sign in' }).click();
    await desk.locator('#connection[data-state="live"]').waitFor();
    await desk.getByLabel('Available').check();
    await desk.locator('#presence[data-presence="available"]').waitFor();

    // The user talks to the bot, then asks for a human and sees their place in line.
    await widget.goto(handover.demoUrl);
    await widget.locator('.msg.from-bot').first().waitFor();
    await widget.getByLabel('Your message').fill('What are your opening hours?');
    await widget.getByLabel('Your message').press('Enter');
    await widget.locator('.msg.from-bot', { hasText: 'Monday to Friday' }).waitFor();
    await widget.getByRole('button', { name: 'Talk to a human' }).click();
    await widget.locator('.msg.from-bot', { hasText: 'You are number 1 in line' }).waitFor();
    await widget.locator('#status', { hasText: 'number 1 in line' }).waitFor();

    // The desk signals the newcomer: highlighted in the list, and in the tab title.
    const item = desk.locator('.waiting-item.new', { hasText: 'Guest' });
    await item.waitFor();
    await desk.waitForFunction("document.title.includes('New chat waiting') || document.title.startsWith('(1)')", undefined, { timeout: 5000 });
    expect(await item.locator('.wait').textContent()).toMatch(/^\d+:\d{2}$/);
    const userName = (await item.locator('strong').textContent())!;
    await desk.getByRole('button', { name: `Accept ${userName}` }).click();

    // The chat shows the bot transcript, the user's details and metadata.
    const chat = desk.locator('section.chat:not([hidden])');
    await chat.locator('.msg.transcript', { hasText: 'What are your opening hours?' }).waitFor();
    await chat.locator('.details dd', { hasText: 'demo widget' }).waitFor();
    expect(await chat.locator('.details').textContent()).toContain(userName);
    await widget.locator('.msg.from-system', { hasText: 'Ada joined the chat' }).waitFor();
    await widget.locator('#status', { hasText: 'chatting with Ada' }).waitFor();

    // The user types: the agent sees it, then the message.
    const userInput = widget.getByLabel('Your message');
    await userInput.pressSequentially('My bike has a flat tyre', { delay: 20 });
    await chat.locator('.typing', { hasText: 'is typing' }).waitFor();
    await userInput.press('Enter');
    await chat.locator('.msg.from-user', { hasText: 'My bike has a flat tyre' }).waitFor();
    await chat.locator('.typing:empty').waitFor();

    // The agent types: the user sees it, then the reply.
    const reply = chat.getByLabel(`Reply to ${userName}`);
    await reply.pressSequentially('Sorry to hear that! Which model is it?', { delay: 20 });
    await widget.locator('#typing', { hasText: 'Ada is typing' }).waitFor();
    await reply.press('Enter');
    await widget.locator('.msg.from-agent', { hasText: 'Which model is it?' }).waitFor();
    await widget.locator('#typing:empty').waitFor();

    // Markup is shown as text on both sides, never run.
    await userInput.fill(XSS);
    await userInput.press('Enter');
    const shownOnDesk = chat.locator('.msg.from-user .text', { hasText: 'onerror' });
    await shownOnDesk.waitFor();
    expect(await shownOnDesk.textContent()).toBe(XSS);
    expect(await chat.locator('.log img').count()).toBe(0);
    await reply.fill('<b>bold?</b> <script>alert(2)</script>');
    await reply.press('Enter');
    const shownInWidget = widget.locator('.msg.from-agent .text', { hasText: 'bold?' });
    await shownInWidget.waitFor();
    expect(await shownInWidget.textContent()).toBe('<b>bold?</b> <script>alert(2)</script>');
    expect(await widget.locator('.messages b, .messages img, .messages script').count()).toBe(0);

    // Messages appear once each, in the order they were sent (the agent's own reply shows once the
    // service has stored it, which may be after the widget has it).
    await chat.locator('.log li.live .text', { hasText: 'bold?' }).waitFor();
    const deskTexts = await chat.locator('.log li.live .text').allTextContents();
    expect(deskTexts).toEqual(['My bike has a flat tyre', 'Sorry to hear that! Which model is it?', XSS, '<b>bold?</b> <script>alert(2)</script>']);

    // Meanwhile a second user asks for a person: the desk signals them while the first chat goes on.
    await secondWidget.goto(handover.demoUrl);
    await secondWidget.getByLabel('Your message').fill('Can I talk to someone about my invoice?');
    await secondWidget.getByLabel('Your message').press('Enter');
    await secondWidget.locator('#status', { hasText: 'number 1 in line' }).waitFor();
    const second = desk.locator('.waiting-item.new');
    await second.waitFor();
    const secondName = (await second.locator('strong').textContent())!;
    await userInput.pressSequentially('It is the Northwind Trail', { delay: 20 });
    await chat.locator('.typing', { hasText: 'is typing' }).waitFor();
    await desk.screenshot({ path: join(artifactsDir, 'desk.png') });

    // Several chats at once: the agent takes the second user too, and transfers them to billing.
    await desk.getByRole('button', { name: `Accept ${secondName}` }).click();
    const secondChat = desk.locator('section.chat:not([hidden])', { hasText: 'about my invoice' });
    await secondChat.waitFor();
    expect(await desk.locator('#my-chats .chat-tab').count()).toBe(2);
    await secondChat.getByLabel('Transfer to').selectOption('billing');
    await secondChat.getByRole('button', { name: 'Transfer' }).click();
    await secondWidget.locator('.msg.from-system', { hasText: 'transferred to our billing team' }).waitFor();
    await desk.locator('.queue', { hasText: 'billing' }).locator('.waiting-item', { hasText: secondName }).waitFor();
    await desk.locator('#my-chats .chat-tab', { hasText: userName }).click();
    await userInput.press('Enter');
    await chat.locator('.msg.from-user', { hasText: 'It is the Northwind Trail' }).waitFor();

    // The agent ends with a reason; the bot takes over and answers the next message.
    await chat.getByLabel('End reason').selectOption('agent_ended');
    await chat.getByRole('button', { name: 'End chat' }).click();
    await chat.locator('.divider', { hasText: 'Chat ended' }).waitFor();
    await widget.locator('.msg.from-bot', { hasText: 'Ada has left the chat' }).waitFor();
    await widget.locator('#status', { hasText: 'demo bot' }).waitFor();
    await userInput.fill('And how long does shipping take?');
    await userInput.press('Enter');
    await widget.locator('.msg.from-bot', { hasText: 'Orders ship within' }).waitFor();
    await widget.screenshot({ path: join(artifactsDir, 'demo.png') });
    await desk.screenshot({ path: join(artifactsDir, 'desk-ended.png') });

    // The message after the end went to the bot, not to the desk.
    expect(await chat.locator('.log li.live').count()).toBe(5);
    expect(problems).toEqual([]);
  }, 60_000);
});
