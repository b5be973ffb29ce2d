import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeFolderDurably, writeFileDurably } from './durable-file.js';

export const ADMIN_TOKEN_FILE = 'admin-token';

/**
 * The embedded store's admin token: generated on first start and kept (mode 0600) beside the data, so a
 * restart keeps it and the CLI on the same machine can read it.
 */
export async function ensureAdminToken(dataDir: string): Promise<{ token: string; generated: boolean; path: string }> {
  const path = join(dataDir, ADMIN_TOKEN_FILE);
  const existing = await readAdminTokenFile(dataDir);
  if (existing) return { token: existing, generated: false, path };
  await makeFolderDurably(dataDir, 0o777);
  const token = `handover_admin_${randomBytes(24).toString('base64url')}`;
  await writeFileDurably(path, `${token}\n`, { mode: 0o600, exclusive: true }).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const stored = await readAdminTokenFile(dataDir);
  return { token: stored ?? token, generated: stored === token, path };
}

export async function readAdminTokenFile(dataDir: string): Promise<string | null> {
  try {
    const text = (await readFile(join(dataDir, ADMIN_TOKEN_FILE), 'utf8')).trim();
    return text.length > 0 ? text : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
