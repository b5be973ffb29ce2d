import type { Server, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface SseStream {
  /** Writes one event; resolves when the socket has taken it (waits for drain, bounded). */
  send(event: { id?: string; event?: string; data: unknown }): Promise<void>;
  readonly closed: boolean;
  onClose(fn: () => void): void;
  /** Ends the stream from this side (the client may reconnect). */
  end(): void;
}

/** A client that does not read for this long is cut off rather than buffered for without bound. */
const DRAIN_TIMEOUT_MS = 30_000;
const HEARTBEAT_MS = 15_000;

/** Open streams per HTTP server (several apps may run in one process, as in tests). */
const openStreams = new WeakMap<Server, Set<ServerResponse>>();

/**
 * Ends every open stream when the app closes. A stream is never idle, so without this `close()` would
 * wait on it forever and a shutdown would end in a kill; clients reconnect (to another instance) and
 * resume with Last-Event-ID.
 */
export function endStreamsOnClose(app: FastifyInstance): void {
  app.addHook('preClose', async () => {
    for (const res of openStreams.get(app.server) ?? []) res.end();
  });
}

/** Takes over the response and opens a Server-Sent Events stream with heartbeats. */
export function openSse(request: FastifyRequest, reply: FastifyReply): SseStream {
  reply.hijack();
  const res = reply.raw;
  const server = request.server.server;
  let streams = openStreams.get(server);
  if (!streams) openStreams.set(server, (streams = new Set()));
  streams.add(res);
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write('retry: 2000\n\n');
  let closed = false;
  const closeHandlers: Array<() => void> = [];
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    streams.delete(res);
    for (const fn of closeHandlers) fn();
  };
  request.raw.on('close', close);
  res.on('close', close);
  res.on('error', close);
  return {
    get closed() {
      return closed;
    },
    onClose(fn) {
      closeHandlers.push(fn);
    },
    end() {
      close();
      res.end();
    },
    async send(event) {
      if (closed) return;
      let frame = '';
      if (event.id) frame += `id: ${event.id}\n`;
      if (event.event) frame += `event: ${event.event}\n`;
      frame += `data: ${JSON.stringify(event.data)}\n\n`;
      if (res.write(frame)) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          res.destroy(new Error('SSE client did not read for 30 s'));
          resolve();
        }, DRAIN_TIMEOUT_MS);
        res.once('drain', () => {
          clearTimeout(timer);
          resolve();
        });
        res.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
