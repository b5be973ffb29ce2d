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
    if (options.exclusive) {
      // A link fails with EEXIST when the name is taken, atomically, where a rename would replace it.
      await link(temporary, path);
      await rm(temporary);
    } else {
      await rename(temporary, path);
    }
  } catch (err) {
    await rm(temporary, { force: true }).catch(() => {});
    throw err;
  }
  await syncFolder(folder, sync);
}

/** Syncs a folder's entries (a name made, renamed or removed in it) to disk. */
export async function syncFolder(folder: string, sync: SyncFile = fsync): Promise<void> {
  const handle = await open(folder, 'r');
  try {
    await sync(handle, folder);
  } finally {
    await handle.close();
  }
}

/** Makes a folder (and its parents) whose names are on disk once this resolves; nothing when it exists. */
export async function makeFolderDurably(folder: string, mode: number, sync: SyncFile = fsync): Promise<void> {
  const first = await mkdir(folder, { recursive: true, mode });
  if (first === undefined) return;
  // Each folder made, and the one holding the first of them, has a new name in it.
  for (let at = folder; ; at = dirname(at)) {
    await syncFolder(at, sync);
    if (at === first) break;
  }
  await syncFolder(dirname(first), sync);
}
