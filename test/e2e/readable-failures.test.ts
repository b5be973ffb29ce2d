import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpClients, nodeFetch, type ClientAnswer, type ClientRequest, type HttpClient } from '../support/http-clients.js';
import { holdHandover } from '../support/row-lock.js';
import { eventually, setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * Every failure a client can meet ends with a status and a coded JSON body that each common client
 * reads — Node's fetch, curl, Python's requests — never with a reset in place of the answer: a body too
 * large (announced, or found while it arrives), a refusal under overload before anything is read, a
 * shutdown while a body arrives, a request that does not arrive in time or too slowly, a handler past
 * its deadline. Each client runs in its own process, as a bot would.
 */
const files = mkdtempSync(join(tmpdir(), 'handover-readable-'));
const fiveMegabytes = join(files, 'five-megabytes.json');
const small = join(files, 'small.json');
writeFileSync(fiveMegabytes, JSON.stringify({ id: 'big-1', text: 'x'.repeat(5 * 1024 * 1024) }));
writeFileSync(small, JSON.stringify({ id: 'small-1', text: 'hello' }));
afterAll(() => rmSync(files, { recursive: true, force: true }));

const json = (apiKey: string) => ({ 'content-type': 'application/json', authorization: `Bearer ${apiKey}` });

/** Sends the same request with every client, one after the other, and answers what each read. */
async function eachClient(
  request: (client: HttpClient) => ClientRequest,
  feed?: (stdin: NodeJS.WritableStream) => Promise<void>,
): Promise<Map<string, ClientAnswer>> {
  const answers = new Map<string, ClientAnswer>();
  for (const client of httpClients) {
    const run = client.start(request(client));
    if (feed) await feed(run.stdin);
    else run.stdin.end();
    answers.set(client.name, await run.answer);
  }
  return answers;
}

function expectEveryAnswer(answers: Map<string, ClientAnswer>, expected: Partial<ClientAnswer>): void {
  for (const [client, answer] of answers) expect(answer, client).toMatchObject({ error: null, ...expected });
}

/** Requests whose head reached `server` so far. */
function countArrivals(server: Server): () => number {
  let arrived = 0;
  server.on('request', () => arrived++);
  return () => arrived;
}

/**
 * Writes `chunk`, waits until the request has reached the server (a client process takes a while to
 * start), then writes `chunk` every `everyMs` for `forMs` and ends the body.
 */
function trickle(arrivals: () => number, chunk: string, everyMs: number, forMs: number): (stdin: NodeJS.WritableStream) => Promise<void> {
  return async (stdin) => {
    const before = arrivals();
    stdin.write(chunk);
    await eventually(async () => arrivals() > before, 'the request to reach the service', 10_000);
    const until = Date.now() + forMs;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, everyMs));
      stdin.write(chunk);
    }
    stdin.end();
  };
}

describe('every failure is readable by every common client (pg)', () => {
  let t: TestService;
  let desk: DeskSetup;
  let handoverId: string;
  let arrivals: () => number;
  beforeAll(async () => {
    t = await startTestService('pg', { 'http.requestTimeoutMs': 1_000, 'http.uploads.windowMs': 400, 'admission.handlerTimeoutMs': 1_500 });
    arrivals = countArrivals(t.service.app.server);
    desk = await setUpDesk(t);
    handoverId = (await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } })).body.id;
  });
  afterAll(async () => t?.close());

  it("the 5 MB message gets a readable 413 with its code from each client (from Node's fetch, three times over)", async () => {
    const request: ClientRequest = { method: 'POST', url: `${t.url}/v1/handovers/${handoverId}/messages`, headers: json(desk.apiKey), bodyFile: fiveMegabytes };
    expectEveryAnswer(await eachClient(() => request), { status: 413, code: 'body_too_large', connection: 'close' });
    // Before, fetch failed most times with `TypeError: fetch failed` (EPIPE): the connection was reset
    // while the body was still being sent.
    for (let round = 0; round < 2; round++) {
      const run = nodeFetch.start(request);
      run.stdin.end();
      expect(await run.answer).toMatchObject({ error: null, status: 413, code: 'body_too_large' });
    }
  });

  it('after the answer, the rest of a refused body is read only within bounds: a client that goes quiet is closed', async () => {
    // Half-open, as a client still sending is: the service's end of the connection does not end this one.
    const { hostname, port } = new URL(t.url);
    // The service's side of this connection, to see when the service lets it go.
    const accepted = new Promise<Socket>((resolve) => t.service.app.server.once('connection', resolve));
    const socket = connect({ host: hostname, port: Number(port), allowHalfOpen: true });
    const serverSide = await accepted;
    let letGoAt: number | undefined;
    serverSide.once('close', () => (letGoAt = Date.now()));
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    socket.on('error', () => {});
    try {
      socket.write(
        `POST /v1/handovers/${handoverId}/messages HTTP/1.1\r\nhost: ${hostname}\r\nauthorization: Bearer ${desk.apiKey}\r\ncontent-type: application/json\r\ncontent-length: ${5 * 1024 * 1024}\r\n\r\n`,
      );
      socket.write('x'.repeat(100 * 1024));
      await eventually(async () => received.includes('body_too_large'), 'the answer', 5_000);
      expect(received).toMatch(/^HTTP\/1\.1 413 /);
      // Answered, and still read: more of the body does not make the connection fail.
      socket.write('x'.repeat(100 * 1024));
      const quietSince = Date.now();
      await new Promise((r) => setTimeout(r, 300));
      expect(letGoAt).toBeUndefined();
      // Then nothing more for the idle bound (2 s): the service lets the connection go.
      await eventually(async () => letGoAt !== undefined, 'the service to let the connection go', 5_000);
      expect(letGoAt! - quietSince).toBeGreaterThan(1_500);
    } finally {
      socket.destroy();
    }
  });

  it('a chunked body found too large while it arrives: 413 body_too_large', async () => {
    const answers = await eachClient(
      () => ({ method: 'POST', url: `${t.url}/v1/handovers/${handoverId}/messages`, headers: json(desk.apiKey), streamed: true }),
      async (stdin) => {
        stdin.write('{"id":"chunked-1","text":"');
        for (let i = 0; i < 20; i++) stdin.write('x'.repeat(64 * 1024));
        stdin.end('"}');
      },
    );
    expectEveryAnswer(answers, { status: 413, code: 'body_too_large', connection: 'close' });
  });

  it('a request that does not arrive whole within HANDOVER_REQUEST_TIMEOUT_MS: 408 request_timeout', async () => {
    // 20 KB/s is above the minimum upload rate; the whole body takes longer than the 1 s allowed.
    const answers = await eachClient(
      () => ({ method: 'POST', url: `${t.url}/v1/handovers/${handoverId}/messages`, headers: json(desk.apiKey), streamed: true }),
      trickle(arrivals, 'x'.repeat(4 * 1024), 200, 1_800),
    );
    expectEveryAnswer(answers, { status: 408, code: 'request_timeout', connection: 'close' });
  });

  it('a body slower than the minimum upload rate: 408 upload_too_slow', async () => {
    const answers = await eachClient(
      () => ({ method: 'POST', url: `${t.url}/v1/handovers/${handoverId}/messages`, headers: json(desk.apiKey), streamed: true }),
      trickle(arrivals, 'x', 100, 1_000),
    );
    expectEveryAnswer(answers, { status: 408, code: 'upload_too_slow', connection: 'close' });
  });

  it('a handler past its deadline: 503 deadline_exceeded with Retry-After', async () => {
    const lock = await holdHandover(t, handoverId);
    try {
      const answers = await eachClient(() => ({
        method: 'POST',
        url: `${t.url}/v1/handovers/${handoverId}/messages`,
        headers: json(desk.apiKey),
        bodyFile: small,
      }));
      expectEveryAnswer(answers, { status: 503, code: 'deadline_exceeded', retryAfter: '1' });
    } finally {
      await lock.release();
    }
  });
});

describe('refused under overload before anything is read (pg)', () => {
  let t: TestService;
  // Any real heap is above 0.01% of its limit: every API request is refused before routing.
  beforeAll(async () => (t = await startTestService('pg', { 'admission.heapUsedLimitRatio': 0.0001 })));
  afterAll(async () => t?.close());

  it('503 overloaded_memory with Retry-After and Connection: close, whatever body is on its way', async () => {
    for (const bodyFile of [small, fiveMegabytes]) {
      const answers = await eachClient(() => ({ method: 'POST', url: `${t.url}/v1/handovers/ho_x/messages`, headers: json('handover_sk_x'), bodyFile }));
      expectEveryAnswer(answers, { status: 503, code: 'overloaded_memory', retryAfter: '1', connection: 'close' });
    }
  });
});

describe('shutting down while bodies arrive (pg)', () => {
  it('each client, half way through its body when the instance starts shutting down, reads 503 shutting_down; readiness fails with it', async () => {
    const t = await startTestService('pg');
    let closing: Promise<void> | undefined;
    try {
      const desk = await setUpDesk(t);
      const handoverId = (await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } })).body
        .id as string;
      const arrivals = countArrivals(t.service.app.server);
      const runs = httpClients.map((client) => {
        const run = client.start({ method: 'POST', url: `${t.url}/v1/handovers/${handoverId}/messages`, headers: json(desk.apiKey), streamed: true });
        run.stdin.write('{"id":"during-shutdown","text":"');
        return run;
      });
      await eventually(async () => arrivals() >= runs.length, 'every request to reach the instance', 10_000);
      // Shutting down starts as stop() does, by refusing new work; readiness says so at once.
      t.service.app.admission.drain();
      const ready = await t.api('GET', '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body.error.code).toBe('shutting_down');
      closing = t.close();
      await eventually(async () => !t.service.app.server.listening, 'the instance to stop listening', 5_000);
      for (const run of runs) run.stdin.end('the rest"}');
      const answers = new Map(await Promise.all(runs.map(async (run, i) => [httpClients[i]!.name, await run.answer] as const)));
      expectEveryAnswer(answers, { status: 503, code: 'shutting_down', connection: 'close' });
    } finally {
      await (closing ?? t.close());
    }
  });
});
