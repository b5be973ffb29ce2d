import type { Deps } from '../deps.js';
import { recordAudit } from '../audit/audit-log.js';
import type { Queryable } from '../store/db.js';
import { AppError } from '../resilience/errors.js';
import { CREDENTIALS_CHANNEL, requireTenant, type ApiKeyRevoked } from '../tenants/tenants.js';
import { deleteHandovers, removeStoredFiles } from './user-data.js';

/** Handovers deleted per transaction: each batch is short, whatever the tenant's size. */
const BATCH = 500;

export interface TenantDeleted {
  handovers: number;
  messages: number;
  events: number;
  files: number;
}

/**
 * Deletes a tenant and everything it owns (docs/security.md, "Deleting a tenant"): its conversations
 * with their messages, events, queued work and files, in batches, each its own transaction; then, in one
 * last transaction with its audit record, the tenant row, which takes its API keys, connectors, queues,
 * agents, sessions, canned responses and settings with it. Live conversations are deleted like ended
 * ones: nobody is told, since the bot's webhook goes with the tenant.
 *
 * Stops working at once on every instance: its API keys are dropped from the caches over the bus (their
 * event streams end); an instance the signal misses refuses them within HANDOVER_API_KEY_CACHE_MS, and
 * drops its connector instances within their 10 s recheck. The files' bytes are removed from the store
 * after each batch commits; one the store cannot remove now is logged (its row is gone, so no link
 * serves it). A deletion cut short (the process stopped) leaves the tenant with fewer conversations:
 * running it again finishes it.
 */
export async function deleteTenant(
  deps: Pick<Deps, 'db' | 'bus' | 'attachments' | 'log'>,
  tenantId: string,
  audit: { actor: string; address?: string | undefined },
): Promise<TenantDeleted> {
  await requireTenant(deps.db, tenantId);
  const deleted: TenantDeleted = { handovers: 0, messages: 0, events: 0, files: 0 };
  for (;;) {
    const batch = await deps.db.transaction((q) => endAndDeleteHandovers(q, tenantId, BATCH));
    await removeStoredFiles(deps, batch.fileKeys);
    deleted.handovers += batch.handovers;
    deleted.messages += batch.messages;
    deleted.events += batch.events;
    deleted.files += batch.fileKeys.length;
    if (batch.found < BATCH) break;
  }
  // The files no conversation holds any more (uploaded, never sent), with the tenant's last rows.
  const { keyHashes, fileKeys, late } = await deps.db.transaction(async (q) => {
    // The tenant's row held first: no handover can be created for it from here on (a new one's key
    // check waits for this row). Those its bots created since the last batch go the same way as the
    // others, with their messages (which have no foreign key to go with them by: migration 021).
    const held = await q.query('select id from tenants where id = $1 for update', [tenantId]);
    if (held.rowCount === 0) throw new AppError('tenant_not_found');
    const late = await endAndDeleteHandovers(q, tenantId, null);
    const { rows: files } = await q.query<{ storage_key: string }>('delete from attachments where tenant_id = $1 returning storage_key', [tenantId]);
    const { rows: keys } = await q.query<{ id: string; key_hash: string }>('select id, key_hash from api_keys where tenant_id = $1', [tenantId]);
    await q.query('delete from tenants where id = $1', [tenantId]);
    const fileKeys = [...late.fileKeys, ...files.map((f) => f.storage_key)];
    await recordAudit(q, {
      actor: audit.actor,
      action: 'tenant.deleted',
      tenantId,
      outcome: 204,
      details: {
        handovers: deleted.handovers + late.handovers,
        messages: deleted.messages + late.messages,
        events: deleted.events + late.events,
        files: deleted.files + fileKeys.length,
      },
      ...(audit.address ? { address: audit.address } : {}),
    });
    return { keyHashes: keys, fileKeys, late };
  });
  deleted.handovers += late.handovers;
  deleted.messages += late.messages;
  deleted.events += late.events;
  await removeStoredFiles(deps, fileKeys);
  deleted.files += fileKeys.length;
  for (const key of keyHashes) {
    deps.bus.publish(CREDENTIALS_CHANNEL, { type: 'api_key.revoked', tenantId, keyId: key.id, keyHash: key.key_hash } satisfies ApiKeyRevoked);
  }
  deps.log.info({ tenantId, ...deleted }, `deleted tenant ${tenantId} and everything it owned`);
  return deleted;
}

/**
 * Ends and deletes the tenant's oldest handovers, up to `limit` of them (null: all), in the caller's
 * transaction: ended first, so that the same deletion as the retention job's and an erasure's takes
 * them.
 */
async function endAndDeleteHandovers(q: Queryable, tenantId: string, limit: number | null) {
  const { rows } = await q.query<{ id: string }>('select id from handovers where tenant_id = $1 order by created_at limit $2 for update', [tenantId, limit]);
  const ids = rows.map((r) => r.id);
  if (ids.length > 0) {
    await q.query(
      `update handovers set state = 'ended', ended_at = coalesce(ended_at, now()), end_reason = coalesce(end_reason, 'abandoned')
       where id = any($1) and state <> 'ended'`,
      [ids],
    );
  }
  return { found: ids.length, ...(await deleteHandovers(q, tenantId, ids)) };
}
