/**
 * The physical limit on this machine: a minimal node:http forwarder with no durability, no ordering and
 * no auth. It takes a POST and forwards it to the helpdesk over keep-alive, answering once the helpdesk
 * answered. Whatever the service does beyond this costs throughput; the benchmark reports the ratio.
 *
 * With a limit (the fifth argument, above 0), it is also the physical limit of overload handling: at most
 * that many requests in flight, and every request beyond them answered `503` at once, from the request
 * event, without reading its body (Node discards it and keeps the connection) — no queue, no adaptive
 * limit, no metrics. What goodput it keeps offered three times its capacity is what the cores left over by
 * the load generator and the refusals allow; the service cannot do better than that on the same machine.
 */
import { createHmac } from 'node:crypto';
import { Agent, createServer, request } from 'node:http';

const port = Number(process.argv[2] ?? 0);
const target = new URL(process.argv[3] ?? 'http://127.0.0.1:1/fast');
const secret = process.argv[4] ?? '';
const key = secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret);
const limit = Number(process.argv[5] ?? 0);
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const REFUSAL = '{"error":{"code":"overloaded","message":"Too many requests in flight."}}';
let n = 0;
let inflight = 0;

const server = createServer((req, res) => {
  if (limit > 0) {
    if (inflight >= limit) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end(REFUSAL);
      return;
    }
    inflight++;
    res.once('close', () => inflight--);
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const incoming = JSON.parse(Buffer.concat(chunks).toString()) as { id: string; text: string };
    const body = JSON.stringify({
      id: `evt_${++n}`,
      type: 'message.created',
      data: { message: { id: incoming.id, text: incoming.text, createdAt: new Date().toISOString() } },
    });
    const ts = Math.floor(Date.now() / 1000);
    const signature = 'v1,' + createHmac('sha256', key).update(`evt_${n}.${ts}.${body}`).digest('base64');
    const out = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'webhook-id': `evt_${n}`, 'webhook-timestamp': String(ts), 'webhook-signature': signature },
      },
      (answer) => {
        answer.resume();
        answer.on('end', () => res.writeHead(answer.statusCode === 200 ? 202 : 502, { 'content-type': 'application/json' }).end('{}'));
      },
    );
    out.on('error', () => res.writeHead(502).end());
    out.end(body);
  });
});
server.keepAliveTimeout = 75_000;
server.listen(port, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: (server.address() as { port: number }).port }) + '\n'));
