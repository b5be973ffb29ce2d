import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AttachmentStore } from './attachment-store.js';
import { AppError } from '../resilience/errors.js';

const KEY = /^[a-z]+_[0-9a-z]+\/[a-z]+_[0-9a-z]+$/;

/**
 * Attachments as files under one directory (HANDOVER_ATTACHMENT_DIR, by default `attachments/` in the
 * data directory), one folder per tenant. A file is written under a temporary name and renamed, so a
 * reader never sees half of one. Several instances need the same directory (a shared volume) or S3.
 */
export function createDiskStore(dir: string): AttachmentStore {
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
      const temporary = `${path}.${randomBytes(6).toString('hex')}.part`;
      try {
        await mkdir(dirname(path), { recursive: true, mode: 0o700 });
        await writeFile(temporary, bytes, { mode: 0o600, flag: 'wx' });
        await rename(temporary, path);
      } catch (err) {
        await rm(temporary, { force: true }).catch(() => {});
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
