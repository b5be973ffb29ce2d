import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenOnLoopback } from '../support/ports.js';

export interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/**
 * A local HTTP server for the outbound client's tests: records each request (headers and the exact
 * body bytes) and the connections opened, and answers with `answer`.
 */
export interface Receiver {
  url: string;
  received: Received[];
  /** TCP connections accepted (keep-alive reuses one). */
  connections: number;
  answer: (req: Received, res: ServerResponse) => void;
  close(): Promise<void>;
}

export async function startReceiver(answer: Receiver['answer'] = (_req, res) => res.end()): Promise<Receiver> {
  const receiver = { received: [] as Received[], connections: 0, answer } as Receiver;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      receiver.received.push(received);
      receiver.answer(received, res);
    });
  });
  server.on('connection', () => receiver.connections++);
  const listening = await listenOnLoopback(server);
  receiver.url = listening.url;
  receiver.close = listening.close;
  return receiver;
}
