import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError, toError } from '../resilience/errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The body, read whole before the request asked for an admission slot. */
    receivedBody?: Buffer;
  }
}

export interface UploadLimits {
  /** Bytes each window must bring, at this rate, unless the body is complete. */
  minBytesPerSecond: number;
  windowMs: number;
  /** Slow bodies (still arriving after the grace below) one client address may send at once. */
  maxPerAddress: number;
}

/**
 * A body not complete this long after its head is a slow one and counts against its address's bound.
 * A bot's or helpdesk's small body arrives with its head, so it never counts, and never waits on one.
 */
const SLOW_AFTER_MS = 100;

/**
 * A body read whole (`whole`: it had all arrived with its head, and was taken in one read), or the
 * client gone before it did (nobody to answer). A refusal to send rejects instead.
 */
type Outcome = { body: Buffer; whole: boolean } | { gone: true };

/**
 * The slow bodies of each client address, shared by every reader of one app (the Fastify hook below and
 * the message route served before Fastify, message-route.ts), so the bound holds whichever path reads.
 */
export interface BodyGuard {
  limits: UploadLimits;
  slowByAddress: Map<string, number>;
}

export function bodyGuard(limits: UploadLimits): BodyGuard {
  return { limits, slowByAddress: new Map() };
}

/**
 * Bodies read whole before Fastify saw their request (message-route.ts hands over the requests it does
 * not serve itself): the hook below takes them from here instead of reading the socket.
 */
export const bodiesReadAhead = new WeakMap<IncomingMessage, { body: Buffer; readMs: number }>();

/**
 * Reads every request body whole before the request asks for an admission slot, so a slot is spent
 * only on work, never on waiting for a client's bytes. A slow client costs a socket and a buffer, not
 * the service's capacity, and is bounded twice: each window (`windowMs`) must bring at least
 * `minBytesPerSecond` worth of the body (or the rest of it), else `408 upload_too_slow`; and one address
 * may have at most `maxPerAddress` slow bodies at once, else `429 too_many_uploads`. Either refusal
 * closes the connection: what of the body still arrives after the answer is discarded, within the
 * bounds of lingering-close.ts, and never waited for. Install before admission.
 */
export function installUploadGuard(app: FastifyInstance, guard: BodyGuard): void {
  app.addHook('onRequest', async (request, reply) => {
    const readAhead = bodiesReadAhead.get(request.raw);
    if (readAhead) {
      request.receivedBody = readAhead.body;
      return;
    }
    if (!announcesBody(request)) return;
    const limit = request.routeOptions.bodyLimit ?? app.initialConfig.bodyLimit ?? Infinity;
    if (Number(request.headers['content-length']) > limit) {
      // Refused on its announced size alone: nothing of it is read.
      throw closing(reply, new AppError('body_too_large', { message: `The body is larger than the limit of ${limit} bytes.` }));
    }
    let outcome: Outcome;
    try {
      outcome = await readGuardedBody(request.raw, reply.raw, () => request.ip, limit, guard);
    } catch (err) {
      throw err instanceof AppError ? closing(reply, err) : err;
    }
    // Nobody is left to answer: end the request here, before it asks for a slot or does any work.
    if ('gone' in outcome) return void reply.hijack();
    request.receivedBody = outcome.body;
  });

  // Fastify's own parsers then read the body from memory, with their checks (size, length) as before.
  app.addHook('preParsing', (request, _reply, payload, done) => {
    const body = request.receivedBody;
    done(null, body ? (new BodyInMemory(body) as unknown as typeof payload) : payload);
  });
}

type Listener = (arg?: unknown) => void;

/**
 * The body already read, as the payload Fastify's parsers read it: they listen for `data`, `end` and
 * `error`, call `resume()`, and check `receivedEncodedLength` (every parser of this app reads the body
 * whole: `parseAs`). One small object per request instead of a Readable stream with its state,
 * buffer list and listeners: every request with a body makes one, and it lives as long as the request.
 */
class BodyInMemory {
  private listeners: Array<[string, Listener]> = [];
  private flowing = false;

  constructor(private readonly body: Buffer) {}

  get receivedEncodedLength(): number {
    return this.body.length;
  }

  on(event: string, listener: Listener): this {
    this.listeners.push([event, listener]);
    return this;
  }

  removeListener(event: string, listener: Listener): this {
    this.listeners = this.listeners.filter(([e, l]) => e !== event || l !== listener);
    return this;
  }

  resume(): this {
    if (this.flowing) return this;
    this.flowing = true;
    // As a stream would: after the caller has attached its listeners and returned.
    process.nextTick(() => {
      if (this.body.length > 0) this.emit('data', this.body);
      this.emit('end');
    });
    return this;
  }

  private emit(event: string, arg?: unknown): void {
    for (const [e, listener] of this.listeners) if (e === event) listener(arg);
  }
}

/** Methods whose body Fastify reads, with a body announced. */
function announcesBody(request: FastifyRequest): boolean {
  if (request.method === 'GET' || request.method === 'HEAD') return false;
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * A refusal sent mid-body ends the connection: waiting for the rest would be the slow client's win. (Node
 * then closes it gracefully, discarding what still arrives within bounds: lingering-close.ts.)
 */
function closing(reply: FastifyReply, err: AppError): AppError {
  reply.header('connection', 'close');
  return err;
}

/**
 * Reads a request's body whole within the guard's bounds: its body, `gone` when the client went first,
 * or a rejection with the refusal to send (`body_too_large`, `upload_too_slow`, `too_many_uploads`),
 * after which the caller answers with `Connection: close`. `address` (the client's, as the app knows
 * it) is asked only of a body that turns out slow.
 *
 * Called from the request event, where Node's parser has read the head and not yet the body. A small
 * body (a bot's message) most often arrived in the same read as its head, and the parser takes the rest
 * of that read once the request event returns, before the event loop goes on to its next phase; the
 * microtasks and ticks queued by the request event run before that, between the head and the body. So
 * the body is looked at in this turn's check phase (`setImmediate`): by then a body that came with its
 * head is complete and is taken in one read, without the listeners, timers and stream flow a body still
 * arriving needs (docs/performance.md, "A body that came with its head, taken in one read"). Any other
 * body is read as it arrives.
 */
export function readGuardedBody(raw: IncomingMessage, response: ServerResponse, address: () => string, limit: number, guard: BodyGuard): Promise<Outcome> {
  return new Promise<Outcome>((resolve, reject) => {
    setImmediate(() => {
      // Outside the promise's executor: anything thrown here must still reach the caller, not the process.
      try {
        const arrived = arrivedWhole(raw, limit);
        if (arrived) return resolve({ body: arrived, whole: true });
        // The connection may have gone while the parser read this request's head: nobody is left to answer.
        if (response.destroyed || raw.socket?.destroyed) return resolve({ gone: true });
        readArriving(raw, response, address, limit, guard).then(resolve, reject);
      } catch (err) {
        reject(toError(err));
      }
    });
  });
}

/**
 * The body, when all of it has arrived and none of it was read yet: announced by Content-Length, within
 * `limit`, the request complete and every announced byte waiting in its buffer. Undefined otherwise (it
 * is read as it arrives).
 */
function arrivedWhole(raw: IncomingMessage, limit: number): Buffer | undefined {
  if (!raw.complete || raw.headers['transfer-encoding'] !== undefined) return undefined;
  const announced = Number(raw.headers['content-length']);
  if (!Number.isInteger(announced) || announced > limit || raw.readableLength !== announced) return undefined;
  // With all of it buffered, one read() answers all of it, as one Buffer.
  return announced === 0 ? Buffer.alloc(0) : (raw.read() as Buffer);
}

function readArriving(raw: IncomingMessage, response: ServerResponse, address: () => string, limit: number, guard: BodyGuard): Promise<Outcome> {
  const { limits, slowByAddress } = guard;
  const announced = Number(raw.headers['content-length']);
  // Counted under the address read when the body turned slow, and taken off under the same one.
  let slowAddress = '';
  let countedSlow = false;
  const chunks: Buffer[] = [];
  let received = 0;
  let receivedAtCheck = 0;
  return new Promise<Outcome>((resolve, reject) => {
    let settled = false;
    const settle = (outcome: Outcome | AppError) => {
      if (settled) return;
      settled = true;
      clearTimeout(slowTimer);
      clearInterval(rateTimer);
      raw.off('data', onData).off('end', onEnd).off('error', onGone);
      response.off('close', onGone);
      if (countedSlow) {
        const left = (slowByAddress.get(slowAddress) ?? 1) - 1;
        if (left > 0) slowByAddress.set(slowAddress, left);
        else slowByAddress.delete(slowAddress);
      }
      if (outcome instanceof AppError) {
        // Stop taking the rest; the answer closes the connection.
        raw.pause();
        reject(outcome);
      } else resolve(outcome);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) return settle(new AppError('body_too_large', { message: `The body is larger than the limit of ${limit} bytes.` }));
      chunks.push(chunk);
    };
    const onEnd = () => settle({ body: Buffer.concat(chunks, received), whole: false });
    const onGone = () => settle({ gone: true });
    const perWindow = (limits.minBytesPerSecond * limits.windowMs) / 1000;
    const checkRate = () => {
      // Each window must bring its share, or the rest of the body if that is less.
      const due = Math.min(perWindow, Number.isNaN(announced) ? perWindow : announced - receivedAtCheck);
      if (received - receivedAtCheck < due) {
        const seconds = limits.windowMs / 1000;
        return settle(
          new AppError('upload_too_slow', {
            message: `The body arrived at ${Math.round((received - receivedAtCheck) / seconds)} bytes/s over the last ${seconds} s; the minimum is ${limits.minBytesPerSecond} bytes/s.`,
          }),
        );
      }
      receivedAtCheck = received;
    };
    let rateTimer: NodeJS.Timeout | undefined;
    // Timers beyond this one only for bodies that turn out slow: most arrive before it fires.
    const slowTimer = setTimeout(() => {
      const from = address();
      const slow = (slowByAddress.get(from) ?? 0) + 1;
      if (slow > limits.maxPerAddress) {
        return settle(
          new AppError('too_many_uploads', {
            message: `This address already has ${limits.maxPerAddress} requests whose bodies are still arriving; finish those first.`,
            retryAfterSeconds: 1,
          }),
        );
      }
      slowByAddress.set(from, slow);
      slowAddress = from;
      countedSlow = true;
      receivedAtCheck = received;
      rateTimer = setInterval(checkRate, limits.windowMs);
    }, SLOW_AFTER_MS);
    raw.on('data', onData).on('end', onEnd).on('error', onGone);
    response.on('close', onGone);
  });
}
