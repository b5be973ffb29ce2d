import { createHook } from 'node:async_hooks';

/**
 * Handles a piece of code opened and left open: timers (also unref'd ones, which
 * `process.getActiveResourcesInfo()` does not list), sockets, servers, worker threads, child processes.
 * Each is kept from its creation (async_hooks `init`) until it is closed (`destroy`), with the stack
 * that created it, so a leak names the code that made it.
 */
const KINDS = new Set([
  'Timeout',
  'Immediate',
  'TCPWRAP',
  'TCPSERVERWRAP',
  'PIPEWRAP',
  'PIPESERVERWRAP',
  'TLSWRAP',
  'UDPWRAP',
  'WORKER',
  'MESSAGEPORT',
  'PROCESSWRAP',
  'SIGNALWRAP',
  'FSEVENTWRAP',
  'STATWATCHER',
  'ELDHISTOGRAM',
]);

/** Handles the test runner makes for itself (its RPC with the main process), and this watch's own waits. */
const RUNNER = /node_modules\/(vitest|@vitest|tinypool|birpc)\/|open-handles\.ts/;

export interface OpenHandle {
  type: string;
  stack: string;
}

export interface HandleWatch {
  /** Handles created since the watch began and still open. */
  open(): OpenHandle[];
  /**
   * `open()`, after waiting up to `timeoutMs` for closes already under way: sockets close
   * asynchronously, and ioredis destroys a connection whose server has not closed it after 2 s.
   */
  settled(timeoutMs?: number): Promise<OpenHandle[]>;
  end(): void;
}

export function watchHandles(): HandleWatch {
  const live = new Map<number, OpenHandle>();
  const hook = createHook({
    init(asyncId, type) {
      if (!KINDS.has(type)) return;
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 20;
      const stack = (new Error().stack ?? '').split('\n').slice(2);
      Error.stackTraceLimit = limit;
      // Judged by the first frame outside Node itself: deeper down, every stack reaches the runner.
      const creator = stack.find((line) => !/\(node:|at node:|<anonymous>/.test(line)) ?? '';
      if (RUNNER.test(creator)) return;
      live.set(asyncId, { type, stack: stack.join('\n') });
    },
    destroy(asyncId) {
      live.delete(asyncId);
    },
  });
  hook.enable();
  const open = () => [...live.values()];
  return {
    open,
    async settled(timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      while (live.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      return open();
    },
    end: () => hook.disable(),
  };
}

/** `process.getActiveResourcesInfo()` counted by type: what keeps the event loop alive. */
export function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/** Types that have more active resources now than in `before`. */
export function moreActiveThan(before: Map<string, number>): string[] {
  return [...activeResources()].filter(([type, n]) => n > (before.get(type) ?? 0)).map(([type, n]) => `${type}: ${before.get(type) ?? 0} → ${n}`);
}

export function describeHandles(handles: OpenHandle[]): string {
  return handles.map((h) => `${h.type}\n${h.stack.split('\n').slice(0, 12).join('\n')}`).join('\n\n');
}
