import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenOnLoopback } from '../support/ports.js';

/**
 * A local HTTP server that receives Standard Webhooks deliveries and checks them the way the spec tells
 * a receiver to (written from the spec, not from the service's signer, so a signing bug cannot agree
 * with itself). It plays the bot's webhook endpoint and the generic helpdesk's event endpoint.
 */
export interface ReceivedWebhook {
  webhookId: string;
  body: Record<string, unknown>;
  receivedAt: number;
  /** The request's headers (a `traceparent` among them when tracing is on). */
  headers: IncomingMessage['headers'];
}

export interface SignedWebhookServer {
  url: string;
  received: ReceivedWebhook[];
  /** Deliveries whose signature did not verify (must stay empty). */
  rejected: Array<{ reason: string; headers: IncomingMessage['headers'] }>;
  /** Decide the answer per delivery: status code, optional delay, headers and body (default `{}`). Default 200 at once. */
  respond: (body: Record<string, unknown>, attempt: number) => { status: number; delayMs?: number; headers?: Record<string, string>; body?: string };
  /** The answer to a signed GET (the generic protocol's availability URL); null answers 404. */
  answerGet: (path: string) => { status: number; body: unknown } | null;
  /**
   * For receivers that take several events per call (the generic protocol's batch mode): given a verified
   * body that `respond` answered 2xx, the events taken (recorded in `received` one by one) and the
   * answer's body, unless `respond` chose a body of its own (then none is recorded); `refuse`: the call
   * is malformed (400, recorded in `rejected`); null: the body is one event, as without this hook.
   */
  unpack?: (body: Record<string, unknown>, webhookId: string) => { taken: Array<Record<string, unknown>>; answer: string } | { refuse: string } | null;
  /** TCP connections accepted so far (a keep-alive client reuses them). */
  connections: number;
  /** Reads from the sockets so far, and requests parsed: one read per request when each is written at once. */
  socketReads: number;
  requests: number;
  /** Resolves when `predicate` holds over everything received so far (polls; bounded by timeoutMs). */
  waitFor(predicate: (received: ReceivedWebhook[]) => boolean, timeoutMs?: number, what?: string): Promise<void>;
  close(): Promise<void>;
}

export function keyOf(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret, 'utf8');
}

export function verifyStandardWebhook(secret: string, headers: IncomingMessage['headers'], body: string): string | null {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') return 'missing headers';
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return 'timestamp outside tolerance';
  const expected = createHmac('sha256', keyOf(secret)).update(`${id}.${timestamp}.${body}`).digest();
  const ok = signatures.split(' ').some((s) => {
    const [v, b64] = s.split(',');
    if (v !== 'v1' || !b64) return false;
    const given = Buffer.from(b64, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  return ok ? null : 'signature mismatch';
}

export async function startSignedWebhookServer(secret: () => string): Promise<SignedWebhookServer> {
  const attempts = new Map<string, number>();
  const state: SignedWebhookServer = {
    url: '',
    received: [],
    rejected: [],
    respond: () => ({ status: 200 }),
    answerGet: () => null,
    connections: 0,
    socketReads: 0,
    requests: 0,
    async waitFor(predicate, timeoutMs = 20_000, what = 'webhooks') {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(state.received)) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received ${state.received.length}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: async () => {},
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    state.requests++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const problem = verifyStandardWebhook(secret(), req.headers, raw);
      if (problem) {
        state.rejected.push({ reason: problem, headers: req.headers });
        res.writeHead(401).end(problem);
        return;
      }
      if (req.method === 'GET') {
        const answer = state.answerGet(req.url ?? '/') ?? { status: 404, body: {} };
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
        return;
      }
      const body = JSON.parse(raw) as Record<string, unknown>;
      const webhookId = req.headers['webhook-id'] as string;
      const attempt = (attempts.get(webhookId) ?? 0) + 1;
      attempts.set(webhookId, attempt);
      const answer = state.respond(body, attempt);
      const finish = () => {
        const ok = answer.status >= 200 && answer.status < 300;
        const unpacked = ok ? (state.unpack?.(body, webhookId) ?? null) : null;
        if (unpacked && 'refuse' in unpacked) {
          state.rejected.push({ reason: unpacked.refuse, headers: req.headers });
          res.writeHead(400).end(unpacked.refuse);
          return;
        }
        // Several events per call, answered with a body `respond` chose: nothing is known to be taken.
        const taken = !ok ? [] : !unpacked ? [body] : answer.body === undefined ? unpacked.taken : [];
        for (const event of taken) state.received.push({ webhookId, body: event, receivedAt: Date.now(), headers: req.headers });
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers }).end(answer.body ?? unpacked?.answer ?? '{}');
      };
      if (answer.delayMs) setTimeout(finish, answer.delayMs);
      else finish();
    });
  });
  server.on('connection', (socket) => {
    state.connections++;
    socket.on('data', () => state.socketReads++);
  });
  const listening = await listenOnLoopback(server);
  state.url = listening.url;
  state.close = listening.close;
  return state;
}
