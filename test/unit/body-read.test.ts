import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyGuard, readGuardedBody } from '../../src/http/upload-guard.js';
import { openRawRequest, type RawRequest } from '../support/raw-http.js';

/**
 * readGuardedBody takes a body that came with its head in one read (`whole`), and reads one still
 * arriving as it arrives: both give the same bytes. Served by a real `node:http` server, written on raw sockets so
 * that how the bytes arrive is the test's to choose.
 */
describe('reading a request body within the guard', () => {
  let server: Server;
  let url: string;
  const outcomes: Array<{ body?: string; whole?: boolean; gone?: boolean; error?: string }> = [];
  const guard = bodyGuard({ minBytesPerSecond: 1024, windowMs: 1000, maxPerAddress: 4 });

  beforeAll(async () => {
    server = createServer((request, response) => {
      readGuardedBody(request, response, () => request.socket.remoteAddress ?? '', 4096, guard).then(
        (outcome) => {
          if ('gone' in outcome) {
            outcomes.push({ gone: true });
            return;
          }
          outcomes.push({ body: outcome.body.toString('utf8'), whole: outcome.whole });
          response.writeHead(200, { 'content-type': 'text/plain' }).end(`read ${outcome.body.length}`);
        },
        (err: Error & { code?: string }) => {
          outcomes.push({ error: err.code ?? err.message });
          response.writeHead(413, { connection: 'close' }).end();
        },
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const head = (length: number) => ({ method: 'POST', path: '/', headers: { 'content-type': 'application/json', 'content-length': String(length) } });

  /**
   * Waits for the answer to `request`, expects the server to have read `body` (in one read when `whole`,
   * as it arrived otherwise), and hangs up.
   */
  async function expectRead(request: RawRequest, body: string, whole: boolean): Promise<void> {
    try {
      expect(await request.answered(5_000)).toBe(200);
      expect(outcomes.at(-1)).toEqual({ body, whole });
    } finally {
      request.destroy();
    }
  }

  it('takes a body that came with its head in one read', async () => {
    // One write of head and body: one read on the server's side, which the parser has taken whole by the
    // time the body is looked at (not yet at the request event's microtasks, where it used to look).
    for (let i = 0; i < 5; i++) {
      const body = JSON.stringify({ id: `one-read-${i}`, text: 'é'.repeat(300) });
      await expectRead(await openRawRequest(url, { ...head(Buffer.byteLength(body)), body }), body, true);
    }
  });

  it('reads a body that arrives after its head, in pieces', async () => {
    const body = JSON.stringify({ id: 'pieces', text: 'x'.repeat(900) });
    const request = await openRawRequest(url, head(Buffer.byteLength(body)));
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 30));
      request.write(body.slice((i * body.length) / 3, ((i + 1) * body.length) / 3));
    }
    await expectRead(request, body, false);
  });

  it('reads a body whose first part came with its head', async () => {
    const body = JSON.stringify({ id: 'half', text: 'y'.repeat(500) });
    const request = await openRawRequest(url, { ...head(Buffer.byteLength(body)), body: body.slice(0, 200) });
    await new Promise((r) => setTimeout(r, 30));
    request.write(body.slice(200));
    await expectRead(request, body, false);
  });

  it('refuses a body past the limit while it arrives, and tells a client that left', async () => {
    const tooLarge = 'z'.repeat(5000);
    const refused = await openRawRequest(url, { ...head(tooLarge.length), body: tooLarge });
    try {
      expect(await refused.answered(5_000)).toBe(413);
      expect(outcomes.at(-1)).toEqual({ error: 'body_too_large' });
    } finally {
      refused.destroy();
    }
    const before = outcomes.length;
    const leaving = await openRawRequest(url, { ...head(100), body: '{"text":' });
    await new Promise((r) => setTimeout(r, 30));
    leaving.destroy();
    await expect.poll(() => outcomes.length, { timeout: 5_000 }).toBe(before + 1);
    expect(outcomes.at(-1)).toEqual({ gone: true });
  });
});
