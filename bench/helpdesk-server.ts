/**
 * A helpdesk speaking the generic webhook protocol (one event per call, or batch mode), for benchmarks: it verifies signatures, answers
 * after a configurable delay per path (`/fast`, `/slow`), and counts what it received per message id
 * so a run can check that nothing accepted was lost. GET /stats returns the counts and when the first and
 * the last distinct message arrived; POST /missing with a JSON array of message ids answers how many of
 * them never arrived (on any path).
 */
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 0);
const secret = process.argv[3] ?? '';
const slowMs = Number(process.argv[4] ?? 5000);
const key = secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret);

// Per path (`/fast`, `/slow`): message id → times received, and delivery latencies.
const byPath = new Map<string, { received: Map<string, number>; latencies: number[]; firstAt: number | null; lastAt: number | null }>();
let badSignatures = 0;
const stats = (path: string) => {
  let entry = byPath.get(path);
  if (!entry) byPath.set(path, (entry = { received: new Map(), latencies: [], firstAt: null, lastAt: null }));
  return entry;
};

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url?.startsWith('/stats')) {
    const { received, latencies, firstAt, lastAt } = stats(new URL(req.url, 'http://x').searchParams.get('path') ?? '/fast');
    const total = [...received.values()].reduce((a, b) => a + b, 0);
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        unique: received.size,
        duplicates: total - received.size,
        badSignatures,
        firstAt,
        lastAt,
        deliveryLatencies: [...latencies].sort((a, b) => a - b),
      }),
    );
    return;
  }
  if (req.method === 'POST' && req.url === '/missing') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const ids = JSON.parse(Buffer.concat(chunks).toString()) as string[];
      const missing = ids.filter((id) => ![...byPath.values()].some((entry) => entry.received.has(id))).length;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ missing }));
    });
    return;
  }
  if (req.method === 'POST' && req.url === '/reset') {
    byPath.clear();
    res.writeHead(204).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString();
    const id = req.headers['webhook-id'] as string;
    const ts = req.headers['webhook-timestamp'] as string;
    const expected = 'v1,' + createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
    if (req.headers['webhook-signature'] !== expected) {
      badSignatures++;
      res.writeHead(401).end();
      return;
    }
    type Event = { id?: string; type: string; data: { message?: { id: string; createdAt: string } } };
    // One event per call, or, in batch mode, {"type":"batch","events":[…]} answered with a result per event.
    const parsed = JSON.parse(body) as Event | { type: 'batch'; events: Event[] };
    const batch = parsed.type === 'batch' ? (parsed as { events: Event[] }).events : undefined;
    const answer = () => {
      for (const event of batch ?? [parsed as Event]) {
        if (event.type !== 'message.created' || !event.data.message) continue;
        const entry = stats(req.url?.startsWith('/slow') ? '/slow' : '/fast');
        const { received, latencies } = entry;
        const messageId = event.data.message.id;
        if (!received.has(messageId)) {
          const now = Date.now();
          latencies.push(now - Date.parse(event.data.message.createdAt));
          entry.firstAt ??= now;
          entry.lastAt = now;
        }
        received.set(messageId, (received.get(messageId) ?? 0) + 1);
      }
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(batch ? JSON.stringify({ results: batch.map((e) => ({ id: e.id, status: 'ok' })) }) : '{}');
    };
    if (req.url?.startsWith('/slow')) setTimeout(answer, slowMs);
    else answer();
  });
});
server.keepAliveTimeout = 75_000;
server.listen(port, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  process.stdout.write(JSON.stringify({ port: address.port }) + '\n');
});
