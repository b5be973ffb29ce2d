// A small client for handover's public bot API: availability, handovers, messages, typing, and the
// tenant's event stream (Server-Sent Events, resumed with Last-Event-ID). Node 20+, no dependencies.
// Copy this file into your bot and keep it as it is.

const REQUEST_TIMEOUT_MS = 10_000;
const STREAM_SILENCE_MS = 40_000; // handover sends a heartbeat every 15 s: silence this long is a dead link
const MAX_ATTEMPTS = 3;

export class HandoverError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'HandoverError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** @param {{ baseUrl: string, apiKey: string, log?: (line: string) => void }} options */
export function createHandoverClient({ baseUrl, apiKey, log = () => {} }) {
  const base = baseUrl.replace(/\/$/, '');

  async function call(method, path, body, headers = {}) {
    let res;
    try {
      res = await fetch(base + path, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      throw new HandoverError(0, 'network', `handover is not reachable at ${base}: ${err.message}`);
    }
    const text = await res.text();
    let json;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null; // not JSON (a proxy's error page): the status says enough
    }
    if (!res.ok) {
      const err = new HandoverError(res.status, json?.error?.code ?? 'http_error', json?.error?.message ?? `HTTP ${res.status}`, json?.error?.details);
      err.retryAfterSeconds = Number(res.headers.get('retry-after')) || undefined;
      throw err;
    }
    return json;
  }

  /** Retries network failures and 5xx. Only for calls that are safe to repeat (an id or an Idempotency-Key). */
  async function retrying(fn) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const transient = err instanceof HandoverError && (err.status === 0 || err.status >= 500 || err.status === 429);
        if (!transient || attempt >= MAX_ATTEMPTS) throw err;
        // Honour Retry-After (handover sends it with 503s), within reason.
        await sleep(err.retryAfterSeconds ? Math.min(err.retryAfterSeconds, 5) * 1000 : 300 * 2 ** attempt);
      }
    }
  }

  const id = (handoverId) => encodeURIComponent(handoverId);

  return {
    /** Can a user reach a person in this queue now? → { available, reason?, agentsOnline, queueLength, estimatedWaitSeconds, nextOpenAt } */
    availability: (queue) => retrying(() => call('GET', `/v1/availability?queue=${encodeURIComponent(queue)}`)),

    /** Asks for a human. The Idempotency-Key makes a retried request return the same handover. */
    requestHandover: (request, idempotencyKey) => retrying(() => call('POST', '/v1/handovers', request, { 'idempotency-key': idempotencyKey })),

    /** Relays the user's message. `message.id` is your id: a retry with the same id is stored once. */
    postMessage: (handoverId, message) => retrying(() => call('POST', `/v1/handovers/${id(handoverId)}/messages`, message)),

    /** The user is typing (or stopped). Ephemeral: not retried. */
    postTyping: (handoverId, typing) => call('POST', `/v1/handovers/${id(handoverId)}/typing`, { typing }),

    endHandover: (handoverId, reason) => call('POST', `/v1/handovers/${id(handoverId)}/end`, { reason }),

    /**
     * Follows GET /v1/events until stop(). Each event is handed to `onEvent` once, in order (awaited);
     * after a drop the stream resumes after the last event handled, so nothing is missed or repeated.
     * `connected` resolves once the stream is open: a stream without a cursor starts with the next
     * event, so ask for handovers only after that.
     */
    followEvents(onEvent) {
      let stopped = false;
      let controller = null;
      let lastEventId = null;
      let markConnected;
      const connected = new Promise((resolve) => (markConnected = resolve));
      const seen = new Set(); // delivery is at least once: drop repeats by event id
      (async () => {
        let failures = 0;
        while (!stopped) {
          controller = new AbortController();
          let silence = null;
          const arm = () => {
            clearTimeout(silence);
            silence = setTimeout(() => controller.abort(), STREAM_SILENCE_MS);
          };
          try {
            arm();
            const res = await fetch(`${base}/v1/events`, {
              headers: { authorization: `Bearer ${apiKey}`, accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
              signal: controller.signal,
            });
            if (res.status === 400 && lastEventId) {
              // The cursor is unknown (the store was reset): start again from now.
              log(`event cursor ${lastEventId} is unknown to handover; following from the latest event`);
              lastEventId = null;
              continue;
            }
            if (!res.ok || !res.body) throw new Error(`GET /v1/events answered ${res.status}`);
            log(`following handover events at ${base}/v1/events${lastEventId ? ` after ${lastEventId}` : ''}`);
            failures = 0;
            markConnected();
            const decoder = new TextDecoder();
            let buffer = '';
            for await (const chunk of res.body) {
              arm();
              buffer += decoder.decode(chunk, { stream: true });
              let end;
              while ((end = buffer.indexOf('\n\n')) >= 0) {
                const frame = parseFrame(buffer.slice(0, end));
                buffer = buffer.slice(end + 2);
                if (!frame || !frame.id || seen.has(frame.id)) continue;
                try {
                  await onEvent(JSON.parse(frame.data));
                } catch (err) {
                  log(`handling event ${frame.id} failed: ${err.message}`);
                }
                seen.add(frame.id);
                if (seen.size > 10_000) seen.delete(seen.values().next().value);
                lastEventId = frame.id;
              }
            }
          } catch (err) {
            if (stopped) return;
            log(`event stream dropped (${err.message}); reconnecting`);
          } finally {
            clearTimeout(silence);
          }
          if (stopped) return;
          await sleep(Math.min(5000, 250 * 2 ** failures++));
        }
      })();
      return {
        connected,
        stop() {
          stopped = true;
          controller?.abort();
        },
      };
    },
  };
}

function parseFrame(text) {
  const frame = { id: null, event: 'message', data: '' };
  const data = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') frame.id = value;
    else if (field === 'event') frame.event = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return null;
  frame.data = data.join('\n');
  return frame;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
