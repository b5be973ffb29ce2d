import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchChromium } from './browser-support.js';
import { startTestService, type TestService } from '../support/test-service.js';

/**
 * Every HTML page carries a policy that forbids framing and sniffing — including Swagger UI at `/docs`,
 * whose policy must still let it render the API. Checked in real Chromium: the page shows the
 * operations, and the browser reports no policy violation.
 */
describe('security headers on every HTML page', () => {
  let t: TestService;
  let browser: Browser;

  beforeAll(async () => {
    [t, browser] = await Promise.all([startTestService('pglite', { 'demo.enabled': true }), launchChromium()]);
  }, 60_000);
  // Chromium and the service close side by side; on a loaded run closing took past 30 s, and once, with
  // both tests passed, past 60 s. Chromium gets 20 s (Playwright ends a browser still running when this
  // test's process exits); the service's own stop is not cut short, so a stop that hangs still fails here.
  afterAll(async () => {
    const started = Date.now();
    const serviceClosed = t?.close();
    const browserClosed = browser?.close().then(
      () => true,
      (err: unknown) => (console.warn(`closing Chromium failed: ${String(err)}`), true),
    );
    const inTime = await Promise.race([browserClosed ?? true, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 20_000).unref())]);
    if (!inTime) console.warn(`Chromium did not close within ${Date.now() - started} ms; left to end with this test's process`);
    await serviceClosed;
    if (Date.now() - started > 20_000) console.warn(`closing Chromium and the service took ${Date.now() - started} ms`);
  }, 60_000);

  it('sends CSP with frame-ancestors and nosniff on /docs, the desk, the demo and the status page', async () => {
    for (const path of ['/docs', '/docs/', '/docs/static/index.html', '/desk', '/demo/', '/status']) {
      const res = await fetch(`${t.url}${path}`, { redirect: 'follow' });
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toMatch(/^text\/html/);
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp, path).toContain("frame-ancestors 'none'");
      expect(csp, path).not.toMatch(/script-src[^;]*'unsafe-inline'/);
    }
    // Not pages, but never to be sniffed into one either.
    for (const path of ['/openapi.json', '/docs/json', '/v1/nothing']) {
      expect((await fetch(`${t.url}${path}`)).headers.get('x-content-type-options'), path).toBe('nosniff');
    }
  });

  it('still lets Swagger UI render the API under its policy', async () => {
    const page = await (await browser.newContext()).newPage();
    const violations: string[] = [];
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (/Content Security Policy|Refused to/i.test(msg.text())) violations.push(msg.text());
    });
    // Every violation, also those Chromium does not print, reaches the console (page script, as text).
    await page.addInitScript(
      "document.addEventListener('securitypolicyviolation', (e) => console.error('Refused to load: Content Security Policy ' + e.violatedDirective + ' ' + e.blockedURI))",
    );
    await page.goto(`${t.url}/docs`);
    await page.locator('.swagger-ui .info .title').getByText('handover').waitFor({ timeout: 20_000 });
    await page.locator('.opblock-summary-path', { hasText: '/v1/handovers/{id}/messages' }).first().click();
    await page.getByText("Relay the user's message to the agent").first().waitFor({ timeout: 10_000 });
    expect(violations).toEqual([]);
    expect(errors).toEqual([]);
  }, 60_000);
});
