import { describe, expect, it } from 'vitest';
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
