import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Connections that never sent a byte count as idle when the server closes them.
 *
 * Closing the server (`server.close()`, which Fastify's close calls, and Fastify's own
 * `forceCloseConnections: 'idle'`) ends the keep-alive connections between two requests at once, but
 * not one that has not sent its first request yet: Node counts a new connection as a request begun, so
 * that its header timeout runs. Such connections are common — a browser or a balancer opens one ahead
 * of need — and a stop waited for each of them until its grace period ran out, every time, then cut the
 * delivery worker's own grace short. They are closed with the idle ones instead, as Node closes idle
 * keep-alive ones: a client that was about to send on one retries on a new connection, as it must
 * when a server closes an idle connection (RFC 9112, 9.6). A connection that has sent part of a request
 * is not idle, and is left to finish within the grace period.
 */
export function closeNeverUsedWithIdle(server: Server): void {
  const open = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  const closeIdle = server.closeIdleConnections.bind(server);
  server.closeIdleConnections = () => {
    closeIdle();
    for (const socket of open) {
      if (socket.bytesRead === 0) socket.destroy();
      // One that has been used is Node's to judge from now on; it need not be looked at again.
      else open.delete(socket);
    }
  };
}
