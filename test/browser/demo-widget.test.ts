import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { keepFailureScreenshots, launchChromium, startHandover, watchPage, type HandoverProcess } from './browser-support.js';

const GREETING = 'Hi! I am the demo bot';

/**
 * The demo widget in real Chromium against `handover start` with its demo: a user who asks for a person
 * while nobody is online leaves a message that reaches the agent once one is; on a phone the bot's
 * hand-back message stays in view above the suggestions; after a restart the widget is not greeted
 * again and an error that no longer holds goes away.
 */
describe('the demo widget in a real browser', () => {
  let handover: HandoverProcess;
  let browser: Browser;
  let desk: Page;
  let widget: Page;
  const problems: string[] = [];
  const previousGrace = process.env.HANDOVER_PRESENCE_GRACE_MS;

  beforeAll(async () => {
    // A short presence grace, so a wait ends soon after the last agent goes away.
    process.env.HANDOVER_PRESENCE_GRACE_MS = '1000';
    [handover, browser] = await Promise.all([startHandover(), launchChromium()]);
    desk = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    widget = await (await browser.newContext({ viewport: { width: 390, height: 700 }, isMobile: true, hasTouch: true })).newPage();
    watchPage(desk, problems, 'desk');
    watchPage(widget, problems, 'widget');
  }, 60_000);

  afterAll(async () => {
    // Given back as found: the variable is process-wide, and every service started later reads it.
    if (previousGrace === undefined) delete process.env.HANDOVER_PRESENCE_GRACE_MS;
    else process.env.HANDOVER_PRESENCE_GRACE_MS = previousGrace;
    await browser?.close();
    await handover?.stop();
  }, 30_000);

  const userSays = async (page: Page, text: string) => {
    await page.getByLabel('Your message').fill(text);
    await page.getByLabel('Your message').press('Enter');
  };

  it('offers to leave a message when nobody is online, and passes it on once an agent is', async () => {
    onTestFailed(() => keepFailureScreenshots('demo-widget-message', { desk, widget }, handover));
    await widget.goto(handover.demoUrl);
    await widget.locator('.msg.from-bot', { hasText: GREETING }).waitFor();
    await widget.getByRole('button', { name: 'Talk to a human' }).click();
    await widget.locator('.msg.from-bot', { hasText: 'Nobody from our team is online right now. Leave a message' }).waitFor();
    await widget.locator('#status', { hasText: 'leave a message' }).waitFor();
    expect(await widget.locator('#chips button').count()).toBe(0);

    await userSays(widget, 'My front brake squeaks since yesterday. Can someone look at order 1042?');
    await widget.locator('.msg.from-bot', { hasText: 'your message is kept for our team' }).waitFor();
    await widget.locator('#status', { hasText: 'Your message is waiting' }).waitFor();

    // An agent comes online: the message goes to them with the conversation.
    await desk.goto(handover.deskUrl);
    await desk.getByLabel('Email').fill(handover.agent.email);
    await desk.getByLabel('Password').fill(handover.agent.password);
    await desk.getByRole('button', { name: 'Sign in' }).click();
    await desk.locator('#connection[data-state="live"]').waitFor();
    await desk.getByLabel('Available').check();
    await widget.locator('.msg.from-system', { hasText: 'passing your message on' }).waitFor();
    await widget.locator('#status', { hasText: 'number 1 in line' }).waitFor();
    const item = desk.locator('.waiting-item', { hasText: 'Guest' });
    const userName = (await item.locator('strong').textContent())!;
    await desk.getByRole('button', { name: `Accept ${userName}` }).click();
    const chat = desk.locator('section.chat:not([hidden])');
    await chat.locator('.msg.transcript', { hasText: 'order 1042' }).waitFor();
    await widget.locator('.msg.from-system', { hasText: 'Ada joined the chat' }).waitFor();
    expect(problems).toEqual([]);
  }, 60_000);

  it("keeps the bot's hand-back message in view on a phone, above the suggestions", async () => {
    onTestFailed(() => keepFailureScreenshots('demo-widget-hand-back', { desk, widget }, handover));
    const chat = desk.locator('section.chat:not([hidden])');
    const reply = chat.getByRole('textbox', { name: /^Reply to / });
    // Enough of a conversation to fill the phone's screen.
    for (const [agent, user] of [
      ['Hello! Sorry about the squeak. Is it the disc brake model?', 'Yes, the Trail 2 with hydraulic discs.'],
      ['Thanks. Squeaks often come from a dirty disc. Have you cleaned it?', 'Not yet. With what?'],
      ['Isopropyl alcohol and a clean cloth, both sides of the disc.', 'Great, I will try that tonight.'],
      ['If it still squeaks, bring it in: the pads may need replacing, free under warranty.', 'Perfect, thank you!'],
    ] as const) {
      await reply.fill(agent);
      await reply.press('Enter');
      await widget.locator('.msg.from-agent', { hasText: agent }).waitFor();
      await userSays(widget, user);
      await chat.locator('.msg.from-user', { hasText: user }).waitFor();
    }
    // The agent sends a file from the desk: the user gets it as a link that downloads it.
    await chat.getByLabel('Attach file').setInputFiles({ name: 'warranty.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4\n%%EOF\n') });
    const file = widget.locator('.msg.from-agent .file a', { hasText: 'warranty.pdf' });
    await file.waitFor();
    const served = await widget.evaluate(
      async (url) => {
        const res = await fetch(url);
        return { status: res.status, type: res.headers.get('content-type'), disposition: res.headers.get('content-disposition') };
      },
      (await file.getAttribute('href'))!,
    );
    expect(served).toMatchObject({ status: 200, type: 'application/pdf' });
    expect(served.disposition).toMatch(/^attachment; /);
    await chat.getByRole('button', { name: 'End chat' }).click();
    const handBack = widget.locator('.msg.from-bot', { hasText: 'Ada has left the chat. I am back' });
    await handBack.waitFor();
    await widget.locator('#chips button').first().waitFor();
    await widget.locator('#status', { hasText: 'demo bot' }).waitFor();

    // The list scrolls; its newest message is whole inside its visible part, suggestions below it.
    // (A string: the browser's DOM types are not in this project's type library.)
    const place = (await widget.evaluate(`(() => {
      const list = document.getElementById('messages');
      const box = list.getBoundingClientRect();
      const last = list.lastElementChild;
      const rect = last.getBoundingClientRect();
      const chips = document.getElementById('chips').getBoundingClientRect();
      return { text: last.textContent, scrolls: list.scrollHeight > box.height, top: rect.top - box.top, bottom: box.bottom - rect.bottom, chipsBelow: chips.top >= box.bottom - 1 };
    })()`)) as { text: string; scrolls: boolean; top: number; bottom: number; chipsBelow: boolean };
    expect(place.text).toContain('Ada has left the chat');
    expect(place.scrolls).toBe(true);
    expect(place.top).toBeGreaterThanOrEqual(0);
    expect(place.bottom).toBeGreaterThanOrEqual(0);
    expect(place.chipsBelow).toBe(true);

    // The bot asks how it went; the user taps four stars: the rating reaches the desk's ended chat.
    await widget.getByRole('button', { name: '★★★★', exact: true }).click();
    await widget.locator('.msg.from-bot', { hasText: 'Thank you for rating the chat 4 of 5' }).waitFor();
    await chat.locator('li.rating-line [data-score="4"]').waitFor();
    expect(problems).toEqual([]);
  }, 60_000);

  it('offers to leave a message when the wait ends because the last agent went away', async () => {
    const page = await (await browser.newContext({ viewport: { width: 390, height: 700 } })).newPage();
    watchPage(page, problems, 'waiting widget');
    onTestFailed(() => keepFailureScreenshots('demo-widget-agent-left', { desk, widget: page }, handover));
    await page.goto(handover.demoUrl);
    await page.getByRole('button', { name: 'Talk to a human' }).click();
    await page.locator('#status', { hasText: 'number 1 in line' }).waitFor();
    await desk.getByLabel('Away').check();
    await page.locator('.msg.from-bot', { hasText: 'nobody from our team is online any more. Leave a message' }).waitFor();
    await page.locator('#status', { hasText: 'leave a message' }).waitFor();
    await page.context().close();
    expect(problems).toEqual([]);
  }, 60_000);

  it('after a restart greets nobody again and drops an error that no longer holds', async () => {
    const page = await (await browser.newContext({ viewport: { width: 390, height: 700 } })).newPage();
    watchPage(page, problems, 'restarted widget');
    onTestFailed(() => keepFailureScreenshots('demo-widget-restart', { widget: page }, handover));
    await page.goto(handover.demoUrl);
    await page.locator('.msg.from-bot', { hasText: GREETING }).waitFor();
    await userSays(page, 'What are your opening hours?');
    await page.locator('.msg.from-bot', { hasText: 'Monday to Friday' }).waitFor();

    await handover.restart(async () => {
      await page.locator('#status', { hasText: 'Offline' }).waitFor();
      await userSays(page, 'Do you ship to Norway?');
      await page.locator('#error', { hasText: 'Not sent' }).waitFor();
    });

    // Back: the stream resumes, the error goes, what was not sent is still in the box.
    await page.locator('#status', { hasText: 'chatting with the demo bot' }).waitFor();
    await page.locator('#error').waitFor({ state: 'hidden' });
    expect(await page.getByLabel('Your message').inputValue()).toBe('Do you ship to Norway?');
    await page.getByLabel('Your message').press('Enter');
    await page.locator('.msg.from-bot', { hasText: 'Orders ship within' }).waitFor();
    expect(await page.locator('.msg.from-bot', { hasText: GREETING }).count()).toBe(1);
    expect(await page.locator('.msg.from-bot').count()).toBe(3);
    expect(problems).toEqual([]);
  }, 90_000);
});
