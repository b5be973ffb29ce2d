/**
 * The README's and docs/desk.md's screenshots (docs/images/desk.png and demo.png), taken from a real
 * conversation: `handover start` on the embedded store with its demo, in a fresh data directory, driven
 * in Chromium — a shop customer asks the demo bot something it cannot answer, is handed to Ada at the
 * desk, they talk, and Ada hands them back to the bot.
 *
 *   npm run docs:screenshots
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { launchChromium, startHandover } from '../test/browser/browser-support.js';

const images = fileURLToPath(new URL('../docs/images/', import.meta.url));

const handover = await startHandover();
const browser = await launchChromium();
try {
  const desk = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  const phone = await (await browser.newContext({ viewport: { width: 390, height: 780 }, isMobile: true, hasTouch: true })).newPage();
  const laptop = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  const say = async (page: Page, text: string) => {
    await page.getByLabel('Your message').fill(text);
    await page.getByLabel('Your message').press('Enter');
  };

  // Ada opens the desk and becomes available.
  await desk.goto(handover.deskUrl);
  await desk.getByLabel('Email').fill(handover.agent.email);
  await desk.getByLabel('Password').fill(handover.agent.password);
  await desk.getByRole('button', { name: 'Sign in' }).click();
  await desk.locator('#connection[data-state="live"]').waitFor();
  await desk.getByLabel('Available').check();
  await desk.locator('#presence[data-presence="available"]').waitFor();

  // A customer on a phone asks the bot, then for a person.
  await phone.goto(handover.demoUrl);
  await phone.locator('.msg.from-bot').first().waitFor();
  await say(phone, 'Do you have the Trail 2 in size L?');
  await phone.locator('.msg.from-bot', { hasText: 'small demo bot' }).waitFor();
  await phone.getByRole('button', { name: 'Talk to a human' }).click();
  await phone.locator('#status', { hasText: 'number 1 in line' }).waitFor();

  const item = desk.locator('.waiting-item', { hasText: 'Guest' });
  const name = (await item.locator('strong').textContent())!;
  await desk.getByRole('button', { name: `Accept ${name}` }).click();
  const chat = desk.locator('section.chat:not([hidden])');
  const reply = chat.getByLabel(`Reply to ${name}`);
  await phone.locator('.msg.from-system', { hasText: 'joined the chat' }).waitFor();
  const agentSays = async (text: string) => {
    await reply.fill(text);
    await reply.press('Enter');
    await phone.locator('.msg.from-agent', { hasText: text }).waitFor();
  };
  const userSays = async (text: string) => {
    await say(phone, text);
    await chat.locator('.msg.from-user', { hasText: text }).waitFor();
  };
  await agentSays('Hi, I am Ada from Northwind Bikes. Let me check the stock for you.');
  await userSays('Thanks! In blue, if possible.');
  await agentSays('Size L in blue is in stock. Shall I put one aside for you?');
  await userSays('Yes please, I can pick it up on Saturday.');

  // Meanwhile another customer asks for a person, and the first one types.
  await laptop.goto(handover.demoUrl);
  await say(laptop, 'Can someone help me with my invoice?');
  await desk.locator('.waiting-item', { hasText: 'invoice' }).waitFor();
  await phone.getByLabel('Your message').pressSequentially('What time do you close on Saturday?', { delay: 15 });
  await chat.locator('.typing', { hasText: 'is typing' }).waitFor();
  await desk.screenshot({ path: join(images, 'desk.png') });

  await phone.getByLabel('Your message').press('Enter');
  await chat.locator('.msg.from-user', { hasText: 'close on Saturday' }).waitFor();
  await agentSays('At 14:00. It is reserved under your name until then. See you on Saturday!');
  await userSays('Great, thank you!');
  await chat.getByLabel('End reason').selectOption('agent_ended');
  await chat.getByRole('button', { name: 'End chat' }).click();
  await phone.locator('.msg.from-bot', { hasText: 'has left the chat' }).waitFor();
  await phone.locator('#chips button').first().waitFor();
  await phone.locator('#status', { hasText: 'demo bot' }).waitFor();
  await phone.screenshot({ path: join(images, 'demo.png') });
  console.log(`screenshots written to ${images}`);
} finally {
  await browser.close();
  await handover.stop();
}
