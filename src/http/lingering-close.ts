import { Socket } from 'node:net';
import type { IncomingMessage, Server } from 'node:http';

/**
 * How much of a refused request's body is read and thrown away after the answer, before the
 * connection is closed: until the client stops sending (it closes its side, or sends nothing for
 * `idleMs`), at most `maxMs` and `maxBytes`. The times are nginx's `lingering_timeout` scaled to a
 * request: a client on a fair link sends what was left of a body the size of the limit within them.
 */
export interface LingerBounds {
  maxMs: number;
  idleMs: number;
  maxBytes: number;
}

export const DEFAULT_LINGER: LingerBounds = { maxMs: 10_000, idleMs: 2_000, maxBytes: 32 * 1024 * 1024 };

const lastRequest = new WeakMap<Socket, IncomingMessage>();
const lingering = new WeakSet<Socket>();

/**
 * Every answer that closes the connection before its request's body has arrived whole (a body too
 * large, a refusal under overload or while shutting down, a request that ran out of time) closes it
 * gracefully: the answer is sent, this side's half is closed, and what the client still sends is read
 * and discarded within `bounds` before the socket is let go.
 *
 * Why: closing a socket with unread bytes in it makes the kernel send a reset, and a reset can reach the
 * client before it has read the answer. Clients that write the whole body before reading (Python's
 * `requests`) or that fail the request on a write error (Node's fetch: `TypeError: fetch failed`,
 * `EPIPE`) then see no status at all, only curl (which stops to read) saw the answer. Answers that
 * close after a complete request are left to Node as before.
 */
export function closeGracefully(server: Server, bounds: LingerBounds = DEFAULT_LINGER): (request: IncomingMessage) => void {
  server.on('connection', (socket: Socket) => {
    // Node closes a connection whose answer said `Connection: close` with `destroySoon()` once the
    // answer is written: the one place every such answer passes, whoever wrote it.
    socket.destroySoon = function destroySoonUnlessUnread(this: Socket) {
      const request = lastRequest.get(this);
      if (request && !request.complete) return lingerThenClose(this, bounds);
      Socket.prototype.destroySoon.call(this);
    };
  });
  // Called by the server's own request handler first thing, rather than from a second listener of the
  // request event: every request passes here, and under overload most of them are refusals whose cost
  // is counted in microseconds (shed-before-routing.ts).
  return (request) => {
    lastRequest.set(request.socket, request);
  };
}

/** Whether this socket has been answered and is only draining what its client still sends. */
export function isLingering(socket: Socket): boolean {
  return lingering.has(socket);
}

/**
 * Ends this side of `socket` (after what is already written) and reads and discards what arrives until
 * the client closes its side, stops sending, or the bounds are reached; then destroys it. The HTTP
 * parser is taken off the socket first: nothing more it sends is a request to answer.
 */
export function lingerThenClose(socket: Socket, bounds: LingerBounds = DEFAULT_LINGER): void {
  if (socket.destroyed || lingering.has(socket)) return;
  lingering.add(socket);
  socket.removeAllListeners('data');
  let received = 0;
  const close = () => socket.destroy();
  const overall = setTimeout(close, bounds.maxMs);
  const idle = setTimeout(close, bounds.idleMs);
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received > bounds.maxBytes) return close();
    idle.refresh();
  });
  socket.once('end', close);
  socket.once('close', () => {
    clearTimeout(overall);
    clearTimeout(idle);
  });
  // Resets and broken pipes of a client that went meanwhile: nothing left to tell it.
  socket.on('error', () => {});
  socket.end();
  socket.resume();
}
