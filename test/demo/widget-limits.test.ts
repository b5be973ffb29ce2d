import { afterEach, describe, expect, it } from 'vitest';

interface WidgetServer {
  url: string;
  close(): Promise<void>;
}
type Start = (options: Record<string, unknown>) => Promise<WidgetServer>;

// The demo bot is plain JavaScript (an example to copy); loaded by path so the type checker leaves it be.
const modulePath = '../../examples/demo-bot/widget-server.js';

describe("the demo widget's public endpoints are rate-limited", () => {
  let server: WidgetServer | undefined;
  afterEach(async () => {
    await server?.close();
  });

  async function start(limits: Record<string, unknown>): Promise<WidgetServer> {
    const { startWidgetServer } = (await import(modulePath)) as { startWidgetServer: Start };
    const received: unknown[] = [];
    return startWidgetServer({
      host: '127.0.0.1',
      port: 0,
      allowedOrigins: ['*'],
      onOpen: () => {},
      onMessage: (m: unknown) => received.push(m),
      onTyping: () => {},
      log: () => {},
      limits,
    });
  }

  const post = (url: string, body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('per conversation, per address, and in open streams per address', async () => {
    server = await start({ perAddress: { perSecond: 0.001, burst: 8 }, perConversation: { perSecond: 0.001, burst: 3 }, streamsPerAddress: 2 });
    const send = (conversationId: string, i: number) => post(`${server!.url}/chat/messages`, { conversationId, id: `message-${i}-0000`, text: 'hi' });
    // One conversation: its burst, then 429 with Retry-After.
    for (let i = 0; i < 3; i++) expect((await send('conversation-a', i)).status).toBe(202);
    const limited = await send('conversation-a', 3);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    // Other conversations from the same address: until the address's burst is spent.
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await send(`conversation-${i}-b`, i)).status);
    expect(statuses.filter((s) => s === 202).length).toBe(4);
    expect(statuses.at(-1)).toBe(429);
  });

  it('bounds the streams one address holds open', async () => {
    server = await start({ perAddress: { perSecond: 100, burst: 100 }, perConversation: { perSecond: 100, burst: 100 }, streamsPerAddress: 2 });
    const controllers = [new AbortController(), new AbortController()];
    const open = await Promise.all(controllers.map((c, i) => fetch(`${server!.url}/chat/stream?conversation=stream-${i}-000`, { signal: c.signal })));
    expect(open.map((r) => r.status)).toEqual([200, 200]);
    expect((await fetch(`${server.url}/chat/stream?conversation=stream-9-000`)).status).toBe(429);
    controllers[0]!.abort();
    await open[0]!.body?.cancel().catch(() => {});
    // A closed stream frees its place.
    let status = 0;
    for (let i = 0; i < 40 && status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 25));
      const res = await fetch(`${server.url}/chat/stream?conversation=stream-8-000`, { signal: AbortSignal.timeout(1000) }).catch(() => null);
      status = res?.status ?? 0;
      await res?.body?.cancel().catch(() => {});
    }
    expect(status).toBe(200);
    controllers[1]!.abort();
  });
});
