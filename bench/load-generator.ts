/**
 * Load generator, run as its own process (pinned to a core of its own where `taskset` exists) so it
 * does not share an event loop, or a core, with what it measures. Two modes:
 *
 * - open loop (`ratePerSecond`): requests are sent on a fixed schedule whatever the answers; latency is
 *   counted from the moment a request was due, not when it went out, so a slow server cannot hide its
 *   backlog (coordinated omission);
 * - closed loop (`mode: 'closed'`): `connections` clients, each sending its next request as soon as the
 *   previous one was answered, for `durationMs`: what the server can take at that concurrency, with no
 *   cap on what it is offered. Latency is counted from when each request went out.
 *
 * Either way its connections are opened before the clock starts (as wrk does; see LeanPool.connectAll),
 * and it reports its own lateness and the CPU it used, so a starved generator can be told apart from a
 * slow server. Input: one JSON argument (GeneratorSpec). Output: one JSON line (GeneratorResult).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LeanPool, NoAnswer } from './lean-http.js';
/** The timeline's bins, ms (BENCH_TIMELINE_MS; 500 by default). */
const TIMELINE_MS = (() => {
  const ms = Number(process.env.BENCH_TIMELINE_MS ?? 500);
  if (!Number.isFinite(ms) || ms <= 0) throw new Error(`BENCH_TIMELINE_MS must be a number of milliseconds above 0, not ${process.env.BENCH_TIMELINE_MS}`);
  return ms;
})();

export interface GeneratorSpec {
  baseUrl: string;
  /** Paths, used round-robin; `{i}` in the body is replaced by the request number, `{id}` by its client id. */
  paths: string[];
  body: string;
  headers: Record<string, string>;
  /** `open` (default): `ratePerSecond` on a schedule. `closed`: `connections` clients back to back. */
  mode?: 'open' | 'closed';
  ratePerSecond?: number;
  durationMs: number;
  connections: number;
  /** Requests still unanswered this long after the schedule (or the closed-loop window) ended are counted as timed out. */
  drainMs: number;
  idPrefix: string;
}

export interface GeneratorResult {
  mode: 'open' | 'closed';
  sent: number;
  statuses: Record<string, number>;
  /** Refusals by their error code (`http_NNN` without one) and requests that got no answer, by cause. */
  codes: Record<string, number>;
  /** Latencies (ms) of 2xx answers and of refusals (non-2xx), each sorted. */
  okLatencies: number[];
  rejectLatencies: number[];
  /** Client ids of the messages the server accepted (2xx). */
  acceptedIds: string[];
  /** The ids the server gave them (`id` of its 2xx answer; the client id when it gave none): what the helpdesk sees. */
  acceptedMessageIds: string[];
  /** Requests aborted, unanswered, when the drain time was up. */
  timedOut: number;
  /** Requests that never got an HTTP answer: timed out, or their connection failed. */
  unanswered: number;
  /** Wall-clock time (epoch ms) when the first request went out, to line up with the helpdesk's clock. */
  startedAtEpochMs: number;
  /** From the first request to the last answer (ms). */
  elapsedMs: number;
  /** The load window itself (ms): the schedule, or the closed loop's duration up to its last answer. */
  windowMs: number;
  /** Open loop: how late requests went out (ms, p99). Its own CPU starvation, not the server's. */
  sendLagP99Ms: number;
  /** The generator's event-loop delay (ms, p99): its lateness in either mode. */
  loopDelayP99Ms: number;
  /** CPU time the generator used (user + system, ms) and as a share of one core over `elapsedMs`. */
  cpuMs: number;
  cpuPercent: number;
  /**
   * Per 500 ms (BENCH_TIMELINE_MS) of the schedule (by when requests were due or, closed loop, went out): answers, and the p99
   * of their latency, of the part of it spent at the server (from when the request went out on a
   * connection), and of the part spent waiting for a free connection here; and the same for the
   * refusals alone (how many, their p99, their p99 at the server), which the mix of answers hides.
   */
  timeline: {
    atMs: number;
    answers: number;
    p99Ms: number;
    serverP99Ms: number;
    waitP99Ms: number;
    refused: number;
    refusedP99Ms: number;
    /** How late this generator's own 5 ms timer ran at worst in the bin (BENCH_TIMELINE=1 only; 0 otherwise): its own delay, in every latency of the bin. */
    generatorLateMaxMs: number;
    refusedServerP99Ms: number;
  }[];
}

async function run(spec: GeneratorSpec): Promise<GeneratorResult> {
  const mode = spec.mode ?? 'open';
  const base = new URL(spec.baseUrl);
  const prefix = base.pathname.replace(/\/$/, '');
  const pool = new LeanPool(base.origin, spec.connections);
  // Connections are opened before the clock starts (see LeanPool.connectAll).
  await pool.connectAll();
  let closed = false;
  const close = () => {
    closed = true;
    pool.close();
  };
  const result: GeneratorResult = {
    mode,
    sent: 0,
    statuses: {},
    codes: {},
    okLatencies: [],
    rejectLatencies: [],
    acceptedIds: [],
    acceptedMessageIds: [],
    timedOut: 0,
    unanswered: 0,
    startedAtEpochMs: 0,
    elapsedMs: 0,
    windowMs: 0,
    sendLagP99Ms: 0,
    loopDelayP99Ms: 0,
    cpuMs: 0,
    cpuPercent: 0,
    timeline: [],
  };
  const buckets: { total: number[]; server: number[]; wait: number[]; refused: number[]; refusedServer: number[] }[] = [];
  const sendLags: number[] = [];
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  result.startedAtEpochMs = Date.now();
  // The generator's own lateness per bin of the timeline, from a timer that should run every 5 ms: only
  // when the timeline is printed (BENCH_TIMELINE=1), so other runs carry no extra wake-ups of their own.
  const lateMax: number[] = [];
  let tickDue = start + 5;
  const lateTimer =
    process.env.BENCH_TIMELINE === '1'
      ? setInterval(() => {
          const now = performance.now();
          const bin = Math.floor((now - start) / TIMELINE_MS);
          lateMax[bin] = Math.max(lateMax[bin] ?? 0, now - tickDue);
          tickDue = now + 5;
        }, 5)
      : undefined;
  let lastAnswer = start;
  const count = (map: Record<string, number>, key: string) => (map[key] = (map[key] ?? 0) + 1);

  /** Sends request `i`; latency counts from `since`. Never rejects. */
  const send = (i: number, since: number): Promise<void> => {
    const id = `${spec.idPrefix}-${i}`;
    const body = spec.body.replaceAll('{i}', String(i)).replaceAll('{id}', id);
    result.sent++;
    return pool.post(prefix + spec.paths[i % spec.paths.length]!, spec.headers, body).then(
      (res) => {
        const text = res.body;
        const now = performance.now();
        lastAnswer = Math.max(lastAnswer, now);
        const latency = Math.round((now - since) * 100) / 100;
        const sentAt = res.sentAt ?? since;
        const bucket = (buckets[Math.max(0, Math.floor((since - start) / TIMELINE_MS))] ??= {
          total: [],
          server: [],
          wait: [],
          refused: [],
          refusedServer: [],
        });
        bucket.total.push(latency);
        bucket.server.push(now - sentAt);
        bucket.wait.push(Math.max(0, sentAt - since));
        count(result.statuses, String(res.status));
        if (res.status >= 200 && res.status < 300) {
          result.okLatencies.push(latency);
          result.acceptedIds.push(id);
          let messageId = id;
          try {
            const answer = JSON.parse(text) as { id?: unknown };
            if (typeof answer.id === 'string') messageId = answer.id;
          } catch {
            // no JSON answer: the client id is what travels on
          }
          result.acceptedMessageIds.push(messageId);
        } else {
          result.rejectLatencies.push(latency);
          bucket.refused.push(latency);
          bucket.refusedServer.push(now - sentAt);
          let code = `http_${res.status}`;
          try {
            code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? code;
          } catch {
            // not the service's error format: keep the status
          }
          count(result.codes, code);
        }
      },
      (err: Error) => {
        result.unanswered++;
        if (closed) {
          result.timedOut++;
          count(result.codes, 'client_timeout');
        } else count(result.codes, err instanceof NoAnswer ? err.code : err.name);
      },
    );
  };

  let windowEnd: number;
  if (mode === 'closed') {
    const until = start + spec.durationMs;
    let next = 0;
    const client = async () => {
      while (performance.now() < until) {
        const before = result.unanswered;
        await send(next++, performance.now());
        // A connection that fails at once must not turn the loop into a spin.
        if (result.unanswered > before && !closed) await new Promise((r) => setTimeout(r, 10));
      }
    };
    const timer = setTimeout(close, spec.durationMs + spec.drainMs);
    await Promise.all(Array.from({ length: spec.connections }, client));
    clearTimeout(timer);
    windowEnd = lastAnswer;
  } else {
    const rate = spec.ratePerSecond ?? 1;
    const total = Math.round((rate * spec.durationMs) / 1000);
    const interval = 1000 / rate;
    const pending = new Set<Promise<void>>();
    // A scheduler that catches up: every tick sends all requests that are due by now.
    let next = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        while (next < total && start + next * interval <= now) {
          const dueAt = start + next * interval;
          sendLags.push(now - dueAt);
          const p = send(next, dueAt).finally(() => pending.delete(p));
          pending.add(p);
          next++;
        }
        if (next >= total) return resolve();
        setTimeout(tick, Math.max(0, Math.min(5, start + next * interval - performance.now())));
      };
      tick();
    });
    windowEnd = start + spec.durationMs;
    const timer = setTimeout(close, spec.drainMs);
    await Promise.allSettled([...pending]);
    clearTimeout(timer);
  }
  clearInterval(lateTimer);
  const end = performance.now();
  result.elapsedMs = Math.round(end - start);
  result.windowMs = Math.round(windowEnd - start);
  sendLags.sort((a, b) => a - b);
  result.sendLagP99Ms = Math.round(sendLags[Math.floor(sendLags.length * 0.99)] ?? 0);
  loopDelay.disable();
  result.loopDelayP99Ms = Math.round(loopDelay.percentile(99) / 1e5) / 10;
  const cpu = process.cpuUsage(cpuBefore);
  result.cpuMs = Math.round((cpu.user + cpu.system) / 1000);
  result.cpuPercent = Math.round((100 * result.cpuMs) / Math.max(1, end - start));
  result.okLatencies.sort((a, b) => a - b);
  result.rejectLatencies.sort((a, b) => a - b);
  const p99 = (xs: number[]) => Math.round(xs.sort((a, b) => a - b)[Math.floor(xs.length * 0.99)] ?? 0);
  // Every bin, those with no request too (a sparse array would come out of JSON with nulls).
  result.timeline = Array.from({ length: buckets.length }, (_, k) => buckets[k]).map((b, k) => ({
    atMs: k * TIMELINE_MS,
    answers: b?.total.length ?? 0,
    p99Ms: p99(b?.total ?? []),
    serverP99Ms: p99(b?.server ?? []),
    waitP99Ms: p99(b?.wait ?? []),
    refused: b?.refused.length ?? 0,
    refusedP99Ms: p99(b?.refused ?? []),
    refusedServerP99Ms: p99(b?.refusedServer ?? []),
    generatorLateMaxMs: Math.round(lateMax[k] ?? 0),
  }));
  close();
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
