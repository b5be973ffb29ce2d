import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { Agent } from 'undici';
import { afterEach, beforeAll, afterAll, describe, expect, it, vi } from 'vitest';
import { requestJson } from '../../src/connectors/http-json.js';
import { SalesforceApi } from '../../src/connectors/salesforce/salesforce-api.js';
import {
  createOutboundAgent,
  createStreamAgent,
  DeliveryError,
  openStream,
  parseJson,
  postSignedJson,
  send,
  STATUS_POLICIES,
  verify,
  type StatusPolicy,
} from '../../src/outbound/index.js';
import { startReceiver, type Receiver } from './receiver.js';

const OPEN = { allowPrivate: true, allowHttp: true };
const SECRET = 'whsec_' + Buffer.from('outbound-client-test-secret-32by').toString('base64');
const deadline = () => AbortSignal.timeout(10_000);

/** The error `promise` rejects with (failing the test when it resolves). */
async function failure(promise: Promise<unknown>): Promise<DeliveryError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeliveryError);
  return err as DeliveryError;
}

describe('send: the one outbound client', () => {
  let agent: Agent;
  let receiver: Receiver | undefined;
  beforeAll(() => {
    agent = createOutboundAgent(5000, OPEN);
  });
  afterAll(async () => {
    await agent.close();
  });
  afterEach(async () => {
    await receiver?.close();
    receiver = undefined;
  });

  describe('the status policy table', () => {
    const { signedWebhook, vendorApi, salesforce } = STATUS_POLICIES;
    // status, then retried? under: signed webhook, vendor API, Salesforce
    const table: Array<[number, boolean, boolean, boolean]> = [
      [400, false, false, false],
      [401, true, false, true],
      [403, true, false, false],
      [404, false, false, false],
      [405, false, false, false],
      [307, true, true, true],
      [408, true, true, true],
      [409, true, true, true],
      [410, false, false, false],
      [413, false, false, false],
      [422, false, false, false],
      [429, true, true, true],
      [500, true, true, true],
      [502, true, true, true],
      [503, true, true, true],
      [504, true, true, true],
    ];
    const cases = table.flatMap(([status, ...retried]) =>
      ([signedWebhook, vendorApi, salesforce] as StatusPolicy[]).map((policy, i) => [status, policy.name, policy, retried[i]!] as const),
    );

    it.each(cases)('%i under the %s policy: retried %#', async (status, _name, policy, retried) => {
      receiver = await startReceiver((_req, res) => {
        res.statusCode = status;
        res.end('{"error":"nope"}');
      });
      const err = await failure(send(agent, { method: 'POST', url: `${receiver.url}/x`, signal: deadline(), policy, maxBytes: 1024, json: {} }));
      expect(err.statusCode).toBe(status);
      expect(err.retryable).toBe(retried);
      expect(err.message).toMatch(new RegExp(`answered ${status} \\(`));
    });

    it('resolves on 2xx and on a status the call accepts, with the body', async () => {
      receiver = await startReceiver((req, res) => {
        res.statusCode = req.url === '/exists' ? 409 : 201;
        res.end(req.url === '/exists' ? '{"error":"conflict"}' : '{"id":7}');
      });
      const created = await send(agent, {
        method: 'POST',
        url: `${receiver.url}/new`,
        signal: deadline(),
        policy: STATUS_POLICIES.vendorApi,
        maxBytes: 1024,
        json: { a: 1 },
      });
      expect(created.status).toBe(201);
      expect(parseJson(created.text)).toEqual({ id: 7 });
      const exists = await send(agent, {
        method: 'POST',
        url: `${receiver.url}/exists`,
        signal: deadline(),
        policy: STATUS_POLICIES.vendorApi,
        maxBytes: 1024,
        json: {},
        accept: [409],
      });
      expect(exists.status).toBe(409);
    });
  });

  describe('Retry-After', () => {
    it('is parsed from seconds and from an HTTP date, and travels with the error', async () => {
      const inTwoMinutes = new Date(Date.now() + 120_000).toUTCString();
      receiver = await startReceiver((req, res) => {
        res.statusCode = req.url === '/date' ? 503 : 429;
        res.setHeader('retry-after', req.url === '/date' ? inTwoMinutes : '7');
        res.end();
      });
      const seconds = await failure(
        send(agent, { method: 'POST', url: `${receiver.url}/seconds`, signal: deadline(), policy: STATUS_POLICIES.signedWebhook, maxBytes: 1024, json: {} }),
      );
      expect(seconds.retryable).toBe(true);
      expect(seconds.retryAfterMs).toBe(7000);
      const dated = await failure(
        send(agent, { method: 'POST', url: `${receiver.url}/date`, signal: deadline(), policy: STATUS_POLICIES.signedWebhook, maxBytes: 1024, json: {} }),
      );
      expect(dated.retryAfterMs).toBeGreaterThan(60_000);
      expect(dated.retryAfterMs).toBeLessThanOrEqual(120_000);
    });

    it("a 429 without it waits for its rate-limit window's reset (X-RateLimit-Reset, as Intercom sends it); another status does not", async () => {
      const resetAt = Math.floor(Date.now() / 1000) + 30;
      receiver = await startReceiver((req, res) => {
        res.statusCode = req.url === '/limited' ? 429 : 503;
        // Intercom sends its window's headers on every answer.
        res.setHeader('x-ratelimit-reset', String(resetAt));
        res.end();
      });
      const limited = await failure(
        send(agent, { method: 'POST', url: `${receiver.url}/limited`, signal: deadline(), policy: STATUS_POLICIES.signedWebhook, maxBytes: 1024, json: {} }),
      );
      expect(limited.retryAfterMs).toBeGreaterThan(25_000);
      expect(limited.retryAfterMs).toBeLessThanOrEqual(30_000);
      const unavailable = await failure(
        send(agent, { method: 'POST', url: `${receiver.url}/down`, signal: deadline(), policy: STATUS_POLICIES.signedWebhook, maxBytes: 1024, json: {} }),
      );
      expect(unavailable.retryAfterMs).toBeUndefined();
    });

    it('an unreadable Retry-After is left out rather than guessed', async () => {
      receiver = await startReceiver((_req, res) => {
        res.statusCode = 503;
        res.setHeader('retry-after', 'soon');
        res.end();
      });
      const err = await failure(send(agent, { method: 'GET', url: receiver.url, signal: deadline(), policy: STATUS_POLICIES.signedWebhook, maxBytes: 1024 }));
      expect(err.retryAfterMs).toBeUndefined();
    });

    it('the Salesforce client honours it too, under its own policy (401 renewed and retried, 403 final)', async () => {
      receiver = await startReceiver((req, res) => {
        res.statusCode = req.url!.includes('/message') ? 429 : req.url!.includes('/entry') ? 403 : 401;
        if (res.statusCode === 429) res.setHeader('retry-after', '3');
        res.end();
      });
      const api = new SalesforceApi({ baseUrl: receiver.url, orgId: '00D000000000001AAA', esDeveloperName: 'Web_Chat' }, agent, () => agent);
      const limited = await failure(api.sendMessage('token', 'c0ffee00-0000-4000-8000-000000000001', 'm-1', 'hello', deadline()));
      expect(limited).toMatchObject({ statusCode: 429, retryable: true, retryAfterMs: 3000 });
      expect(limited.message).toMatch(/^POST \/iamessage\/api\/v2\/conversation\/[^ ]+\/message on Salesforce answered 429/);
      expect(await failure(api.sendTyping('token', 'c0ffee00-0000-4000-8000-000000000001', 'e-1', true, deadline()))).toMatchObject({
        statusCode: 403,
        retryable: false,
      });
      expect(await failure(api.endConversation('token', 'c0ffee00-0000-4000-8000-000000000001', deadline()))).toMatchObject({
        statusCode: 401,
        retryable: true,
      });
      expect(receiver.received[0]!.headers.authorization).toBe('Bearer token');
    });
  });

  describe('streams', () => {
    it('openStream hands over any status with its Retry-After and the body unread; its pool is guarded too', async () => {
      receiver = await startReceiver((req, res) => {
        if (req.url === '/busy') {
          res.statusCode = 503;
          res.setHeader('retry-after', '12');
          res.end();
          return;
        }
        res.setHeader('content-type', 'text/event-stream');
        res.end('id: 1\ndata: {}\n\n');
      });
      const streams = createStreamAgent({ allowPrivate: true, allowHttp: true });
      const guarded = createStreamAgent({ allowPrivate: false, allowHttp: true });
      try {
        const busy = await openStream(streams, { url: `${receiver.url}/busy`, signal: deadline(), headersTimeoutMs: 5000, idleTimeoutMs: 5000 });
        expect(busy).toMatchObject({ status: 503, retryAfterMs: 12_000 });
        busy.body.destroy();
        const opened = await openStream(streams, {
          url: `${receiver.url}/sse`,
          signal: deadline(),
          headersTimeoutMs: 5000,
          idleTimeoutMs: 5000,
          headers: { 'last-event-id': '0' },
        });
        expect(opened.status).toBe(200);
        expect(await opened.body.text()).toBe('id: 1\ndata: {}\n\n');
        expect(receiver.received.at(-1)!.headers).toMatchObject({ accept: 'text/event-stream', 'last-event-id': '0' });
        const refused = await failure(openStream(guarded, { url: `${receiver.url}/sse`, signal: deadline(), headersTimeoutMs: 5000, idleTimeoutMs: 5000 }));
        expect(refused.retryable).toBe(false);
      } finally {
        await streams.close();
        await guarded.close();
      }
    });
  });

  describe('the answer is read only as far as the bound', () => {
    it('an answer that never ends is cut at maxBytes, and the call returns', async () => {
      receiver = await startReceiver((_req, res) => {
        const chunk = Buffer.alloc(4096, 'x');
        let open = true;
        res.on('close', () => (open = false));
        const pump = () => {
          while (open && res.write(chunk));
          if (open) res.once('drain', pump);
        };
        pump();
      });
      const answer = await send(agent, { method: 'GET', url: receiver.url, signal: deadline(), policy: STATUS_POLICIES.vendorApi, maxBytes: 10_000 });
      expect(answer.status).toBe(200);
      expect(answer.text).toBe('x'.repeat(10_000));
    });

    it('a refusal quotes at most the bound', async () => {
      receiver = await startReceiver((_req, res) => {
        res.statusCode = 500;
        res.end('y'.repeat(50_000));
      });
      const err = await failure(requestJson(agent, { method: 'GET', url: `${receiver.url}/v2/things`, headers: {}, signal: deadline() }));
      expect(err.message).toMatch(/^GET \/v2\/things on 127\.0\.0\.1:\d+ answered 500 \(50000 bytes\)$/);
      expect(err.answerQuote!.length).toBeLessThanOrEqual(200);
    });
  });

  describe('the SSRF guard is inside', () => {
    it('refuses loopback, by address and by name, before any byte is sent, as a final failure', async () => {
      receiver = await startReceiver();
      const guarded = createOutboundAgent(5000, { allowPrivate: false, allowHttp: true });
      try {
        for (const url of [receiver.url, receiver.url.replace('127.0.0.1', 'localhost')]) {
          const err = await failure(postSignedJson(guarded, `${url}/hook`, SECRET, 'evt_1', { type: 'x' }, deadline()));
          expect(err.retryable).toBe(false);
          expect(err.message).toMatch(/may not be called/);
        }
      } finally {
        await guarded.close();
      }
      expect(receiver.connections).toBe(0);
    });
  });

  describe('connections and bytes on the wire', () => {
    it('signs the exact bytes sent with Standard Webhooks headers', async () => {
      receiver = await startReceiver((_req, res) => res.end());
      await postSignedJson(agent, `${receiver.url}/hook`, SECRET, 'evt_signed', { type: 'message.created', text: 'é ✓' }, deadline());
      const body = '{"type":"batch","events":[]}';
      await send(agent, {
        method: 'POST',
        url: `${receiver.url}/batch`,
        signal: deadline(),
        policy: STATUS_POLICIES.signedWebhook,
        maxBytes: 1024,
        body,
        secret: SECRET,
        webhookId: 'batch_1',
      });
      const [event, batch] = receiver.received;
      expect(JSON.parse(event!.body)).toEqual({ type: 'message.created', text: 'é ✓' });
      expect(event!.headers['content-type']).toBe('application/json');
      for (const r of [event!, batch!]) {
        const verdict = verify(
          SECRET,
          { id: r.headers['webhook-id'] as string, timestamp: r.headers['webhook-timestamp'] as string, signature: r.headers['webhook-signature'] as string },
          r.body,
        );
        expect(verdict.ok).toBe(true);
      }
      expect(batch!.body).toBe(body);
      expect(batch!.headers['webhook-id']).toBe('batch_1');
    });

    it('keeps connections alive between calls', async () => {
      receiver = await startReceiver((_req, res) => res.end('{}'));
      for (let i = 0; i < 6; i++) await postSignedJson(agent, `${receiver.url}/hook`, SECRET, `evt_${i}`, { i }, deadline());
      expect(receiver.received).toHaveLength(6);
      // The pool may open a second connection while the first is being released; never one per call.
      expect(receiver.connections).toBeLessThanOrEqual(2);
    });

    it('writes a request, head and body, in one write', async () => {
      const chunks: number[] = [];
      const server: TcpServer = createTcpServer((socket) => {
        let seen = '';
        socket.on('data', (data: Buffer) => {
          chunks.push(data.length);
          seen += data.toString('latin1');
          const headEnd = seen.indexOf('\r\n\r\n');
          const length = Number(/content-length: (\d+)/i.exec(seen)?.[1] ?? 0);
          if (headEnd >= 0 && seen.length >= headEnd + 4 + length) socket.end('HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n');
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = server.address() as AddressInfo;
        await postSignedJson(agent, `http://127.0.0.1:${port}/hook`, SECRET, 'evt_one_write', { type: 'message.created', text: 'x'.repeat(2000) }, deadline());
        expect(chunks).toHaveLength(1);
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    });
  });

  describe('every wait is bounded', () => {
    it('a receiver that never answers fails the call at the deadline, as retryable', async () => {
      receiver = await startReceiver(() => {});
      const err = await failure(
        send(agent, {
          method: 'POST',
          url: `${receiver.url}/hook`,
          signal: AbortSignal.timeout(200),
          policy: STATUS_POLICIES.signedWebhook,
          maxBytes: 1024,
          json: {},
        }),
      );
      expect(err.retryable).toBe(true);
      expect(err.message).toMatch(/^request to 127\.0\.0\.1:\d+ failed: deadline exceeded$/);
    });

    it('an answer whose body stops coming fails at the deadline, as retryable, named like a call that got no answer', async () => {
      receiver = await startReceiver((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"partial":');
      });
      const err = await failure(
        send(agent, {
          method: 'GET',
          url: `${receiver.url}/slow`,
          signal: AbortSignal.timeout(300),
          policy: STATUS_POLICIES.vendorApi,
          maxBytes: 1024,
          describe: 'GET /slow on the receiver',
        }),
      );
      expect(err.retryable).toBe(true);
      expect(err.message).toBe('GET /slow on the receiver failed: deadline exceeded');
    });

    it('a call waiting for a connection fails at its own deadline, not when a connection frees up', async () => {
      receiver = await startReceiver(() => {});
      const onePerOrigin = new Agent({ connections: 1 });
      const holding = new AbortController();
      try {
        const call = (signal: AbortSignal) =>
          send(onePerOrigin, { method: 'POST', url: `${receiver!.url}/hook`, signal, policy: STATUS_POLICIES.signedWebhook, maxBytes: 1024, json: {} });
        // Holds the only connection: the receiver never answers.
        const first = call(holding.signal).catch((e: unknown) => e);
        await vi.waitFor(() => expect(receiver!.received).toHaveLength(1));
        const err = await failure(call(AbortSignal.timeout(100)));
        expect(err.message).toMatch(/failed: deadline exceeded$/);
        // The first call still holds the connection: the second was answered while it waited.
        expect(receiver.received).toHaveLength(1);
        holding.abort(new DOMException('test over', 'TimeoutError'));
        expect(await first).toBeInstanceOf(DeliveryError);
      } finally {
        holding.abort();
        await onePerOrigin.destroy();
      }
    });

    it('a call whose deadline already passed sends nothing', async () => {
      receiver = await startReceiver();
      const signal = AbortSignal.abort(new DOMException('over', 'TimeoutError'));
      const err = await failure(
        send(agent, { method: 'POST', url: `${receiver.url}/hook`, signal, policy: STATUS_POLICIES.signedWebhook, maxBytes: 1024, json: {} }),
      );
      expect(err.message).toMatch(/failed: deadline exceeded$/);
      expect(receiver.received).toHaveLength(0);
      expect(receiver.connections).toBe(0);
    });

    it('a body that does not serialise rejects the call, as an async function would, and sends nothing', async () => {
      receiver = await startReceiver();
      let promise: Promise<unknown> | undefined;
      expect(() => {
        promise = send(agent, {
          method: 'POST',
          url: `${receiver!.url}/hook`,
          signal: deadline(),
          policy: STATUS_POLICIES.vendorApi,
          maxBytes: 1024,
          json: { n: 1n },
        });
      }).not.toThrow();
      await expect(promise).rejects.toThrow(/BigInt/);
      expect(receiver.received).toHaveLength(0);
    });

    it('a URL that is not one fails as final, without a call', async () => {
      const err = await failure(send(agent, { method: 'GET', url: 'not a url', signal: deadline(), policy: STATUS_POLICIES.vendorApi, maxBytes: 1024 }));
      expect(err.retryable).toBe(false);
      expect(err.message).toBe('request failed: the URL is not valid');
    });

    it('a destination that refuses connections is retried, naming the network error', async () => {
      receiver = await startReceiver();
      const url = receiver.url;
      await receiver.close();
      receiver = undefined;
      const err = await failure(send(agent, { method: 'GET', url, signal: deadline(), policy: STATUS_POLICIES.vendorApi, maxBytes: 1024 }));
      expect(err.retryable).toBe(true);
      expect(err.message).toMatch(/ECONNREFUSED/);
    });
  });
});

describe('parseJson: the one reader of JSON from outside', () => {
  it.each([
    ['{"a":1}', { a: 1 }],
    ['[1,2]', [1, 2]],
    ['null', null],
    ['', undefined],
    ['<html>', undefined],
    ['{"a":', undefined],
  ])('%j', (text, expected) => {
    expect(parseJson(text)).toEqual(expected);
  });
});
