import type { Queryable } from '../store/db.js';

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

/** Newest first; `before` is the id of the last entry of the previous page. */
export async function listAudit(q: Queryable, filter: { tenantId?: string | undefined; before?: number | undefined; limit: number }): Promise<AuditRecord[]> {
  const { rows } = await q.query<{ id: number; at: Date; actor: string; action: string; tenant_id: string | null; outcome: number | null; details: Record<string, unknown>; address: string | null }>(
    `select * from audit_log where ($1::text is null or tenant_id = $1) and ($2::bigint is null or id < $2) order by id desc limit $3`,
    [filter.tenantId ?? null, filter.before ?? null, filter.limit],
  );
  return rows.map((r) => ({ id: String(r.id), at: r.at.toISOString(), actor: r.actor, action: r.action, tenantId: r.tenant_id, outcome: r.outcome, details: r.details, address: r.address }));
}
