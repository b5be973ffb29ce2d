import type { Queryable } from '../store/db.js';
import { withoutDeadline } from '../resilience/deadline.js';
import type { Logger } from '../telemetry/logger.js';

export interface AuditEntry {
  actor: string;
  action: string;
  tenantId?: string | null | undefined;
  outcome?: number | undefined;
  details?: Record<string, unknown> | undefined;
  address?: string | undefined;
}

export interface AuditRecord {
  id: string;
  at: string;
  actor: string;
  action: string;
  tenantId: string | null;
  outcome: number | null;
  details: Record<string, unknown>;
  address: string | null;
}

/** Appends one entry (the table refuses updates and deletes). */
export async function recordAudit(q: Queryable, entry: AuditEntry): Promise<void> {
  await q.query('insert into audit_log (actor, action, tenant_id, outcome, details, address) values ($1, $2, $3, $4, $5::jsonb, $6)', [
    entry.actor,
    entry.action,
    entry.tenantId ?? null,
    entry.outcome ?? null,
    JSON.stringify(entry.details ?? {}),
    entry.address ?? null,
  ]);
}

/**
 * Records an action that has already been taken, outside the request's deadline (a change that
 * committed late is still recorded). A failure to record is logged, naming `what`, and never turns the
 * answer into an error: the action happened.
 */
export async function recordAuditAfter(q: Queryable, entry: AuditEntry, log: Pick<Logger, 'error'>, what: string): Promise<void> {
  await withoutDeadline(() => recordAudit(q, entry)).catch((err: unknown) => log.error({ err }, `could not write the audit log entry of ${what}`));
}

/** The ways one user's erasure may have been recorded: keyed digests under each known key, and the plain SHA-256 of older records. */
export interface ErasedUserFilter {
  digests: Array<{ keyId: string; userIdHmac: string }>;
  legacySha256: string;
}

/**
 * Newest first; `before` is the id of the last entry of the previous page. `erasedUser` keeps only the
 * `user.erased` entries of that user.
 */
export async function listAudit(
  q: Queryable,
  filter: { tenantId?: string | undefined; before?: number | undefined; limit: number; erasedUser?: ErasedUserFilter | undefined },
): Promise<AuditRecord[]> {
  const erased = filter.erasedUser;
  // Only the conditions given: as "$n is null or …" the tenant's index and the key's bound could not
  // serve them in a plan made without the values (the sessions' plans are: db.ts).
  const params: unknown[] = [filter.limit];
  const where: string[] = [];
  if (filter.tenantId !== undefined) where.push(`tenant_id = $${params.push(filter.tenantId)}`);
  if (filter.before !== undefined) where.push(`id < $${params.push(filter.before)}`);
  if (erased) {
    const digests = params.push(erased.digests.map((d) => `${d.keyId}:${d.userIdHmac}`));
    const legacy = params.push(erased.legacySha256 ?? null);
    where.push(
      `action = 'user.erased' and ((details->>'keyId') || ':' || (details->>'userIdHmac') = any($${digests}::text[]) or details->>'userIdSha256' = $${legacy})`,
    );
  }
  const { rows } = await q.query<{
    id: number;
    at: Date;
    actor: string;
    action: string;
    tenant_id: string | null;
    outcome: number | null;
    details: Record<string, unknown>;
    address: string | null;
  }>(`select * from audit_log ${where.length > 0 ? `where ${where.join(' and ')}` : ''} order by id desc limit $1`, params);
  return rows.map((r) => ({
    id: String(r.id),
    at: r.at.toISOString(),
    actor: r.actor,
    action: r.action,
    tenantId: r.tenant_id,
    outcome: r.outcome,
    details: r.details,
    address: r.address,
  }));
}

/** The key ids that a tenant's erasures were recorded under (to tell which of them a lookup can check). */
export async function erasureKeyIds(q: Queryable, tenantId: string): Promise<string[]> {
  const { rows } = await q.query<{ key_id: string }>(
    `select distinct details->>'keyId' as key_id from audit_log where tenant_id = $1 and action = 'user.erased' and details ? 'keyId'`,
    [tenantId],
  );
  return rows.map((r) => r.key_id);
}
