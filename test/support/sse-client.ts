/** A minimal Server-Sent Events reader over fetch, for tests: collects events until closed. */
export interface SseEvent {
  id?: string;
  event?: string;
  data: any;
}

export interface SseClient {
  events: SseEvent[];
  close(): void;
  waitFor(predicate: (events: SseEvent[]) => boolean, timeoutMs?: number, what?: string): Promise<void>;
  /** Resolves when the stream has opened (headers received). */
  opened: Promise<number>;
  /** The server ended the stream (not a close() from this side). */
  readonly ended: boolean;
}

export function openSseClient(url: string, headers: Record<string, string>): SseClient {
  const controller = new AbortController();
  const events: SseEvent[] = [];
  let resolveOpened: (status: number) => void = () => {};
  const opened = new Promise<number>((r) => (resolveOpened = r));
  let ended = false;
  void (async () => {
    try {
      const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal });
      resolveOpened(res.status);
      if (!res.body) return;
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let index: number;
        while ((index = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, index);
          buffer = buffer.slice(index + 2);
          const event: Partial<SseEvent> = {};
          const data: string[] = [];
          for (const line of frame.split('\n')) {
            if (line.startsWith('id: ')) event.id = line.slice(4);
            else if (line.startsWith('event: ')) event.event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length > 0) events.push({ ...event, data: JSON.parse(data.join('\n')) });
        }
      }
      ended = true;
    } catch {
      if (!controller.signal.aborted) ended = true;
      resolveOpened(0);
    }
  })();
  return {
    events,
    opened,
    get ended() {
      return ended;
    },
    close: () => controller.abort(),
    async waitFor(predicate, timeoutMs = 20_000, what = 'SSE events') {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(events)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; have ${events.length}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}
