import type { Queryable } from '../store/db.js';

/**
 * When each admin token (by fingerprint, never the token) was last used, so an operator can tell when
 * an old token is no longer in use and retire it safely.
 */

/** Records a use now (callers write at most once a minute per token and instance). */
export async function recordAdminTokenUse(q: Queryable, fingerprint: string): Promise<void> {
  await q.query(
    `insert into admin_token_uses (fingerprint, last_used_at) values ($1, now()) on conflict (fingerprint) do update set last_used_at = excluded.last_used_at`,
    [fingerprint],
  );
}

/** The last use of each of these fingerprints; one never used is absent. */
export async function adminTokenLastUses(q: Queryable, fingerprints: readonly string[]): Promise<Map<string, Date>> {
  const { rows } = await q.query<{ fingerprint: string; last_used_at: Date }>(
    'select fingerprint, last_used_at from admin_token_uses where fingerprint = any($1::text[])',
    [fingerprints],
  );
  return new Map(rows.map((r) => [r.fingerprint, r.last_used_at]));
}
