import { readAdminTokenFile } from '../config/admin-token.js';
import type { CliConfig } from '../config/config.js';

/**
 * The CLI's admin client. It talks HTTP to the running service, never to the data directory: the
 * embedded store belongs to exactly one process.
 */
export async function adminRequest(cli: CliConfig, method: string, path: string, body?: unknown, timeoutMs = 10_000): Promise<unknown> {
  const token = cli.adminToken ?? (await readAdminTokenFile(cli.dataDir));
  if (!token) throw new Error(`No admin token: set HANDOVER_ADMIN_TOKEN, or run this where the service keeps ${cli.dataDir}/admin-token.`);
  let response: Response;
  try {
    response = await fetch(`${cli.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? null : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new Error(`Cannot reach the service at ${cli.url} (${(err as Error).message}). Is it running? Set HANDOVER_URL to point elsewhere.`, { cause: err });
  }
  const text = await response.text();
  const parsed: unknown = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new Error(`${response.status} ${error?.code ?? ''}: ${error?.message ?? text}`);
  }
  return parsed;
}
