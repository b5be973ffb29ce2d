import type { Queryable } from '../store/db.js';
import { AppError } from '../resilience/errors.js';
import type { Deps } from '../deps.js';
import { findHandover } from '../handover/queries.js';
import { publishDeskSignal } from '../bus/desk-signals.js';

/**
 * Post-chat satisfaction ratings (docs/desk.md, "Satisfaction ratings"): once a handover has ended, the
 * bot may ask the user for a score of 1 to 5 and a comment, and records it here, once. Sending the same
 * rating again is answered as the first time (a retry after a lost answer); a different one is refused,
 * so a rating cannot be changed behind the agent's back. Desk history and metrics read it.
 */
export const RATING_MIN = 1;
export const RATING_MAX = 5;
export const RATING_COMMENT_MAX = 2000;

export interface Rating {
  handoverId: string;
  score: number;
  comment: string | null;
  createdAt: Date;
}

interface RatingRow {
  handover_id: string;
  score: number;
  comment: string | null;
  created_at: Date;
}

const toRating = (row: RatingRow): Rating => ({ handoverId: row.handover_id, score: Number(row.score), comment: row.comment, createdAt: row.created_at });

/** Records the user's rating of an ended handover. `created` is false when the same rating was already there. */
export async function rateHandover(
  deps: Deps,
  input: { tenantId: string; handoverId: string; score: number; comment?: string | undefined },
): Promise<{ rating: Rating; created: boolean }> {
  const handover = await findHandover(deps.db, input.tenantId, input.handoverId);
  if (handover.state !== 'ended') throw new AppError('handover_not_ended');
  const comment = input.comment?.trim() || null;
  const { rows } = await deps.db.query<RatingRow>(
    `insert into handover_ratings (handover_id, tenant_id, score, comment) values ($1, $2, $3, $4)
     on conflict (handover_id) do nothing
     returning handover_id, score, comment, created_at`,
    [handover.id, input.tenantId, input.score, comment],
  );
  if (rows[0]) {
    const rating = toRating(rows[0]);
    deps.funnel?.rated(input.tenantId, rating.score);
    // Consoles showing this chat (closed, or still on screen after it ended) add the rating.
    publishDeskSignal(deps.bus, input.tenantId, { type: 'handover.rated', handoverId: handover.id, score: rating.score });
    return { rating, created: true };
  }
  const existing = await findRating(deps.db, input.tenantId, handover.id);
  if (!existing) throw new Error(`the rating of ${handover.id} conflicted on insert but cannot be read`);
  if (existing.score !== input.score || existing.comment !== comment) {
    throw new AppError('rating_conflict', { details: { score: existing.score, comment: existing.comment } });
  }
  return { rating: existing, created: false };
}

/** The rating of one handover of the tenant, or null. */
export async function findRating(q: Queryable, tenantId: string, handoverId: string): Promise<Rating | null> {
  const { rows } = await q.query<RatingRow>('select handover_id, score, comment, created_at from handover_ratings where tenant_id = $1 and handover_id = $2', [
    tenantId,
    handoverId,
  ]);
  return rows[0] ? toRating(rows[0]) : null;
}
