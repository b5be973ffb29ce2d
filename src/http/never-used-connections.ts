import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * How long a connection that has sent nothing is given, once the server closes, to send its request:
 * one whose request is already on its way (in the kernel's buffer, not read yet) is then answered
 * `503 shutting_down` instead of being reset. Well under any grace period worth having.
 */
export const NEVER_USED_CLOSE_DELAY_MS = 500;

/**
 * Connections that never sent a byte count as idle when the server closes them.
 *
 * Closing the server (`server.close()`, which Fastify's close calls, and Fastify's own
 * `forceCloseConnections: 'idle'`) ends the keep-alive connections between two requests at once, but
 * not one that has not sent its first request yet: Node counts a new connection as a request begun, so
 * that its header timeout runs. Such connections are common — a browser or a balancer opens one ahead
 * of need — and a stop waited for each of them until its grace period ran out, every time, then left
 * the delivery worker none of it. They are closed shortly after the idle ones instead
 * (NEVER_USED_CLOSE_DELAY_MS, so a request already sent on one is answered rather than reset), as Node
 * closes idle keep-alive ones: a client that was about to send on one retries on a new connection, as
 * it must when a server closes an idle connection (RFC 9112, 9.6). A connection that has sent part of a
 * request is not idle, and is left to finish within the grace period.
 */
export function closeNeverUsedWithIdle(server: Server, delayMs = NEVER_USED_CLOSE_DELAY_MS): void {
  const open = new Set<Socket>();
  let closing = false;
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  const closeIdle = server.closeIdleConnections.bind(server);
  // Called by Fastify's close and again by Node's server.close(), in the same turn, before the server
  // stops listening: no connection is accepted between the two.
  server.closeIdleConnections = () => {
    closeIdle();
    if (closing) return;
    closing = true;
    const silent: Socket[] = [];
    for (const socket of open) if (socket.bytesRead === 0) silent.push(socket);
    open.clear();
    if (silent.length === 0) return;
    setTimeout(() => {
      for (const socket of silent) if (socket.bytesRead === 0) socket.destroy();
    }, delayMs).unref();
  };
}
