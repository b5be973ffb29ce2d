import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { keepFailureScreenshots, launchChromium, startHandover, watchPage, type HandoverProcess } from './browser-support.js';

/** Short, so the test does not wait 15 s; the behaviour is the same at any grace. */
const GRACE_MS = 3000;
/** Short, so the desk's stream is renewed several times while the test watches. */
const RENEW_MS = 1500;

/**
 * Presence follows the open desk (docs/desk.md, "Presence"): the desk's stream is renewed without a
 * visible drop; the agent closes the desk tab; within the grace availability says nobody is online, and
 * a new user asking for a person is told so at once.
 * Reopening the desk brings the agent back, without touching their presence, and the next user reaches
 * them.
 */
describe('presence follows the open desk', () => {
  let handover: HandoverProcess;
  let browser: Browser;
  let deskContext: BrowserContext;
  let desk: Page;
  let widget: Page | undefined;
  let apiKey: string;
  const problems: string[] = [];
  const previous = { grace: process.env.HANDOVER_PRESENCE_GRACE_MS, renew: process.env.HANDOVER_DESK_STREAM_RENEW_MS };

  beforeAll(async () => {
    // The service is a child process that takes its settings from the environment.
    process.env.HANDOVER_PRESENCE_GRACE_MS = String(GRACE_MS);
    process.env.HANDOVER_DESK_STREAM_RENEW_MS = String(RENEW_MS);
    [handover, browser] = await Promise.all([startHandover(), launchChromium()]);
    deskContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    desk = await deskContext.newPage();
    watchPage(desk, problems, 'desk');
    // A key of the demo tenant, to ask availability as a bot does.
    const tenants = await handover.admin('GET', '/v1/admin/tenants');
    const key = await handover.admin('POST', `/v1/admin/tenants/${tenants.body.tenants[0].id}/api-keys`, {});
    expect(key.status).toBe(201);
    apiKey = key.body.apiKey;
  }, 60_000);

  afterAll(async () => {
    for (const [name, value] of [
      ['HANDOVER_PRESENCE_GRACE_MS', previous.grace],
      ['HANDOVER_DESK_STREAM_RENEW_MS', previous.renew],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await browser?.close();
    await handover?.stop();
  }, 30_000);

  const availability = async (): Promise<{ available: boolean; reason?: string; agentsOnline: number | null }> => {
    // An instance on a busy machine may refuse a request for overload (503 with Retry-After), as any
    // client may be told: asked again, a few times, as a bot would. Presence is what is tested here.
    let res = await fetch(`${handover.url}/v1/availability?queue=support`, {
      headers: { authorization: `Bearer ${apiKey}` },
      signal: AbortSignal.timeout(10_000),
    });
    for (let retry = 0; res.status === 503 && res.headers.has('retry-after') && retry < 5; retry++) {
      await new Promise((r) => setTimeout(r, 500));
      res = await fetch(`${handover.url}/v1/availability?queue=support`, {
        headers: { authorization: `Bearer ${apiKey}` },
        signal: AbortSignal.timeout(10_000),
      });
    }
    expect(res.status).toBe(200);
    return (await res.json()) as { available: boolean; reason?: string; agentsOnline: number | null };
  };

  /** Polls availability until `want` holds, for at most `timeoutMs`; answers how long it took. */
  const availabilityUntil = async (want: (a: Awaited<ReturnType<typeof availability>>) => boolean, timeoutMs: number, what: string): Promise<number> => {
    const started = Date.now();
    for (;;) {
      if (want(await availability())) return Date.now() - started;
      if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const newUser = async (): Promise<Page> => {
    widget = await (await browser.newContext({ viewport: { width: 390, height: 780 } })).newPage();
    watchPage(widget, problems, 'widget');
    await widget.goto(handover.demoUrl);
    await widget.getByRole('button', { name: 'Talk to a human' }).click();
    return widget;
  };

  it('the agent closes the desk tab: nobody is online within the grace; reopening brings them back', async () => {
    onTestFailed(() => keepFailureScreenshots('desk-presence', { desk, widget }, handover));
    let streamsOpened = 0;
    desk.on('request', (request) => {
      if (new URL(request.url()).pathname === '/v1/desk/events') streamsOpened++;
    });
    await desk.goto(handover.deskUrl);
    await desk.getByLabel('Email').fill(handover.agent.email);
    await desk.getByLabel('Password').fill(handover.agent.password);
    await desk.getByRole('button', { name: 'Sign in' }).click();
    await desk.getByLabel('Available').check();
    await desk.locator('#presence[data-presence="available"]').waitFor();
    await desk.locator('#connection[data-state="live"]').waitFor();
    expect(await availability()).toMatchObject({ available: true, agentsOnline: 1 });

    // The server renews the desk's stream every RENEW_MS: the desk reconnects at once, never shows a
    // drop, and the agent stays online throughout.
    // (In the page: a watcher of the connection badge.)
    await desk.evaluate(`{
      const badge = document.querySelector('#connection');
      new MutationObserver(() => {
        if (badge.dataset.state === 'reconnecting') document.body.dataset.sawDrop = 'yes';
      }).observe(badge, { attributes: true, attributeFilter: ['data-state'] });
    }`);
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, RENEW_MS));
      expect(await availability()).toMatchObject({ available: true, agentsOnline: 1 });
    }
    expect(await desk.evaluate(`document.body.dataset.sawDrop ?? 'no'`)).toBe('no');
    expect(streamsOpened).toBeGreaterThanOrEqual(3);

    // The tab closes (its live stream with it).
    await desk.close();
    const tookMs = await availabilityUntil((a) => a.reason === 'no_agents', GRACE_MS + 15_000, 'availability to say nobody is online');
    expect(await availability()).toMatchObject({ available: false, reason: 'no_agents', agentsOnline: 0 });
    console.log(`desk closed → availability says nobody is online after ${tookMs} ms (grace ${GRACE_MS} ms)`);

    // A new user asks for a person and is told at once that nobody is online, not put in a line.
    const first = await newUser();
    await first.locator('.msg.from-bot', { hasText: /nobody .*online/i }).waitFor();
    await first.context().close();

    // The agent opens the desk again: still signed in (the session cookie), still Available, online.
    desk = await deskContext.newPage();
    watchPage(desk, problems, 'desk');
    await desk.goto(handover.deskUrl);
    await desk.locator('#connection[data-state="live"]').waitFor();
    await desk.locator('#presence[data-presence="available"]').waitFor();
    await availabilityUntil((a) => a.available && a.agentsOnline === 1, 10_000, 'the agent to be online again');

    // The next user reaches them.
    const second = await newUser();
    await desk
      .locator('.waiting-item')
      .getByRole('button', { name: /^Accept / })
      .click();
    await second.locator('#status', { hasText: 'chatting with Ada' }).waitFor();
    expect(problems).toEqual([]);
  }, 120_000);
});
