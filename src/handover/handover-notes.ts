import type { Queryable } from '../store/db.js';
import { newId } from '../store/ids.js';
import type { Agent } from '../model/agent.js';

/**
 * Internal notes (docs/desk.md, "Internal notes"): what agents write on a chat for each other. They are
 * kept apart from messages — no outbox row, no bot event — so nothing ever sends them to the user, the
 * bot or a helpdesk connector. A transfer can carry one for whoever takes the chat next.
 */
export const noteKinds = ['note', 'transfer'] as const;
export type NoteKind = (typeof noteKinds)[number];

export interface Note {
  id: string;
  handoverId: string;
  kind: NoteKind;
  /** With a transfer note: the queue the chat was sent to. */
  queue: string | null;
  agent: { id: string | null; name: string };
  text: string;
  createdAt: Date;
}

export interface NoteRow {
  id: string;
  handover_id: string;
  kind: NoteKind;
  queue_name: string | null;
  agent_id: string | null;
  agent_name: string;
  text: string;
  created_at: Date;
}

export const toNote = (row: NoteRow): Note => ({
  id: row.id,
  handoverId: row.handover_id,
  kind: row.kind,
  queue: row.queue_name,
  agent: { id: row.agent_id, name: row.agent_name },
  text: row.text,
  createdAt: row.created_at,
});

/** The most notes one answer lists (the latest): every list is bounded. */
export const NOTES_PER_HANDOVER_MAX = 500;

/** Writes a note (inside the caller's transaction when given one). */
export async function insertNote(
  q: Queryable,
  input: { tenantId: string; handoverId: string; agent: Pick<Agent, 'id' | 'name'>; kind: NoteKind; queueName?: string | null; text: string },
): Promise<Note> {
  const { rows } = await q.query<NoteRow>(
    `insert into handover_notes (id, tenant_id, handover_id, agent_id, agent_name, kind, queue_name, text)
     values ($1, $2, $3, $4, $5, $6, $7, $8)
     returning id, handover_id, kind, queue_name, agent_id, agent_name, text, created_at`,
    [newId('note'), input.tenantId, input.handoverId, input.agent.id, input.agent.name, input.kind, input.queueName ?? null, input.text],
  );
  return toNote(rows[0]!);
}
