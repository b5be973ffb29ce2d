import { PGlite } from '@electric-sql/pglite';
import { NodeFS } from '@electric-sql/pglite/nodefs';

/** Syncs one open file of the store to disk, synchronously (called from inside PostgreSQL). */
export type SyncFd = (fd: number, path: string) => void;

/**
 * The embedded store's files, written so that a commit is on disk before it is answered.
 *
 * PGlite on Node keeps its data directory through Emscripten's NODEFS, which passes reads and writes to
 * Node's `fs` but has no `fsync`: the call returns at once, having done nothing. PGlite also starts
 * PostgreSQL with `-F` (fsync off). A commit then reached the operating system's page cache and no
 * further: a process killed (kill -9, out of memory) lost nothing, but a crash of the machine or a
 * power cut could lose the last seconds of accepted messages that had been answered `2xx`, and with a
 * checkpoint among them leave the database corrupt (PostgreSQL's own warning for fsync off).
 *
 * Here NODEFS gets an `fsync` that is Node's, and PostgreSQL starts with fsync on. Its write-ahead log
 * is synced with `fsync()` (`wal_sync_method=fsync`): PGlite's `fdatasync()` is a no-op of its own that
 * this cannot reach. So every commit (an accept batch's too) waits for its log to be on disk, and a
 * checkpoint syncs the data files before it is recorded, as PostgreSQL does on its own server.
 */
export class DurableNodeFS extends NodeFS {
  constructor(
    dataDir: string,
    /** Syncs one open file to disk (Node's `fsyncSync`, and what the engine does when that fails). */
    private readonly sync: SyncFd,
  ) {
    super(dataDir);
  }

  override async init(pg: PGlite, opts: Parameters<NodeFS['init']>[1]): ReturnType<NodeFS['init']> {
    const made = await super.init(pg, opts);
    const mounted = made.emscriptenOpts.preRun ?? [];
    const withSync = (module: unknown): void => {
      const nodefs = (module as { NODEFS: NodeFsInternals }).NODEFS;
      nodefs.stream_ops.fsync = (stream) => {
        // A failure is thrown as the given sync throws it (createPgliteInProcess: through PostgreSQL).
        this.sync(stream.nfd, nodefs.realPath(stream.node));
        return 0;
      };
    };
    return { emscriptenOpts: { ...made.emscriptenOpts, preRun: [withSync, ...(Array.isArray(mounted) ? mounted : [mounted])] } };
  }
}

/** What of Emscripten's NODEFS this reaches: untyped by PGlite. */
interface NodeFsInternals {
  stream_ops: { fsync?: (stream: { nfd: number; node: unknown }) => number };
  realPath(node: unknown): string;
}

/** PGlite's own start parameters, with fsync on and the log synced by `fsync()`. */
export function durableStartParams(): string[] {
  return [...PGlite.defaultStartParams.filter((p) => p !== '-F'), '-c', 'fsync=on', '-c', 'wal_sync_method=fsync'];
}
