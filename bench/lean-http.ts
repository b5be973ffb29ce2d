/**
 * A minimal HTTP/1.1 client for the load generator: keep-alive connections, one request in flight per
 * connection, each request written in one call, the answer parsed just enough (status, Content-Length or
 * chunked body, `Connection: close`). It costs a fraction of the CPU of a general-purpose client, so the
 * generator, on one core, can offer more than what it measures can take: a benchmark whose generator is
 * the bottleneck flatters everything slower than itself.
 */
import { connect, type Socket } from 'node:net';

export interface Answer {
  status: number;
  body: string;
  /** When the request went out on its connection (performance.now()): the time before it was spent waiting for one. */
  sentAt?: number;
}

/** Why a request got no answer: its connection failed (`code`), or the pool was closed (`closed`). */
export class NoAnswer extends Error {
  constructor(
    readonly code: string,
    message = code,
  ) {
    super(message);
  }
}

interface Pending {
  head: string;
  body: string;
  resolve: (answer: Answer) => void;
  reject: (err: NoAnswer) => void;
  sentAt?: number;
}

const HEADER_END = Buffer.from('\r\n\r\n');

class Connection {
  private socket: Socket | undefined;
  private current: Pending | undefined;
  private buffer: Buffer = Buffer.alloc(0);
  alive = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly onFree: (c: Connection) => void,
  ) {}

  get busy(): boolean {
    return this.current !== undefined;
  }

  send(p: Pending): void {
    this.current = p;
    p.sentAt = performance.now();
    if (!this.alive) this.open();
    this.socket!.write(p.head + p.body);
  }

  /** Opens the connection now; resolves once it is established, or failed (the first request then tries again). */
  connectNow(): Promise<void> {
    if (this.alive) return Promise.resolve();
    this.open();
    const socket = this.socket!;
    return new Promise((resolve) => {
      socket.once('connect', () => resolve());
      socket.once('error', () => resolve());
    });
  }

  private open(): void {
    const socket = connect({ host: this.host, port: this.port, noDelay: true });
    this.socket = socket;
    this.alive = true;
    this.buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    const fail = (code: string) => {
      if (this.socket !== socket) return;
      this.alive = false;
      this.socket = undefined;
      const p = this.current;
      this.current = undefined;
      if (p) {
        // A body that runs to the end of the connection (no length given) ends here.
        const answer = this.parse(true);
        if (answer) p.resolve(answer);
        else p.reject(new NoAnswer(code));
        this.onFree(this);
      }
    };
    socket.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? 'ECONNRESET'));
    socket.on('close', () => fail('ECONNRESET'));
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const answer = this.parse(false);
    if (!answer || !this.current) return;
    const p = this.current;
    this.current = undefined;
    this.buffer = Buffer.alloc(0);
    if (answer.close) this.destroy();
    p.resolve({ status: answer.status, body: answer.body, sentAt: p.sentAt });
    this.onFree(this);
  }

  /** A complete answer in the buffer, if there is one; `atEnd`: the connection has ended. */
  private parse(atEnd: boolean): (Answer & { close: boolean }) | undefined {
    const buf = this.buffer;
    const headEnd = buf.indexOf(HEADER_END);
    if (headEnd < 0) return undefined;
    const head = buf.toString('latin1', 0, headEnd).toLowerCase();
    const status = Number(head.slice(9, 12));
    const start = headEnd + 4;
    const close = /\r\nconnection:\s*close/.test(head);
    if (status === 204 || status === 304 || (status >= 100 && status < 200)) return { status, body: '', close };
    const length = /\r\ncontent-length:\s*(\d+)/.exec(head);
    if (length) {
      const end = start + Number(length[1]);
      return buf.length >= end ? { status, body: buf.toString('utf8', start, end), close } : undefined;
    }
    if (/\r\ntransfer-encoding:\s*chunked/.test(head)) {
      const parts: Buffer[] = [];
      let at = start;
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', at);
        if (lineEnd < 0) return undefined;
        const size = parseInt(buf.toString('latin1', at, lineEnd), 16);
        if (size === 0)
          return buf.indexOf(HEADER_END, lineEnd) >= 0 || buf.length >= lineEnd + 4
            ? { status, body: Buffer.concat(parts).toString('utf8'), close }
            : undefined;
        if (buf.length < lineEnd + 2 + size + 2) return undefined;
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
    }
    // Neither: the body runs to the end of the connection.
    return atEnd ? { status, body: buf.toString('utf8', start), close: true } : undefined;
  }

  destroy(): void {
    const socket = this.socket;
    this.socket = undefined;
    this.alive = false;
    socket?.destroy();
  }

  /** Ends the connection, failing the request in flight. */
  abort(): void {
    const p = this.current;
    this.current = undefined;
    this.destroy();
    p?.reject(new NoAnswer('closed'));
  }
}

/** Up to `connections` keep-alive connections to one origin; requests beyond them wait in order. */
export class LeanPool {
  private readonly connections: Connection[] = [];
  private readonly free: Connection[] = [];
  /** Requests waiting for a connection, oldest at `queueHead`. */
  private queue: Pending[] = [];
  private queueHead = 0;
  private readonly host: string;
  private readonly port: number;
  private closed = false;

  constructor(origin: string, size: number) {
    const url = new URL(origin);
    if (url.protocol !== 'http:') throw new Error(`lean-http speaks plain http only, not ${url.protocol}`);
    this.host = url.hostname;
    this.port = Number(url.port || 80);
    for (let i = 0; i < size; i++) {
      const c = new Connection(this.host, this.port, (conn) => this.release(conn));
      this.connections.push(c);
      this.free.push(c);
    }
  }

  /**
   * Opens every connection before any request, as wrk does. Opened on demand instead, a burst of new
   * connections reaches a busy server while it accepts one connection per event-loop turn (libuv since
   * 1.45, libuv/libuv#3696): on this 2-core machine a bare node:http server then took 4 s to accept 256
   * of them, and the first requests of every step measured that, not the server's answers.
   */
  async connectAll(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.connections.map((c) => c.connectNow())), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** POSTs `body` to `path` with these headers; resolves with the answer, rejects with NoAnswer. */
  post(path: string, headers: Record<string, string>, body: string): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      if (this.closed) return reject(new NoAnswer('closed'));
      let head = `POST ${path} HTTP/1.1\r\nhost: ${this.host}:${this.port}\r\n`;
      for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
      head += `content-length: ${Buffer.byteLength(body)}\r\n\r\n`;
      const p: Pending = { head, body, resolve, reject };
      const c = this.free.pop();
      if (c) c.send(p);
      else this.queue.push(p);
    });
  }

  private release(c: Connection): void {
    if (this.closed) return;
    if (this.queueHead < this.queue.length) {
      const next = this.queue[this.queueHead++]!;
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.queueHead);
        this.queueHead = 0;
      }
      c.send(next);
    } else this.free.push(c);
  }

  /** Fails everything in flight or waiting with NoAnswer('closed') and closes every connection. */
  close(): void {
    this.closed = true;
    const waiting = this.queue.slice(this.queueHead);
    this.queue = [];
    this.queueHead = 0;
    for (const p of waiting) p.reject(new NoAnswer('closed'));
    for (const c of this.connections) c.abort();
  }
}
