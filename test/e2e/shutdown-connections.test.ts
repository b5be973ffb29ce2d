import { describe, expect, it, vi } from 'vitest';
import { openRawConnection, openRawRequest, slowJsonUpload } from '../support/raw-http.js';
import { startTestService, type TestService } from '../support/test-service.js';

/** Stops the service, and answers 'stopped', or `waiting` if it has not stopped within 20 s. */
function stopWithin20s(t: TestService, waiting: string): Promise<unknown> {
  return Promise.race([t.close().then(() => 'stopped'), new Promise((resolve) => setTimeout(() => resolve(waiting), 20_000).unref())]);
}

describe('shutdown with connections that never finish a request', () => {
  it('closes them after the grace period instead of waiting for their clients', async () => {
    const t = await startTestService('pglite', { 'http.shutdownGraceMs': 300 });
    // A request whose headers never end, and one whose body never comes: neither is idle, and neither
    // client will close them. (A connection that sent nothing is closed with the idle ones: the next case.)
    const connections = [
      await openRawConnection(t.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', 'a request whose headers never end'),
      await openRawRequest(t.url, slowJsonUpload('/v1/handovers', 1000)),
    ];
    // Each has reached the server before it stops.
    await new Promise((resolve) => setTimeout(resolve, 200));
    try {
      expect(await stopWithin20s(t, 'still waiting on the connections')).toBe('stopped');
      // The server ended them: they are closed although their clients never closed them.
      for (const c of connections) await vi.waitFor(() => expect(c.closed).toBe(true), { timeout: 10_000 });
    } finally {
      for (const c of connections) c.destroy();
    }
  });

  it('does not wait for connections that never sent a byte: they are closed with the idle keep-alive ones', async () => {
    // A grace period far longer than the bound below: a stop that waited for the silent connection
    // would still be waiting.
    const t = await startTestService('pglite', { 'http.shutdownGraceMs': 60_000 });
    const silent = await openRawConnection(t.url, '', 'a silent connection');
    // A keep-alive connection between two requests (Node's own idle case), beside it.
    const used = await openRawConnection(t.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 'a used keep-alive connection');
    await new Promise((resolve) => setTimeout(resolve, 200));
    try {
      expect(await stopWithin20s(t, 'still waiting on the silent connection')).toBe('stopped');
      await vi.waitFor(() => expect(silent.closed && used.closed).toBe(true), { timeout: 10_000 });
    } finally {
      silent.destroy();
      used.destroy();
    }
  });

  it('a request that arrives on a never-used connection as the stop begins is answered shutting_down, not reset', async () => {
    const t = await startTestService('pglite', { 'http.shutdownGraceMs': 60_000 });
    const late = await openRawConnection(t.url, '', 'a connection whose request comes as the stop begins');
    await new Promise((resolve) => setTimeout(resolve, 200));
    try {
      const stopping = t.close();
      // Sent once the server has closed (a few turns after the stop began), well before the connection
      // would be closed as never used (NEVER_USED_CLOSE_DELAY_MS).
      await new Promise((resolve) => setTimeout(resolve, 50));
      late.write('GET /v1/handovers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer hk_unknown\r\n\r\n');
      expect(await late.answered(10_000)).toBe(503);
      await vi.waitFor(() => expect(late.code).toBe('shutting_down'), { timeout: 10_000 });
      await stopping;
    } finally {
      late.destroy();
    }
  });
});
