import type { Server as HttpServer } from 'node:http';
import { createServer } from 'node:net';

/** A TCP port free on loopback right now (for child processes that need a fixed one). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Tries `probe` every `intervalMs` until it resolves; past `timeoutMs` fails with `what`. */
export async function pollUntil(probe: () => Promise<void>, options: { timeoutMs: number; intervalMs: number; what: string }): Promise<void> {
  const until = Date.now() + options.timeoutMs;
  for (;;) {
    try {
      await probe();
      return;
    } catch {
      if (Date.now() > until) throw new Error(options.what);
      await new Promise((r) => setTimeout(r, options.intervalMs));
    }
  }
}

export interface Listening {
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Stops the server, ending its open connections too (a keep-alive client cannot hold it open). */
  close(): Promise<void>;
}

/** Starts `server` on a free loopback port. */
export async function listenOnLoopback(server: HttpServer): Promise<Listening> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { port, url: `http://127.0.0.1:${port}`, close: () => closeServer(server) };
}

/** Stops an HTTP server and the connections it still has open. */
export function closeServer(server: HttpServer): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
