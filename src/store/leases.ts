import type { Queryable } from './db.js';

/**
 * Takes the named lease, or renews it when `holder` has it already. Answers whether `holder` has it
 * now. One statement: of several instances asking at once exactly one gets a free or expired lease,
 * and a live lease is never taken from its holder.
 */
export async function holdLease(q: Queryable, name: string, holder: string, ttlMs: number): Promise<boolean> {
  const { rows } = await q.query(
    `insert into leases (name, holder, expires_at) values ($1, $2, now() + $3 * interval '1 millisecond')
     on conflict (name) do update set holder = excluded.holder, expires_at = excluded.expires_at
     where leases.holder = excluded.holder or leases.expires_at < now()
     returning holder`,
    [name, holder, ttlMs],
  );
  return rows.length > 0;
}

/** Gives the lease up so another instance can take it at once (graceful shutdown). */
export async function releaseLease(q: Queryable, name: string, holder: string): Promise<void> {
  await q.query('delete from leases where name = $1 and holder = $2', [name, holder]);
}
