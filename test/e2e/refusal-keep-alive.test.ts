import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLocalBus } from '../../src/bus/local-bus.js';
import { shedBeforeRouting } from '../../src/http/shed-before-routing.js';
import { AdmissionController, REUSE_REFUSAL_MS } from '../../src/resilience/admission.js';
import type { LoadSignals } from '../../src/resilience/load-signals.js';
import { createMetrics, type Metrics } from '../../src/monitoring/metrics.js';

/**
 * Refusals before routing keep the connection when the body is small: under overload most requests are
 * refused, and a refusal that closes its connection costs the client and this process a new one each
 * time. A refusal for memory, or with a body too large to read just to throw away, still closes.
 */
function signals(state: { lagMs: number; usedBytes: number }): LoadSignals {
  return {
    eventLoopDelayMs: () => state.lagMs,
    eventLoopUtilization: () => 0,
    eventLoopCpuShare: () => undefined,
    eventLoopWindow: () => ({ seq: 0, utilization: 0 }),
    heap: () => ({ usedBytes: state.usedBytes, limitBytes: 1000 }),
    stop: () => {},
  };
}

let server: Server | undefined;
let metrics: Metrics | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** `clock`: admission's clock (the window a refusal is answered again in), moved by the test itself. */
async function start(state: { lagMs: number; usedBytes: number }, clock: () => number = () => performance.now()): Promise<number> {
  const load = signals(state);
  const admission = new AdmissionController(
    {
      enabled: true,
      adaptive: false,
      initialLimit: 4,
      minLimit: 1,
      maxLimit: 4,
      queueTimeoutMs: 100,
      codelTargetMs: 5,
      codelIntervalMs: 200,
      maxQueueLength: 10,
      eventLoopDelayLimitMs: 50,
      eventLoopUtilizationLimit: 1,
      warmupMs: 0,
      heapUsedLimitRatio: 0.9,
    },
    load,
    undefined,
    undefined,
    clock,
  );
  metrics = createMetrics({ admission, signals: load, bus: createLocalBus() });
  const shed = shedBeforeRouting(admission, metrics);
  let served = 0;
  server = createServer((request, response) => {
    if (shed(request, response)) return;
    served++;
    request.resume();
    request.on('end', () => response.end(JSON.stringify({ served })));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

/** A client on one socket: writes a request, resolves with the whole answer (head and body). */
function client(port: number) {
  const socket: Socket = connect({ host: '127.0.0.1', port });
  let buffer = '';
  let closed = false;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (buffer += chunk));
  socket.on('close', () => (closed = true));
  return {
    get closed() {
      return closed;
    },
    async request(body: string, extraHeaders = ''): Promise<{ head: string; body: string }> {
      buffer = '';
      socket.write(
        `POST /v1/handovers/ho_1/messages HTTP/1.1\r\nhost: x\r\nauthorization: Bearer key\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`,
      );
      const deadline = Date.now() + 5000;
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end >= 0) {
          const length = Number(/content-length: (\d+)/i.exec(buffer.slice(0, end))?.[1] ?? 0);
          if (buffer.length >= end + 4 + length) return { head: buffer.slice(0, end).toLowerCase(), body: buffer.slice(end + 4, end + 4 + length) };
        }
        if (closed || Date.now() > deadline) throw new Error(`no whole answer (closed: ${closed}): ${buffer}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    close: () => socket.destroy(),
  };
}

describe('refusals before routing and the connection', () => {
  it('keep the connection for a small body: every request on it is answered, the next one too', async () => {
    const state = { lagMs: 500, usedBytes: 1 };
    const port = await start(state);
    const c = client(port);
    try {
      for (let i = 0; i < 3; i++) {
        const answer = await c.request(`{"text":"hello ${i}"}`);
        expect(answer.head).toMatch(/^http\/1.1 503/);
        expect(JSON.parse(answer.body).error.code).toBe('overloaded_event_loop');
        expect(answer.head).toContain('retry-after: 1');
        expect(answer.head).not.toContain('connection: close');
      }
      // The process recovers: the same connection is served.
      state.lagMs = 0;
      const served = await c.request('{"text":"now"}');
      expect(served.head).toMatch(/^http\/1.1 200/);
      expect(c.closed).toBe(false);
    } finally {
      c.close();
    }
  });

  it('answer the same refusal again for a short while, and count every one where the metrics read them', async () => {
    const state = { lagMs: 500, usedBytes: 1 };
    let now = 0;
    const port = await start(state, () => now);
    const c = client(port);
    const count = async () => {
      const text = await metrics!.registry.metrics();
      return {
        rejections: Number(/^handover_admission_rejections_total\{cause="event_loop"\} (\d+)$/m.exec(text)?.[1] ?? 0),
        refusedBeforeRouting: Number(
          /^http_server_request_duration_seconds_count\{http_request_method="POST",http_route="\/v1\/ \(refused before routing\)",http_response_status_code="503"\} (\d+)$/m.exec(
            text,
          )?.[1] ?? 0,
        ),
      };
    };
    try {
      const first = await c.request('{"text":"one"}');
      // The loop runs later still; within the window the answer is the same, word for word, its figure
      // as it was when made.
      state.lagMs = 600;
      now += REUSE_REFUSAL_MS - 1;
      const second = await c.request('{"text":"two"}');
      expect(second.body).toBe(first.body);
      expect(await count()).toEqual({ rejections: 2, refusedBeforeRouting: 2 });
      // Read again: nothing counted twice.
      expect(await count()).toEqual({ rejections: 2, refusedBeforeRouting: 2 });
      // Past the window, a new answer with the loop's new figure; and the count goes on.
      state.lagMs = 700;
      now += 1;
      const later = await c.request('{"text":"three"}');
      expect(JSON.parse(later.body).error.message).toMatch(/700 ms late/);
      expect(JSON.parse(first.body).error.message).toMatch(/500 ms late/);
      expect(await count()).toEqual({ rejections: 3, refusedBeforeRouting: 3 });
    } finally {
      c.close();
    }
  });

  it('close it for a refusal for memory, and for a body too large to read only to throw it away', async () => {
    const memory = { lagMs: 0, usedBytes: 999 };
    let port = await start(memory);
    let c = client(port);
    const small = await c.request('{"text":"hello"}');
    expect(JSON.parse(small.body).error.code).toBe('overloaded_memory');
    expect(small.head).toContain('connection: close');
    c.close();
    await new Promise<void>((resolve) => server!.close(() => resolve()));

    port = await start({ lagMs: 500, usedBytes: 1 });
    c = client(port);
    const big = `{"text":"${'x'.repeat(70 * 1024)}"}`;
    const answer = await c.request(big);
    expect(JSON.parse(answer.body).error.code).toBe('overloaded_event_loop');
    expect(answer.head).toContain('connection: close');
    c.close();
  });
});
