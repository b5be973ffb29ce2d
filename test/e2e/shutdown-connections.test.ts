import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startTestService } from '../support/test-service.js';

/** A raw connection to the service, and a promise of its end (closed by the far side, or by error). */
async function rawConnection(url: string): Promise<{ socket: Socket; closed: Promise<void> }> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, closed };
}

describe('shutdown with connections that never finish a request', () => {
  it('closes them after the grace period instead of waiting for their clients', async () => {
    const t = await startTestService('pglite', { 'http.shutdownGraceMs': 300 });
    // A browser's preconnected socket (nothing sent yet), a request whose headers never end, and one
    // whose body never comes: none of them is idle, and none of their clients will close them.
    const silent = await rawConnection(t.url);
    const halfHeaders = await rawConnection(t.url);
    halfHeaders.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const halfBody = await rawConnection(t.url);
    halfBody.socket.write('POST /v1/handovers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":');
    // Each has reached the server before it stops.
    await new Promise((resolve) => setTimeout(resolve, 200));
    try {
      const stopped = await Promise.race([
        t.close().then(() => 'stopped'),
        new Promise((resolve) => setTimeout(() => resolve('still waiting on the connections'), 20_000).unref()),
      ]);
      expect(stopped).toBe('stopped');
      // The server ended them: they are closed although their clients never closed them.
      await Promise.all([silent.closed, halfHeaders.closed, halfBody.closed]);
    } finally {
      for (const c of [silent, halfHeaders, halfBody]) c.socket.destroy();
    }
  });
});
