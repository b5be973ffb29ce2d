import { link, mkdir, open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Syncs an open file to disk: Node's own, or one a test watches. */
export type SyncFile = (handle: FileHandle, path: string) => Promise<void>;

const fsync: SyncFile = (handle) => handle.sync();

/**
 * Writes a file that is on disk, whole, once this resolves: a file the service keeps beside its data
 * (a key, an attachment) must outlive a crash of the machine as the database's commits do. Written
 * under a temporary name in the same folder and synced, then renamed into place, then the folder synced
 * so the new name is kept too; a reader never sees half of one. `exclusive`: fails with EEXIST when the
 * file already exists, for files made once.
 */
export async function writeFileDurably(
  path: string,
  data: string | Uint8Array,
  options: { mode: number; exclusive?: boolean },
  sync: SyncFile = fsync,
): Promise<void> {
  const folder = dirname(path);
  const temporary = join(folder, `.${basename(path)}.${randomBytes(6).toString('hex')}.part`);
  try {
    const handle = await open(temporary, 'wx', options.mode);
    try {
      await handle.writeFile(data);
      await sync(handle, temporary);
    } finally {
      await handle.close();
    }
    if (!options.exclusive) await rename(temporary, path);
    else if (!(await linked(temporary, path))) {
      // No hard links on this filesystem: made in place instead, as exclusive, a reader may see it partly written.
      await rm(temporary, { force: true });
      await writeInPlace(path, data, options.mode, sync);
    }
  } catch (err) {
    await rm(temporary, { force: true }).catch(() => {});
    throw err;
  }
  await syncFolder(folder, sync);
}

/**
 * The temporary file linked under its name, then its own name removed: a link fails with EEXIST when
 * the name is taken, atomically, where a rename would replace it. False on a filesystem without links.
 */
async function linked(temporary: string, path: string): Promise<boolean> {
  try {
    await link(temporary, path);
  } catch (err) {
    if (NO_LINKS.has((err as NodeJS.ErrnoException).code ?? '')) return false;
    throw err;
  }
  await rm(temporary);
  return true;
}

const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

async function writeInPlace(path: string, data: string | Uint8Array, mode: number, sync: SyncFile): Promise<void> {
  const handle = await open(path, 'wx', mode);
  try {
    await handle.writeFile(data);
    await sync(handle, path);
  } finally {
    await handle.close();
  }
}

/**
 * Syncs a folder's entries (a name made, renamed or removed in it) to disk. Where folders cannot be
 * opened or synced (EINVAL, EBADF, EISDIR, EPERM), nothing is done, as PostgreSQL does for its own.
 */
export async function syncFolder(folder: string, sync: SyncFile = fsync): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(folder, 'r');
  } catch (err) {
    if (FOLDERS_NOT_SYNCED.has((err as NodeJS.ErrnoException).code ?? '')) return;
    throw err;
  }
  try {
    await sync(handle, folder);
  } catch (err) {
    if (!FOLDERS_NOT_SYNCED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    await handle.close();
  }
}

/** What opening or syncing a folder answers where the system does not do it (PostgreSQL ignores the same). */
export const FOLDERS_NOT_SYNCED = new Set(['EINVAL', 'EBADF', 'EISDIR', 'EPERM']);

/** Makes a folder (and its parents) whose names are on disk once this resolves; nothing when it exists. */
export async function makeFolderDurably(folder: string, mode: number, sync: SyncFile = fsync): Promise<void> {
  const first = await mkdir(folder, { recursive: true, mode });
  if (first === undefined) return;
  // Each folder made, and the one holding the first of them, has a new name in it.
  for (let at = folder; ; at = dirname(at)) {
    await syncFolder(at, sync);
    if (at === first || dirname(at) === at) break;
  }
  await syncFolder(dirname(first), sync);
}
