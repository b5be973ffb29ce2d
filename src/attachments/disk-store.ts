import { readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { makeFolderDurably, writeFileDurably, type SyncFile } from '../config/durable-file.js';
import type { AttachmentStore } from './attachment-store.js';
import { AppError } from '../resilience/errors.js';

const KEY = /^[a-z]+_[0-9a-z]+\/[a-z]+_[0-9a-z]+$/;

/**
 * Attachments as files under one directory (HANDOVER_ATTACHMENT_DIR, by default `attachments/` in the
 * data directory), one folder per tenant. A file is synced to disk, whole, before it is stored as kept
 * (writeFileDurably): the row that names it outlives a crash of the machine, and so must the file.
 * Several instances need the same directory (a shared volume) or S3.
 */
export function createDiskStore(dir: string, sync?: SyncFile): AttachmentStore {
  const pathOf = (key: string) => {
    // Keys are made from this service's ids; anything else would be a bug, never a path to follow.
    if (!KEY.test(key)) throw new Error(`not an attachment key: ${key}`);
    return join(dir, key);
  };
  const unavailable = (err: unknown) =>
    new AppError('attachment_store_unavailable', {
      message: `The attachment directory cannot be used: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}.`,
      cause: err,
    });
  return {
    kind: 'disk',
    async put(key, bytes) {
      const path = pathOf(key);
      try {
        await makeFolderDurably(dirname(path), 0o700, sync);
        await writeFileDurably(path, bytes, { mode: 0o600 }, sync);
      } catch (err) {
        throw unavailable(err);
      }
    },
    async get(key) {
      try {
        return await readFile(pathOf(key));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw unavailable(err);
      }
    },
    async delete(key) {
      await rm(pathOf(key), { force: true }).catch((err: unknown) => {
        throw unavailable(err);
      });
    },
    async close() {},
  };
}
