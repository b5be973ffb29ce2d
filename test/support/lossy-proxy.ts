import { createServer, connect, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a real service, for tests of clients on a bad network: it can lose the
 * answer to the next request (the service did the work; the client never hears of it) and cut every
 * open connection (a stream broken mid-conversation). Bytes are forwarded untouched otherwise.
 */
export interface LossyProxy {
  url: string;
  /** The next request whose answer starts arriving: its connection is closed instead (the answer is lost). */
  loseNextAnswer(): void;
  /** Closes every open connection at once. */
  cutAll(): void;
  /** Answers lost so far. */
  readonly lost: number;
  close(): Promise<void>;
}

export async function startLossyProxy(target: string): Promise<LossyProxy> {
  const { hostname, port } = new URL(target);
  const open = new Set<Socket>();
  let loseNext = 0;
  let lost = 0;
  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    open.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (loseNext > 0) {
        loseNext--;
        lost++;
        return drop();
      }
      client.write(chunk);
    });
    client.on('close', drop).on('error', drop);
    upstream.on('close', drop).on('error', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    loseNextAnswer: () => void loseNext++,
    cutAll: () => {
      for (const socket of open) socket.destroy();
      open.clear();
    },
    get lost() {
      return lost;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
