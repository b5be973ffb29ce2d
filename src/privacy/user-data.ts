import type { Db, Queryable } from '../store/db.js';
import { AppError } from '../resilience/errors.js';
import { recordAudit } from '../audit/audit-log.js';
import type { Deps } from '../deps.js';

/**
 * One end user's data, as a tenant's bot knows the user (`user.id` of the handovers it requested): all
 * of it exported in one document, or all of it erased — handovers, messages, bot events, satisfaction
 * ratings (they go with their handover), and the work still queued for either side.
 */
export interface UserExport {
  userId: string;
  exportedAt: string;
  handovers: Array<{
    id: string;
    conversationId: string;
    state: string;
    user: unknown;
    transcript: unknown;
    metadata: unknown;
    agent: unknown;
    endReason: string | null;
    createdAt: string;
    endedAt: string | null;
    messages: Array<{ direction: string; sender: unknown; text: string; attachments: unknown; at: string }>;
    events: Array<{ id: string; type: string; data: unknown; at: string }>;
    /** The user's satisfaction rating of it, if the bot recorded one. */
    rating: { score: number; comment: string | null; at: string } | null;
  }>;
}

/**
 * Deletes those of `ids` that are the tenant's ended handovers, with everything that belongs to them:
 * messages, bot events, files, outbox items with their delivery attempts, and lanes (connector
 * sessions, notes and ratings go with them by cascade); the other ids are left alone. Inside the
 * caller's transaction. The only place handovers are deleted: messages and delivery attempts have no
 * foreign key to cascade from (migration 021, for the hot path's sake), so they are deleted here.
 */
export async function deleteHandovers(
  q: Queryable,
  tenantId: string,
  ids: string[],
): Promise<{ handovers: number; messages: number; events: number; fileKeys: string[] }> {
  const none = { handovers: 0, messages: 0, events: 0, fileKeys: [] };
  if (ids.length === 0) return none;
  // Every write of a message holds its handover's row and checks that it is live: with the rows held
  // here first, a write still under way finishes before the deletes below look, and none comes after.
  const { rows } = await q.query<{ id: string }>(`select id from handovers where tenant_id = $1 and id = any($2) and state = 'ended' order by id for update`, [
    tenantId,
    ids,
  ]);
  const gone = rows.map((r) => r.id);
  if (gone.length === 0) return none;
  const lanes = gone.flatMap((id) => [`${id}:agent`, `${id}:bot`]);
  // The files' rows go here; their bytes are removed from the store after the commit (removeStoredFiles).
  const { rows: files } = await q.query<{ storage_key: string }>(
    'delete from attachments where tenant_id = $1 and handover_id = any($2) returning storage_key',
    [tenantId, gone],
  );
  const { rowCount: messages } = await q.query('delete from messages where handover_id = any($1)', [gone]);
  const { rowCount: events } = await q.query('delete from events where tenant_id = $1 and handover_id = any($2)', [tenantId, gone]);
  // The items first: a worker recording a failed attempt holds its item's row (and writes the attempt
  // only while the item is there), so once these are deleted, every attempt of theirs is visible below.
  const { rows: items } = await q.query<{ id: string }>('delete from outbox where handover_id = any($1) returning id', [gone]);
  if (items.length > 0) await q.query('delete from delivery_attempts where outbox_id = any($1::bigint[])', [items.map((i) => i.id)]);
  await q.query('delete from outbox_lanes where lane = any($1)', [lanes]);
  const { rowCount: handovers } = await q.query('delete from handovers where id = any($1)', [gone]);
  return { handovers, messages, events, fileKeys: files.map((f) => f.storage_key) };
}

async function handoverIds(q: Queryable, tenantId: string, userId: string): Promise<Array<{ id: string; state: string }>> {
  const { rows } = await q.query<{ id: string; state: string }>(
    `select id, state from handovers where tenant_id = $1 and user_info->>'id' = $2 order by created_at`,
    [tenantId, userId],
  );
  return rows;
}

export async function exportUser(db: Db, tenantId: string, userId: string, now: Date): Promise<UserExport> {
  const { rows: handovers } = await db.query<{
    id: string;
    conversation_id: string;
    state: string;
    user_info: unknown;
    transcript: unknown;
    metadata: unknown;
    agent_info: unknown;
    end_reason: string | null;
    created_at: Date;
    ended_at: Date | null;
  }>(`select * from handovers where tenant_id = $1 and user_info->>'id' = $2 order by created_at`, [tenantId, userId]);
  const ids = handovers.map((h) => h.id);
  const { rows: messages } = await db.query<{ handover_id: string; direction: string; sender: unknown; text: string; attachments: unknown; created_at: Date }>(
    'select handover_id, direction, sender, text, attachments, created_at from messages where handover_id = any($1) order by handover_id, seq',
    [ids],
  );
  const { rows: events } = await db.query<{ id: string; handover_id: string; type: string; data: unknown; created_at: Date }>(
    'select id, handover_id, type, data, created_at from events where tenant_id = $1 and handover_id = any($2) order by pos',
    [tenantId, ids],
  );
  const { rows: ratings } = await db.query<{ handover_id: string; score: number; comment: string | null; created_at: Date }>(
    'select handover_id, score, comment, created_at from handover_ratings where tenant_id = $1 and handover_id = any($2)',
    [tenantId, ids],
  );
  const ratingOf = (id: string) => {
    const r = ratings.find((x) => x.handover_id === id);
    return r ? { score: Number(r.score), comment: r.comment, at: r.created_at.toISOString() } : null;
  };
  return {
    userId,
    exportedAt: now.toISOString(),
    handovers: handovers.map((h) => ({
      id: h.id,
      conversationId: h.conversation_id,
      state: h.state,
      user: h.user_info,
      transcript: h.transcript,
      metadata: h.metadata,
      agent: h.agent_info,
      endReason: h.end_reason,
      createdAt: h.created_at.toISOString(),
      endedAt: h.ended_at ? h.ended_at.toISOString() : null,
      messages: messages
        .filter((m) => m.handover_id === h.id)
        .map((m) => ({ direction: m.direction, sender: m.sender, text: m.text, attachments: m.attachments, at: m.created_at.toISOString() })),
      events: events.filter((e) => e.handover_id === h.id).map((e) => ({ id: e.id, type: e.type, data: e.data, at: e.created_at.toISOString() })),
      rating: ratingOf(h.id),
    })),
  };
}

/**
 * Erases everything of one end user, in one transaction. A user in a live handover is not erased: the
 * bot ends it first (erasing it under an agent's eyes would break the conversation, not end it).
 */
export async function eraseUser(
  deps: Pick<Deps, 'db' | 'userIds' | 'attachments' | 'log'>,
  tenantId: string,
  userId: string,
  audit: { actor: string; address?: string },
): Promise<{ handovers: number; messages: number; events: number }> {
  const { fileKeys, ...counts } = await deps.db.transaction(async (q) => {
    const handovers = await handoverIds(q, tenantId, userId);
    const live = handovers.filter((h) => h.state !== 'ended');
    if (live.length > 0) {
      throw new AppError('user_has_live_handover', {
        message: `The user is in ${live.length} live handover(s) (${live.map((h) => h.id).join(', ')}); end them first.`,
      });
    }
    const { fileKeys, ...erased } = await deleteHandovers(
      q,
      tenantId,
      handovers.map((h) => h.id),
    );
    // In the same transaction: an erasure is never done without its record. The user's id is personal
    // data too: the log keeps a keyed digest of it (and the key's id), enough to answer "was this user
    // erased?" for whoever holds the key (findErasures), not to guess who from a list of emails.
    await recordAudit(q, {
      actor: audit.actor,
      action: 'user.erased',
      tenantId,
      outcome: 200,
      details: { ...deps.userIds.digest(tenantId, userId), ...erased, files: fileKeys.length },
      ...(audit.address ? { address: audit.address } : {}),
    });
    return { ...erased, fileKeys };
  });
  await removeStoredFiles(deps, fileKeys);
  return counts;
}

/**
 * Removes deleted attachments' bytes from the store, after the rows' deletion committed (never a call
 * to the store inside a transaction). A file the store cannot remove now is logged and left: its row is
 * gone, so no link can ever serve it again.
 */
export async function removeStoredFiles(deps: Pick<Deps, 'attachments' | 'log'>, keys: string[]): Promise<void> {
  const store = deps.attachments?.store;
  if (!store) return;
  for (const key of keys) {
    await store.delete(key).catch((err: unknown) => deps.log.warn({ err, key }, 'an erased attachment could not be removed from the store; its row is gone'));
  }
}
