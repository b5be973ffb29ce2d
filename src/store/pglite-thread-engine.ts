import { MessageChannel, type Worker } from 'node:worker_threads';
import { startModuleThread } from './module-thread.js';
import { AwaitedAnswers } from '../resilience/churn-free.js';
import { AppError } from '../resilience/errors.js';
import type { QueryResult } from './db.js';
import type { PgliteEngine, PgliteEngineOptions } from './pglite-engine.js';
import { deserializeError } from '../resilience/errors-across-threads.js';
import type { PgliteThreadData, ThreadEvent, ThreadReply, ThreadRequest } from './pglite-thread-protocol.js';

/**
 * PGlite in a worker thread of its own. PostgreSQL compiled to WASM runs synchronously while it works:
 * in the thread that answers HTTP, every statement is time that thread cannot spend answering — or
 * refusing — requests. Here the main thread only posts the statement and reads the answer.
 *
 * Bounds and failure: a statement that gets no answer within `replyTimeoutMs` is answered
 * `database_timeout` (PGlite has no statement timeout of its own); a thread that dies or fails fails
 * every statement waiting on it, and every later one at once, with `database_unavailable` naming what
 * happened — never a wait without end.
 */
export interface PgliteThreadOptions extends PgliteEngineOptions {
  replyTimeoutMs: number;
  /** How long a statement of this thread's may wait for another thread's transaction (the pool's checkout bound). */
  waitTimeoutMs?: number;
  /** Told once when the thread is lost (for logs and metrics). */
  onLost?: (error: Error) => void;
}

interface Pending {
  resolve(reply: ThreadReply & { ok: true }): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

const threads = new WeakMap<PgliteEngine, Worker>();
const failLogSyncs = new WeakMap<PgliteEngine, () => Promise<void>>();

export async function createPgliteThread(options: PgliteThreadOptions): Promise<PgliteEngine> {
  const worker = startModuleThread(import.meta.url, 'pglite-thread', {
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    ...(options.loadDataDir !== undefined ? { loadDataDir: options.loadDataDir } : {}),
    ...(options.waitTimeoutMs !== undefined ? { waitTimeoutMs: options.waitTimeoutMs } : {}),
  } satisfies PgliteThreadData);
  const pending = new AwaitedAnswers<Pending>();
  let nextId = 1;
  let lost: Error | null = null;

  /** `asked`: the thread ended because it was closed, which is no loss to report. */
  const lose = (error: Error, asked = false) => {
    if (lost) return;
    // A cause the thread named itself (a file it could not sync) is passed on as it was.
    lost =
      error instanceof AppError && error.code === 'database_unavailable'
        ? error
        : new AppError('database_unavailable', { message: `The embedded database's thread stopped (${error.message}); restart the service.`, cause: error });
    for (const p of pending.takeAll()) {
      clearTimeout(p.timer);
      p.reject(lost);
    }
    if (!asked) options.onLost?.(lost);
  };

  await new Promise<void>((resolve, reject) => {
    const onStart = (event: ThreadEvent | ThreadReply) => {
      if ('ready' in event) done(null);
      else if ('fatal' in event) done(deserializeError(event.fatal));
    };
    const onError = (err: Error) => done(err);
    const onExit = (code: number) => done(new Error(`the embedded database's thread exited (code ${code}) while starting`));
    const done = (err: Error | null) => {
      worker.off('message', onStart);
      worker.off('error', onError);
      worker.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    worker.on('message', onStart);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });

  let closing = false;
  let cpuSeconds: number | null = null;
  worker.on('message', (reply: ThreadReply | ThreadEvent) => {
    if ('cpu' in reply) {
      cpuSeconds = reply.cpu;
      return;
    }
    if ('fatal' in reply) {
      // The store stopped (a file it could not sync): whatever the thread is still doing is not waited for.
      lose(deserializeError(reply.fatal));
      void worker.terminate();
      return;
    }
    if (!('id' in reply)) return;
    const p = pending.take(reply.id);
    if (!p) return;
    clearTimeout(p.timer);
    if (reply.ok) p.resolve(reply);
    else p.reject(deserializeError(reply.error));
  });
  worker.on('error', (err) => lose(err));
  worker.on('exit', (code) => lose(new Error(closing ? 'closed' : `exited with code ${code}`), closing));

  const call = (request: WithoutId<ThreadRequest>, timeoutMs: number): Promise<ThreadReply & { ok: true }> => {
    if (lost) return Promise.reject(lost);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.take(id);
        reject(new AppError('database_timeout', { message: `The embedded database did not answer within ${timeoutMs} ms.` }));
      }, timeoutMs);
      pending.add(id, { resolve, reject, timer });
      worker.postMessage({ ...request, id } as ThreadRequest);
    });
  };

  const engine: PgliteEngine = {
    async query(sql, params, hold) {
      const reply = await call(
        { op: 'query', sql, ...(params !== undefined ? { params } : {}), ...(hold ? { hold: true as const } : {}) },
        options.replyTimeoutMs,
      );
      return reply.result as QueryResult<unknown>;
    },
    connect(name, bounds) {
      if (lost) throw lost;
      const { port1, port2 } = new MessageChannel();
      worker.postMessage({ id: nextId++, op: 'connect', port: port2, name, ...bounds } satisfies ThreadRequest, [port2]);
      return port1;
    },
    async queryWithin(sql, timeoutMs) {
      return (await call({ op: 'query', sql }, timeoutMs)).result as QueryResult<unknown>;
    },
    threadCpuSeconds: () => cpuSeconds,
    async dump() {
      return (await call({ op: 'dump' }, Math.max(options.replyTimeoutMs, 60_000))).dump!;
    },
    async close() {
      if (lost) {
        await worker.terminate();
        return;
      }
      closing = true;
      try {
        await call({ op: 'close' }, Math.max(options.replyTimeoutMs, 10_000));
      } finally {
        await worker.terminate();
      }
    },
  };
  threads.set(engine, worker);
  failLogSyncs.set(engine, async () => void (await call({ op: 'fail-log-syncs' }, options.replyTimeoutMs)));
  return engine;
}

/** For tests: ends the database's thread as a crash would. */
export async function terminatePgliteThread(engine: PgliteEngine): Promise<void> {
  await threads.get(engine)?.terminate();
}

/** For tests: from now on the thread's syncs of its write-ahead log fail, as a failing disk's would. */
export async function failPgliteThreadLogSyncs(engine: PgliteEngine): Promise<void> {
  await failLogSyncs.get(engine)?.();
}

/**
 * The thread's code is this folder's `pglite-thread` module: the compiled `.js` in a build; when
 * running from TypeScript sources (tests, `npm run dev`), loaded through tsx's loader.
 */
