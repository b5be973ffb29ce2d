import { connect, type Socket } from 'node:net';

/**
 * One HTTP/1.1 request written by hand on its own socket, for what `fetch` cannot do: send a body a byte
 * at a time, stop in the middle of one, or hang up while the request waits for a slot.
 */
export interface RawRequest {
  socket: Socket;
  /** Everything the server sent so far. */
  readonly received: string;
  /** The status of the server's answer, once its status line has arrived. */
  readonly status: number | undefined;
  /** The error code of the answer's JSON body, once it has arrived whole. */
  readonly code: string | undefined;
  /** The server closed the connection, or this side destroyed it. */
  readonly closed: boolean;
  write(bytes: string): void;
  /** Hangs up at once (a client that goes away). */
  destroy(): void;
  /** Resolves once an answer's status line has arrived or the connection closed; bounded by `timeoutMs`. */
  answered(timeoutMs?: number): Promise<number | undefined>;
}

export interface RawRequestOptions {
  method: string;
  path: string;
  headers?: Record<string, string>;
  /** Bytes of the body sent with the head; the rest (if Content-Length says more) is the caller's. */
  body?: string;
}

/** Opens a connection to `baseUrl` and writes the request head (and `body`, if any). */
export async function openRawRequest(baseUrl: string, options: RawRequestOptions): Promise<RawRequest> {
  const { hostname, port } = new URL(baseUrl);
  const headers = { host: `${hostname}:${port}`, ...options.headers };
  const head = `${options.method} ${options.path} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
  return openRawConnection(baseUrl, head + (options.body ?? ''), `${options.method} ${options.path}`);
}

/**
 * Opens a connection to `baseUrl` and writes `bytes` as they are: nothing (a browser's preconnected
 * socket), part of a request head, or a whole request. `what` names it in errors.
 */
export async function openRawConnection(baseUrl: string, bytes: string, what = 'the connection'): Promise<RawRequest> {
  const { hostname, port } = new URL(baseUrl);
  const socket = connect(Number(port), hostname);
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let received = '';
  let closed = false;
  const waiters: Array<() => void> = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('utf8');
    wake();
  });
  // A reset from the server is one way of closing; the test reads the outcome from `closed`.
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
    wake();
  });
  if (bytes) socket.write(bytes);
  const statusOf = () => {
    const match = /^HTTP\/1\.1 (\d{3}) /.exec(received);
    return match ? Number(match[1]) : undefined;
  };
  return {
    socket,
    get received() {
      return received;
    },
    get status() {
      return statusOf();
    },
    get code() {
      const body = received.slice(received.indexOf('\r\n\r\n') + 4);
      try {
        return (JSON.parse(body) as { error?: { code?: string } }).error?.code;
      } catch {
        return undefined;
      }
    },
    get closed() {
      return closed;
    },
    write(bytes) {
      if (!socket.destroyed) socket.write(bytes);
    },
    destroy() {
      socket.destroy();
    },
    async answered(timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      while (statusOf() === undefined && !closed) {
        const left = until - Date.now();
        if (left <= 0) throw new Error(`no answer to ${what} within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return statusOf();
    },
  };
}

/** A JSON body announced as `length` bytes, of which only the first few are sent. */
export function slowJsonUpload(path: string, length: number, headers: Record<string, string> = {}): RawRequestOptions {
  return { method: 'POST', path, headers: { 'content-type': 'application/json', 'content-length': String(length), ...headers }, body: '{' };
}
