import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SecretKey } from './secret-box.js';
import { parseSecretKeys } from './secret-box.js';
import { makeFolderDurably, writeFileDurably } from './durable-file.js';

export const SECRET_KEY_FILE = 'secret-keys';

/**
 * The embedded store's key for connector credentials: generated on first start and kept (mode 0600)
 * beside the data, in the same `kid:base64key` form as HANDOVER_SECRET_KEYS, so a restart can still
 * decrypt what an earlier start encrypted. Losing this file loses the stored connector credentials.
 */
export async function ensureSecretKeys(dataDir: string): Promise<{ keys: SecretKey[]; generated: boolean; path: string }> {
  const path = join(dataDir, SECRET_KEY_FILE);
  const existing = await readKeyFile(path);
  if (existing) return { keys: existing, generated: false, path };
  await makeFolderDurably(dataDir, 0o777);
  const line = `local-1:${randomBytes(32).toString('base64')}`;
  let generated = true;
  // On disk before anything is encrypted with it: the store's commits outlive a crash of the machine.
  await writeFileDurably(path, `${line}\n`, { mode: 0o600, exclusive: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
    generated = false;
  });
  const stored = await readKeyFile(path);
  if (!stored) throw new Error(`${path} holds no key`);
  return { keys: stored, generated, path };
}

async function readKeyFile(path: string): Promise<SecretKey[] | null> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    return text.length > 0 ? parseSecretKeys(text) : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
