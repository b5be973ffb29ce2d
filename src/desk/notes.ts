import type { Queryable } from '../store/db.js';
import { newId } from '../store/ids.js';
import type { Deps } from '../handover/deps.js';
import { findHandover } from '../handover/queries.js';
import type { Agent } from './agents.js';
import { assertDeskVisible } from './visibility.js';

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

interface NoteRow {
  id: string;
  handover_id: string;
  kind: NoteKind;
  queue_name: string | null;
  agent_id: string | null;
  agent_name: string;
  text: string;
  created_at: Date;
}

const toNote = (row: NoteRow): Note => ({
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

/** An agent notes something on a chat they can read (held, in their queues, or any as a supervisor; live or ended). */
export async function addNote(deps: Deps, input: { agent: Agent; handoverId: string; text: string }): Promise<Note> {
  const handover = await findHandover(deps.db, input.agent.tenantId, input.handoverId);
  assertDeskVisible(input.agent, handover);
  const note = await insertNote(deps.db, { tenantId: input.agent.tenantId, handoverId: handover.id, agent: input.agent, kind: 'note', text: input.text });
  // Consoles re-read the chat's notes; the signal carries ids only and goes to desk consoles only.
  deps.bus.publish(`desk:${input.agent.tenantId}`, { type: 'note.created', handoverId: handover.id, noteId: note.id });
  return note;
}

/** A chat's notes, oldest first (its latest NOTES_PER_HANDOVER_MAX). */
export async function listNotes(deps: Deps, input: { agent: Agent; handoverId: string }): Promise<Note[]> {
  const handover = await findHandover(deps.db, input.agent.tenantId, input.handoverId);
  assertDeskVisible(input.agent, handover);
  const { rows } = await deps.db.query<NoteRow>(
    `select * from (
       select id, handover_id, kind, queue_name, agent_id, agent_name, text, created_at from handover_notes
       where tenant_id = $1 and handover_id = $2 order by created_at desc, id desc limit $3
     ) latest order by created_at, id`,
    [input.agent.tenantId, handover.id, NOTES_PER_HANDOVER_MAX],
  );
  return rows.map(toNote);
}
