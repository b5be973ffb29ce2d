// @ts-check
// The desk's live signals: Server-Sent Events read with fetch() (EventSource cannot send the Bearer
// token). Signals carry ids only; the console re-reads state over REST. After any drop the stream is
// opened again with backoff, and each (re)connect starts with a `ready` event, on which the console
// re-reads everything it shows: nothing missed while away is lost. The server renews the stream now and
// then (a `renew` event, then the end): the next one is opened at once, without showing a drop.

const WATCHDOG_MS = 40_000; // the server sends a heartbeat every 15 s; silence this long means a dead link
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 8_000;

/**
 * Opens the stream and keeps it open until `stop()`.
 * onSignal(type, data) for each event; onState('connecting' | 'live' | 'reconnecting'); onUnauthorized().
 */
export function connectLive({ url, onSignal, onState, onUnauthorized }) {
  let stopped = false;
  let controller = null;
  let wake = null;
  let failures = 0;
  /** The server ended the last stream with `renew`: open the next one at once, still live. */
  let renewing = false;

  const onOnline = () => wake?.();
  window.addEventListener('online', onOnline);

  async function readOnce() {
    controller = new AbortController();
    let watchdog = null;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(), WATCHDOG_MS);
    };
    try {
      arm();
      // The session cookie goes along (same origin); EventSource is not used so that drops are ours to handle.
      const res = await fetch(url, { headers: { accept: 'text/event-stream' }, cache: 'no-store', credentials: 'same-origin', signal: controller.signal });
      if (res.status === 401) {
        stopped = true;
        onUnauthorized();
        return;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        arm();
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = parseFrame(frame);
          if (!event) continue;
          if (event.type === 'ready') {
            failures = 0;
            onState('live');
          }
          if (event.type === 'renew') renewing = true;
          onSignal(event.type, event.data);
        }
      }
    } finally {
      clearTimeout(watchdog);
    }
  }

  (async () => {
    onState('connecting');
    while (!stopped) {
      try {
        await readOnce();
      } catch {
        // dropped, refused or timed out: retried below
      }
      if (stopped) return;
      if (renewing) {
        // A planned renewal, not a drop: reconnect at once (the next `ready` re-reads everything).
        renewing = false;
        continue;
      }
      onState('reconnecting');
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** failures) * (0.5 + Math.random() / 2);
      failures++;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, delay);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  })();

  return {
    stop() {
      stopped = true;
      window.removeEventListener('online', onOnline);
      controller?.abort();
      wake?.();
    },
  };
}

function parseFrame(frame) {
  let type = 'message';
  const data = [];
  for (const line of frame.split('\n')) {
    if (line.startsWith(':')) continue; // heartbeat comment
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return null;
  try {
    return { type, data: JSON.parse(data.join('\n')) };
  } catch {
    return null;
  }
}
