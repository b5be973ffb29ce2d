/**
 * The embedded database's own thread (see pglite-thread-engine.ts): runs PGlite and answers the
 * statements the main thread sends, one at a time, in order.
 */
import { fsyncSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { createPgliteInProcess, type PgliteEngineOptions } from './pglite-engine.js';
import { CPU_REPORT_MS, type ThreadEvent, type ThreadReply, type ThreadRequest } from './pglite-thread-protocol.js';
import { serializeError } from '../resilience/errors-across-threads.js';
import { threadCpuSeconds } from '../telemetry/thread-cpu.js';

const port = parentPort!;

async function main(): Promise<void> {
  // Set by a test (`fail-log-syncs`): the log's syncs fail from then on, as a failing disk's would.
  let logSyncsFail = false;
  const engine = await createPgliteInProcess({
    ...(workerData as PgliteEngineOptions),
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
  let chain = Promise.resolve();
  // Its CPU, for the metrics (which thread is saturated): the HTTP thread cannot read another thread's.
  const cpuTimer = setInterval(() => {
    const seconds = threadCpuSeconds();
    if (seconds !== null) port.postMessage({ cpu: seconds } satisfies ThreadEvent);
  }, CPU_REPORT_MS);
  cpuTimer.unref();
  port.on('message', (request: ThreadRequest) => {
    chain = chain.then(async () => {
      let reply: ThreadReply;
      try {
        if (request.op === 'query') reply = { id: request.id, ok: true, result: await engine.query(request.sql, request.params) };
        else if (request.op === 'dump') reply = { id: request.id, ok: true, dump: await engine.dump() };
        else if (request.op === 'fail-log-syncs') {
          logSyncsFail = true;
          reply = { id: request.id, ok: true };
        } else {
          await engine.close();
          reply = { id: request.id, ok: true };
        }
      } catch (err) {
        reply = { id: request.id, ok: false, error: serializeError(err) };
      }
      port.postMessage(reply);
      if (request.op === 'close') {
        clearInterval(cpuTimer);
        port.close();
      }
    });
  });
  port.postMessage({ ready: true });
}

main().catch((err: unknown) => port.postMessage({ fatal: serializeError(err) }));
