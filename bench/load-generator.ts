/**
 * Open-loop load generator, run as its own process so it does not share an event loop with what it
 * measures. Requests are sent on a fixed schedule whatever the answers; latency is counted from the
 * moment a request was due, not when it went out, so a slow server cannot hide its backlog
 * (coordinated omission).
 *
 * Input: one JSON argument (GeneratorSpec). Output: one JSON line (GeneratorResult) on stdout.
 */
import { Agent, request } from 'undici';

export interface GeneratorSpec {
  baseUrl: string;
  /** Paths, used round-robin; `{i}` in the body is replaced by the request number. */
  paths: string[];
  body: string;
  headers: Record<string, string>;
  ratePerSecond: number;
  durationMs: number;
  connections: number;
  /** Requests still unanswered this long after the schedule ended are counted as timed out. */
  drainMs: number;
  idPrefix: string;
}

export interface GeneratorResult {
  sent: number;
  statuses: Record<string, number>;
  codes: Record<string, number>;
  /** Latencies (ms) of 2xx answers and of refusals (non-2xx), each sorted. */
  okLatencies: number[];
  rejectLatencies: number[];
  /** Client ids of the messages the server accepted (2xx). */
  acceptedIds: string[];
  timedOut: number;
  elapsedMs: number;
  /** How late the generator itself sent requests (ms, p99): its own CPU starvation, not the server's. */
  sendLagP99Ms: number;
}

async function run(spec: GeneratorSpec): Promise<GeneratorResult> {
  const dispatcher = new Agent({ connections: spec.connections, headersTimeout: spec.durationMs + spec.drainMs, bodyTimeout: spec.durationMs + spec.drainMs, keepAliveTimeout: 30_000 });
  const result: GeneratorResult = { sent: 0, statuses: {}, codes: {}, okLatencies: [], rejectLatencies: [], acceptedIds: [], timedOut: 0, elapsedMs: 0, sendLagP99Ms: 0 };
  const sendLags: number[] = [];
  const total = Math.round((spec.ratePerSecond * spec.durationMs) / 1000);
  const interval = 1000 / spec.ratePerSecond;
  const start = performance.now();
  const pending = new Set<Promise<void>>();
  const abort = new AbortController();

  const fire = (i: number, dueAt: number) => {
    sendLags.push(performance.now() - dueAt);
    const id = `${spec.idPrefix}-${i}`;
    const body = spec.body.replaceAll('{i}', String(i)).replaceAll('{id}', id);
    const p = request(spec.baseUrl + spec.paths[i % spec.paths.length]!, { method: 'POST', headers: spec.headers, body, dispatcher, signal: abort.signal })
      .then(async (res) => {
        const text = await res.body.text();
        const latency = performance.now() - dueAt;
        result.statuses[res.statusCode] = (result.statuses[res.statusCode] ?? 0) + 1;
        if (res.statusCode >= 200 && res.statusCode < 300) {
          result.okLatencies.push(latency);
          result.acceptedIds.push(id);
        } else {
          result.rejectLatencies.push(latency);
          try {
            const code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? `http_${res.statusCode}`;
            result.codes[code] = (result.codes[code] ?? 0) + 1;
          } catch {
            result.codes[`http_${res.statusCode}`] = (result.codes[`http_${res.statusCode}`] ?? 0) + 1;
          }
        }
      })
      .catch((err: Error) => {
        const code = abort.signal.aborted ? 'client_timeout' : ((err as { code?: string }).code ?? err.name);
        if (abort.signal.aborted) result.timedOut++;
        result.codes[code] = (result.codes[code] ?? 0) + 1;
      })
      .finally(() => pending.delete(p));
    pending.add(p);
    result.sent++;
  };

  // A scheduler that catches up: every tick sends all requests that are due by now.
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (next < total && start + next * interval <= now) {
        fire(next, start + next * interval);
        next++;
      }
      if (next >= total) return resolve();
      setTimeout(tick, Math.max(0, Math.min(5, start + next * interval - performance.now())));
    };
    tick();
  });
  const drained = Promise.allSettled([...pending]);
  const timer = setTimeout(() => abort.abort(), spec.drainMs);
  await drained;
  clearTimeout(timer);
  result.elapsedMs = performance.now() - start;
  sendLags.sort((a, b) => a - b);
  result.sendLagP99Ms = Math.round(sendLags[Math.floor(sendLags.length * 0.99)] ?? 0);
  result.okLatencies.sort((a, b) => a - b);
  result.rejectLatencies.sort((a, b) => a - b);
  await dispatcher.close();
  return result;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as GeneratorSpec;
run(spec).then(
  (result) => {
    // Exit only once the (large) line has reached the pipe: exiting earlier can cut it short.
    process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
  },
  (err) => {
    process.stderr.write(String(err?.stack ?? err) + '\n');
    process.exit(1);
  },
);
