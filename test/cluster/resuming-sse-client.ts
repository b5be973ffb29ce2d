/**
 * An SSE client that behaves like a production bot: when the stream drops (its instance died, the
 * balancer cut it) it reconnects with backoff and resumes with `Last-Event-ID` — so what it collects
 * shows whether resuming ever skips an event.
 */
export interface ResumedEvent {
  id: string;
  event: string;
  data: Record<string, unknown>;
}

export class ResumingSseClient {
  readonly events: ResumedEvent[] = [];
  reconnects = 0;
  private lastId: string | undefined;
  private closed = false;
  private controller: AbortController | undefined;
  private opened = false;

  constructor(
    private readonly url: string,
    private readonly headers: Record<string, string>,
  ) {
    void this.loop();
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      this.controller = new AbortController();
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream', ...this.headers };
        if (this.lastId) headers['last-event-id'] = this.lastId;
        const res = await fetch(this.url, { headers, signal: this.controller.signal });
        if (res.status === 200 && res.body) {
          this.opened = true;
          failures = 0;
          await this.read(res.body as unknown as AsyncIterable<Uint8Array>);
        } else {
          await res.body?.cancel();
        }
      } catch {
        // dropped or refused: reconnect below
      }
      if (this.closed) return;
      this.reconnects++;
      failures++;
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** Math.min(failures, 5))));
    }
  }

  private async read(body: AsyncIterable<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of body) {
      buffer += decoder.decode(chunk, { stream: true });
      let index: number;
      while ((index = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, index);
        buffer = buffer.slice(index + 2);
        let id: string | undefined;
        let event = 'message';
        const data: string[] = [];
        for (const line of frame.split('\n')) {
          if (line.startsWith('id: ')) id = line.slice(4);
          else if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (id === undefined || data.length === 0) continue;
        this.events.push({ id, event, data: JSON.parse(data.join('\n')) as Record<string, unknown> });
        this.lastId = id;
      }
    }
  }

  async waitForOpen(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.opened) {
      if (Date.now() > until) throw new Error(`SSE stream ${this.url} did not open in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async waitFor(predicate: (events: ResumedEvent[]) => boolean, timeoutMs: number, what: string): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!predicate(this.events)) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}; have ${this.events.length} events`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  close(): void {
    this.closed = true;
    this.controller?.abort();
  }
}
