import type { Deps } from '../deps.js';
import { holdLease, releaseLease } from '../store/leases.js';
import { recordAudit } from '../audit/audit-log.js';
import { deleteHandovers, removeStoredFiles } from './user-data.js';

const LEASE = 'retention';
const BATCH = 500;

/**
 * Deletes, per tenant with a retention period, the conversations that ended longer ago than that —
 * handovers, messages, events, queued work — in batches, each its own transaction. One instance at a
 * time runs it (a lease); every run and what it deleted goes to the audit log.
 */
export function startRetentionJob(
  deps: Deps,
  intervalMs: number,
  holder: string,
): { stop(options?: { release?: boolean }): Promise<void>; runOnce(): Promise<number> } {
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();

  async function runOnce(): Promise<number> {
    const { rows: tenants } = await deps.db.query<{ id: string; retention_days: number }>(
      'select id, retention_days from tenants where retention_days is not null',
    );
    let total = 0;
    for (const tenant of tenants) {
      let deleted = 0;
      const files: string[] = [];
      for (;;) {
        if (stopped) return total;
        const removed = await deps.db.transaction(async (q) => {
          const { rows } = await q.query<{ id: string }>(
            `select id from handovers where tenant_id = $1 and state = 'ended' and ended_at < now() - $2 * interval '1 day' order by ended_at limit $3`,
            [tenant.id, tenant.retention_days, BATCH],
          );
          const { handovers: removed, fileKeys } = await deleteHandovers(
            q,
            tenant.id,
            rows.map((r) => r.id),
          );
          files.push(...fileKeys);
          // Each batch with its record, in its transaction: nothing is deleted unrecorded.
          if (removed > 0)
            await recordAudit(q, {
              actor: 'system',
              action: 'retention.deleted',
              tenantId: tenant.id,
              outcome: 200,
              details: { handovers: removed, retentionDays: tenant.retention_days },
            });
          return removed;
        });
        await removeStoredFiles(deps, files.splice(0));
        deleted += removed;
        if (removed < BATCH) break;
      }
      if (deleted > 0) {
        total += deleted;
        deps.log.info(
          { tenantId: tenant.id, handovers: deleted },
          `deleted ${deleted} conversation(s) past the tenant's ${tenant.retention_days}-day retention`,
        );
      }
    }
    // Inbound receipts only need to outlive the senders' retries and the 5-minute signature window.
    await deps.db.query(`delete from inbound_receipts where received_at < now() - interval '7 days'`);
    // Ended desk sessions (past their lifetime or idle time) are of no use to anyone.
    await deps.db.query(`delete from agent_sessions where expires_at < now() or idle_expires_at < now()`);
    return total;
  }

  const tick = () => {
    running = running.then(async () => {
      if (stopped) return;
      try {
        if (await holdLease(deps.db, LEASE, holder, Math.max(3 * intervalMs, 60_000))) await runOnce();
      } catch (err) {
        deps.log.warn({ err }, 'the retention run failed; it runs again at the next interval');
      }
    });
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    runOnce,
    async stop(options = {}) {
      stopped = true;
      clearInterval(timer);
      await running;
      if (options.release !== false) await releaseLease(deps.db, LEASE, holder).catch(() => undefined);
    },
  };
}
