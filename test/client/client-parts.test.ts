import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { HandoverClient, HandoverError } from '../../packages/client/src/index.js';
import { readFrames } from '../../packages/client/src/sse.js';
import { delayBefore, parseRetryAfter } from '../../packages/client/src/retry.js';

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
}

async function framesOf(chunks: string[]) {
  const frames = [];
  let activity = 0;
  for await (const frame of readFrames(streamOf(chunks), () => activity++)) frames.push(frame);
  return { frames, activity };
}

describe('the client’s event-stream reader', () => {
  it('reads frames split anywhere across chunks, with comments, retry fields, CRLF and multi-line data', async () => {
    const { frames, activity } = await framesOf([
      'retry: 2000\n\n: keep-alive\n\nid: evt_1\nev',
      'ent: message.created\ndata: {"a":',
      '1}\n\n',
      'id: evt_2\r\ndata: line one\r\ndata: line two\r\n\r\n',
      'data: no id\n\n',
    ]);
    expect(frames).toEqual([{ id: 'evt_1', event: 'message.created', data: '{"a":1}' }, { id: 'evt_2', data: 'line one\nline two' }, { data: 'no id' }]);
    expect(activity).toBe(5);
  });

  it('drops a frame cut off by the end of the stream (it comes again after a resume)', async () => {
    const { frames } = await framesOf(['id: evt_1\ndata: {}\n\nid: evt_2\ndata: {"half']);
    expect(frames.map((f) => f.id)).toEqual(['evt_1']);
  });
});

describe('the client’s retry timing', () => {
  const policy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 2000 };

  it('backs off exponentially with full jitter, capped', () => {
    expect(delayBefore(1, policy, undefined, () => 1)).toBe(100);
    expect(delayBefore(3, policy, undefined, () => 1)).toBe(400);
    expect(delayBefore(10, policy, undefined, () => 1)).toBe(2000);
    expect(delayBefore(3, policy, undefined, () => 0)).toBe(0);
  });

  it('waits at least what Retry-After asks, and gives up when that is past the cap', () => {
    expect(delayBefore(1, policy, 1, () => 0.5)).toBe(1000);
    expect(delayBefore(1, policy, 0, () => 0.5)).toBe(50);
    expect(delayBefore(1, policy, 3, () => 0.5)).toBeUndefined();
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('7')).toBe(7);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    const now = Date.parse('2026-11-23T10:00:00Z');
    expect(parseRetryAfter('Mon, 23 Nov 2026 10:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('Mon, 23 Nov 2026 09:00:00 GMT', now)).toBe(0);
  });
});

describe('the client’s event stream against answers that are not a stream', () => {
  /** A server answering GET /v1/events with each status of `statuses` in turn, then one event. */
  async function serverAnswering(statuses: number[]) {
    let n = 0;
    const server = createServer((_req, res) => {
      const status = statuses[n++];
      if (status !== undefined) {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: `http_${status}`, message: 'no' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('id: evt_1\nevent: handover.queued\ndata: {"id":"evt_1","type":"handover.queued"}\n\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => n };
  }

  it('reconnects after a 500, a 502 or a 504 (a deploy, a proxy), as after a cut', async () => {
    const { server, url, requests } = await serverAnswering([500, 502, 504]);
    try {
      const client = new HandoverClient({ baseUrl: url, apiKey: 'handover_sk_test' });
      const signal = AbortSignal.timeout(10_000);
      for await (const event of client.events({ signal, reconnect: { baseDelayMs: 10, maxDelayMs: 20 } })) {
        expect(event.id).toBe('evt_1');
        break;
      }
      expect(requests()).toBe(4);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('ends with the error for what another connection cannot fix (401)', async () => {
    const { server, url } = await serverAnswering([401]);
    try {
      const client = new HandoverClient({ baseUrl: url, apiKey: 'handover_sk_test' });
      const events = client.events({ signal: AbortSignal.timeout(10_000), reconnect: { baseDelayMs: 10, maxDelayMs: 20 } });
      await expect(events.next()).rejects.toBeInstanceOf(HandoverError);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
