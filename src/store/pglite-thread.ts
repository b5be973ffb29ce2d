/**
 * The embedded database's own thread (see pglite-thread-engine.ts): runs PGlite and answers the
 * statements the main thread sends, and those of the sessions other threads were given (the delivery
 * thread's), one at a time, in order; a session's transaction holds the connection until it ends
 * (pglite-sessions.ts).
 */
import { fsyncSync } from 'node:fs';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { createPgliteInProcess } from './pglite-engine.js';
import { CPU_REPORT_MS, type PgliteThreadData, type ThreadEvent, type ThreadReply, type ThreadRequest } from './pglite-thread-protocol.js';
import { serializeError } from '../resilience/errors-across-threads.js';
import type { DbCall } from './relayed-db.js';
import { serveSession, Session, SessionScheduler } from './pglite-sessions.js';
import { threadCpuSeconds } from '../telemetry/thread-cpu.js';

const port = parentPort!;

async function main(): Promise<void> {
  // Set by a test (`fail-log-syncs`): the log's syncs fail from then on, as a failing disk's would.
  let logSyncsFail = false;
  const { waitTimeoutMs, ...engineOptions } = workerData as PgliteThreadData;
  const engine = await createPgliteInProcess({
    ...engineOptions,
    sync: (fd, path) => {
      if (logSyncsFail && path.includes('/pg_wal/')) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
      fsyncSync(fd);
    },
    // A failed sync is told at once, from inside the statement that met it, and ends this thread there:
    // PGlite, given the failure back, may spin in the statement for good (a COMMIT's PANIC does).
    onFailure: (failure) => {
      port.postMessage({ fatal: serializeError(failure) } satisfies ThreadEvent);
      process.exit(1);
    },
  });
  const scheduler = new SessionScheduler(engine);
  const own = new Session('main');
  const others = new Set<MessagePort>();
  let closed = false;
  // Its CPU, for the metrics (which thread is saturated): the HTTP thread cannot read another thread's.
  const cpuTimer = setInterval(() => {
    const seconds = threadCpuSeconds();
    if (seconds !== null) port.postMessage({ cpu: seconds } satisfies ThreadEvent);
  }, CPU_REPORT_MS);
  cpuTimer.unref();
  port.on('message', (request: ThreadRequest) => {
    if (request.op === 'connect') return connect(request.port, request.name, { transactionMs: request.transactionMs, waitTimeoutMs: request.waitTimeoutMs });
    const answered = (work: Promise<Omit<ThreadReply & { ok: true }, 'id'>>) =>
      work.then(
        (reply) => port.postMessage({ id: request.id, ...reply } as ThreadReply),
        (err: unknown) => port.postMessage({ id: request.id, ok: false, error: serializeError(err) } satisfies ThreadReply),
      );
    if (request.op === 'query') {
      void answered(scheduler.statement(own, request.sql, request.params, request.hold === true, waitTimeoutMs).then((result) => ({ ok: true, result })));
      return;
    }
    if (request.op === 'fail-log-syncs') {
      logSyncsFail = true;
      port.postMessage({ id: request.id, ok: true } satisfies ThreadReply);
      return;
    }
    if (request.op === 'dump') {
      void answered(scheduler.run({ session: own, key: own, work: async () => ({ ok: true as const, dump: await engine.dump() }) }));
      return;
    }
    // close: once what was sent before it has run; the other sessions end with it.
    void answered(
      scheduler.run({
        session: own,
        key: own,
        work: async () => {
          closed = true;
          for (const other of others) other.close();
          await engine.close();
          return { ok: true as const };
        },
      }),
    ).then(() => {
      clearInterval(cpuTimer);
      port.close();
    });
  });

  /** Another thread's session: its calls on `other` until either side closes it. */
  function connect(other: MessagePort, name: string, bounds: { transactionMs: number; waitTimeoutMs: number }): void {
    if (closed) return other.close();
    const served = serveSession(scheduler, new Session(name), (answer) => other.postMessage(answer), bounds);
    others.add(other);
    other.on('message', (call: DbCall) => served.call(call));
    other.on('close', () => {
      others.delete(other);
      served.close();
    });
  }
  port.postMessage({ ready: true });
}

main().catch((err: unknown) => port.postMessage({ fatal: serializeError(err) }));
