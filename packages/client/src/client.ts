import { HandoverError, HandoverNetworkError } from './errors.js';
import { defaultRetry, delayBefore, parseRetryAfter, sleep, type RetryPolicy } from './retry.js';
import { readFrames } from './sse.js';
import type {
  AttachmentFile,
  Availability,
  BotEvent,
  CreateHandoverInput,
  CreateHandoverResult,
  EndReason,
  Erasure,
  EventPage,
  Handover,
  NewMessage,
  Rating,
  RatingInput,
  UploadedAttachment,
  UserExport,
} from './types.js';

export interface HandoverClientOptions {
  /** The service's base URL, e.g. `https://handover.example.com`. */
  baseUrl: string;
  /** The tenant API key (`handover_sk_…`). */
  apiKey: string;
  /** Bound on each call (default 10 s); the stream has its own idle bound. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

/** Where `events()` keeps its place, so a restarted bot resumes after the last event it processed. */
export interface PositionStore {
  load(): Promise<string | undefined> | string | undefined;
  save(eventId: string): Promise<void> | void;
}

export interface EventsOptions {
  /** Resume after this event id (else the store's, else from the next event on). */
  after?: string;
  positionStore?: PositionStore;
  /** Stops the iteration (it then ends without an error). */
  signal?: AbortSignal;
  /** Reconnects after a cut: backoff from `baseDelayMs` up to `maxDelayMs` (defaults 500 ms, 15 s). */
  reconnect?: { baseDelayMs?: number; maxDelayMs?: number };
  /** No byte (event or heartbeat) for this long: the connection is taken as dead (default 45 s; heartbeats come every 15 s). */
  idleTimeoutMs?: number;
  /**
   * Called each time the stream is open. Without a stored position the stream starts with the next
   * event: ask for a handover only after the first call, or its first events pass before you listen.
   */
  onOpen?: () => void;
}

/**
 * The bot API's operations, by the OpenAPI document's operationId: the client's tests fail when the
 * service documents a bot operation this table (and so the client) does not have, or when a path or
 * method differs.
 */
export const botOperations = {
  getAvailability: { method: 'GET', path: '/v1/availability', clientMethod: 'getAvailability' },
  createHandover: { method: 'POST', path: '/v1/handovers', clientMethod: 'createHandover' },
  getHandover: { method: 'GET', path: '/v1/handovers/{id}', clientMethod: 'getHandover' },
  sendUserMessage: { method: 'POST', path: '/v1/handovers/{id}/messages', clientMethod: 'sendMessage' },
  sendUserTyping: { method: 'POST', path: '/v1/handovers/{id}/typing', clientMethod: 'sendTyping' },
  endHandover: { method: 'POST', path: '/v1/handovers/{id}/end', clientMethod: 'endHandover' },
  rateHandover: { method: 'POST', path: '/v1/handovers/{id}/rating', clientMethod: 'rateHandover' },
  uploadUserAttachment: { method: 'POST', path: '/v1/handovers/{id}/attachments', clientMethod: 'uploadAttachment' },
  getHandoverAttachment: { method: 'GET', path: '/v1/handovers/{id}/attachments/{attachmentId}', clientMethod: 'getAttachment' },
  listHandoverEvents: { method: 'GET', path: '/v1/handovers/{id}/events', clientMethod: 'listEvents' },
  streamEvents: { method: 'GET', path: '/v1/events', clientMethod: 'events' },
  exportUser: { method: 'GET', path: '/v1/users/{userId}/export', clientMethod: 'exportUser' },
  eraseUser: { method: 'DELETE', path: '/v1/users/{userId}', clientMethod: 'eraseUser' },
} as const;

/** Statuses worth another try: the service said "not now" (503, 429) or the request did not arrive whole in time (408). */
const retryableStatuses = new Set([408, 429, 503]);

/** The answers to `GET /v1/events` that another connection would get again: every 4xx but 408 and 429. */
function streamIsOver(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

const enc = encodeURIComponent;

/**
 * A client for the handover bot API. Every call that creates something carries an idempotency key
 * (`Idempotency-Key` for a handover, the message `id` for a message), so every call of this client is
 * safe to send twice, and it retries those that got no answer or a 503/429/408, honouring Retry-After,
 * up to `retry.maxAttempts`. Errors are {@link HandoverError}s with the service's `code`.
 */
export class HandoverClient {
  readonly #baseUrl: string;
  readonly #apiKey: string;
  readonly #timeoutMs: number;
  readonly #retry: RetryPolicy;
  readonly #fetch: typeof fetch;

  constructor(options: HandoverClientOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#retry = { ...defaultRetry, ...options.retry };
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** Can a user reach a person in this queue now? Ask before offering a handover. */
  getAvailability(queue: string, options: CallOptions = {}): Promise<Availability> {
    return this.#call('GET', `/v1/availability?queue=${enc(queue)}`, undefined, options);
  }

  /**
   * Asks for a person. A conversation has at most one live handover: asking again gives it back with
   * `created: false`. Refusals the bot should handle are `HandoverError`s with status 409 and code
   * `queue_closed` (see `details.nextOpenAt`), `no_agents_available`, `queue_full` or `connector_degraded`.
   */
  async createHandover(input: CreateHandoverInput, options: CallOptions & { idempotencyKey?: string } = {}): Promise<CreateHandoverResult> {
    const idempotencyKey = options.idempotencyKey ?? newKey();
    const { status, body } = await this.#send<Handover>('POST', '/v1/handovers', input, { ...options, headers: { 'idempotency-key': idempotencyKey } });
    return { handover: body, created: status === 201 };
  }

  getHandover(handoverId: string, options: CallOptions = {}): Promise<Handover> {
    return this.#call('GET', `/v1/handovers/${enc(handoverId)}`, undefined, options);
  }

  /** Relays the user's message to the agent; resolves once it is stored (delivery follows, in order). */
  sendMessage(handoverId: string, message: NewMessage, options: CallOptions = {}): Promise<{ id: string }> {
    return this.#call('POST', `/v1/handovers/${enc(handoverId)}/messages`, { ...message, id: message.id ?? newKey() }, options);
  }

  async sendTyping(handoverId: string, typing: boolean, options: CallOptions = {}): Promise<void> {
    await this.#call('POST', `/v1/handovers/${enc(handoverId)}/typing`, { typing }, options);
  }

  /** Ends the handover from the bot side (ending an ended one gives it back as it is). */
  endHandover(
    handoverId: string,
    reason: Extract<EndReason, 'bot_ended' | 'user_ended' | 'abandoned'> = 'bot_ended',
    options: CallOptions = {},
  ): Promise<Handover> {
    return this.#call('POST', `/v1/handovers/${enc(handoverId)}/end`, { reason }, options);
  }

  /**
   * Records the user's satisfaction rating (1 to 5, with an optional comment) of an ended handover. Sent
   * again with the same rating it answers as the first time; a different one is a `HandoverError` with
   * status 409 and code `rating_conflict`, a live handover `handover_not_ended`.
   */
  rateHandover(handoverId: string, rating: RatingInput, options: CallOptions = {}): Promise<Rating> {
    return this.#call('POST', `/v1/handovers/${enc(handoverId)}/rating`, rating, options);
  }

  /**
   * Uploads a file of the user's to the handover; send it in a message by the answer's id
   * (`attachments: [{ id }]`). The service reads its type from its bytes: a type it does not take is a
   * `HandoverError` 415 (`attachment_type_not_allowed`, `attachment_type_mismatch`), a file too large 413.
   */
  uploadAttachment(
    handoverId: string,
    file: { bytes: Uint8Array; name?: string; contentType?: string },
    options: CallOptions = {},
  ): Promise<UploadedAttachment> {
    const query = file.name === undefined ? '' : `?name=${enc(file.name)}`;
    return this.#call('POST', `/v1/handovers/${enc(handoverId)}/attachments${query}`, undefined, {
      ...options,
      raw: { bytes: file.bytes, contentType: file.contentType ?? 'application/octet-stream' },
    });
  }

  /** A file of one of the handover's messages, with the API key (for when its signed link has expired). */
  async getAttachment(handoverId: string, attachmentId: string, options: CallOptions = {}): Promise<AttachmentFile> {
    const answer = await this.#send<Uint8Array>('GET', `/v1/handovers/${enc(handoverId)}/attachments/${enc(attachmentId)}`, undefined, {
      ...options,
      binary: true,
    });
    const disposition = answer.headers.get('content-disposition') ?? '';
    const encoded = /filename\*=UTF-8''([^;]+)/i.exec(disposition)?.[1];
    return {
      bytes: answer.body,
      contentType: answer.headers.get('content-type') ?? 'application/octet-stream',
      name: encoded ? decodeURIComponent(encoded) : null,
    };
  }

  /** One handover's events, oldest first, after `after` (a poll, for bots without a stream or webhook). */
  listEvents(handoverId: string, query: { after?: string; limit?: number } = {}, options: CallOptions = {}): Promise<EventPage> {
    const params = new URLSearchParams();
    if (query.after) params.set('after', query.after);
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    const qs = params.toString() ? `?${params}` : '';
    return this.#call('GET', `/v1/handovers/${enc(handoverId)}/events${qs}`, undefined, options);
  }

  exportUser(userId: string, options: CallOptions = {}): Promise<UserExport> {
    return this.#call('GET', `/v1/users/${enc(userId)}/export`, undefined, options);
  }

  /** Erases everything stored of one end user; refused (`user_has_live_handover`) while they are in a live handover. */
  eraseUser(userId: string, options: CallOptions = {}): Promise<Erasure> {
    return this.#call('DELETE', `/v1/users/${enc(userId)}`, undefined, options);
  }

  /**
   * The tenant's events, as an async iterator over the live stream (`GET /v1/events`). It reconnects
   * by itself after a cut, resuming with `Last-Event-ID` after the last event your loop finished with,
   * so nothing is missed or repeated across reconnects; with a `positionStore`, across restarts too
   * (the position is saved when your loop asks for the next event, i.e. after you processed one).
   * Refusals that another try cannot fix (a wrong key, an unknown position, a revoked key) end it with
   * a {@link HandoverError}.
   */
  async *events(options: EventsOptions = {}): AsyncGenerator<BotEvent, void, undefined> {
    let position = options.after ?? (await options.positionStore?.load());
    const base = options.reconnect?.baseDelayMs ?? 500;
    const cap = options.reconnect?.maxDelayMs ?? 15_000;
    const idleMs = options.idleTimeoutMs ?? 45_000;
    let failures = 0;
    while (!options.signal?.aborted) {
      const connection = new AbortController();
      const stop = () => connection.abort(options.signal?.reason);
      options.signal?.addEventListener('abort', stop, { once: true });
      let idle: ReturnType<typeof setTimeout> | undefined;
      const activity = () => {
        clearTimeout(idle);
        idle = setTimeout(() => connection.abort(new Error(`no data for ${idleMs} ms`)), idleMs);
      };
      let retryAfterSeconds: number | undefined;
      try {
        activity();
        const headers: Record<string, string> = { authorization: `Bearer ${this.#apiKey}`, accept: 'text/event-stream' };
        if (position) headers['last-event-id'] = position;
        const res = await this.#fetch(`${this.#baseUrl}/v1/events`, { headers, signal: connection.signal });
        if (res.status !== 200 || !res.body) {
          const error = await errorOf(res, 1);
          // Only what another connection cannot fix ends the stream (a wrong or revoked key, an unknown
          // position, a request the service refuses); a 5xx from the service or a proxy in front of it
          // (a deploy's 502, a 504) is reconnected after, as a cut is.
          if (streamIsOver(res.status)) throw error;
          retryAfterSeconds = error.retryAfterSeconds;
        } else {
          options.onOpen?.();
          for await (const frame of readFrames(res.body, activity)) {
            if (frame.event === 'error') throw errorFromFrame(frame.data);
            if (!frame.id) continue;
            const event = JSON.parse(frame.data) as BotEvent;
            failures = 0;
            yield event;
            position = event.id;
            await options.positionStore?.save(event.id);
          }
        }
      } catch (err) {
        if (err instanceof HandoverError) throw err;
        if (options.signal?.aborted) return;
        // A cut, a reset or a silent connection: reconnect below.
      } finally {
        clearTimeout(idle);
        options.signal?.removeEventListener('abort', stop);
        connection.abort();
      }
      failures++;
      const wait = Math.max((retryAfterSeconds ?? 0) * 1000, Math.random() * Math.min(cap, base * 2 ** Math.min(failures - 1, 10)));
      try {
        await sleep(wait, options.signal);
      } catch {
        return;
      }
    }
  }

  async #call<T>(method: string, path: string, body: unknown, options: CallOptions & { raw?: { bytes: Uint8Array; contentType: string } }): Promise<T> {
    return (await this.#send<T>(method, path, body, options)).body;
  }

  async #send<T>(
    method: string,
    path: string,
    body: unknown,
    options: CallOptions & { headers?: Record<string, string>; raw?: { bytes: Uint8Array; contentType: string }; binary?: boolean },
  ): Promise<{ status: number; body: T; headers: Headers }> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#apiKey}`,
      accept: options.binary ? '*/*' : 'application/json',
      ...options.headers,
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (options.raw) headers['content-type'] = options.raw.contentType;
    // fetch sends any Uint8Array; the DOM types name only ArrayBuffer-backed ones (a Buffer may share a pool).
    const payload = options.raw ? (options.raw.bytes as Uint8Array<ArrayBuffer>) : body === undefined ? undefined : JSON.stringify(body);
    for (let attempt = 1; ; attempt++) {
      let failure: HandoverError;
      try {
        const signal = options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(this.#timeoutMs)]) : AbortSignal.timeout(this.#timeoutMs);
        const res = await this.#fetch(`${this.#baseUrl}${path}`, { method, headers, ...(payload !== undefined ? { body: payload } : {}), signal });
        if (res.ok) {
          if (options.binary) return { status: res.status, body: new Uint8Array(await res.arrayBuffer()) as T, headers: res.headers };
          const text = await res.text();
          return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, headers: res.headers };
        }
        failure = await errorOf(res, attempt);
        if (!retryableStatuses.has(res.status)) throw failure;
      } catch (err) {
        if (err instanceof HandoverError) throw err;
        if (options.signal?.aborted) throw options.signal.reason;
        const timedOut = (err as Error).name === 'TimeoutError';
        failure = new HandoverNetworkError({
          code: timedOut ? 'timeout' : 'network_error',
          message: `${method} ${path}: ${timedOut ? `no answer within ${this.#timeoutMs} ms` : 'the connection failed'}`,
          attempts: attempt,
          cause: err,
        });
      }
      const wait = attempt < this.#retry.maxAttempts ? delayBefore(attempt, this.#retry, failure.retryAfterSeconds) : undefined;
      if (wait === undefined) throw failure;
      await sleep(wait, options.signal);
    }
  }
}

export interface CallOptions {
  signal?: AbortSignal;
}

function newKey(): string {
  return crypto.randomUUID();
}

async function errorOf(res: Response, attempts: number): Promise<HandoverError> {
  const retryAfterSeconds = parseRetryAfter(res.headers.get('retry-after'));
  let parsed: { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined;
  try {
    parsed = (await res.json()) as typeof parsed;
  } catch {
    parsed = undefined;
  }
  const error = parsed?.error;
  return new HandoverError({
    code: typeof error?.code === 'string' ? error.code : `http_${res.status}`,
    message: typeof error?.message === 'string' ? error.message : `HTTP ${res.status}`,
    status: res.status,
    details: error?.details && typeof error.details === 'object' ? (error.details as Record<string, unknown>) : undefined,
    retryAfterSeconds,
    attempts,
  });
}

function errorFromFrame(data: string): HandoverError {
  let error: { code?: string; message?: string } | undefined;
  try {
    error = (JSON.parse(data) as { error?: { code?: string; message?: string } }).error;
  } catch {
    error = undefined;
  }
  return new HandoverError({ code: error?.code ?? 'stream_error', message: error?.message ?? 'The stream ended with an error.', status: 401 });
}
