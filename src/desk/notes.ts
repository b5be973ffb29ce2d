import type { Deps } from '../deps.js';
import { findHandover } from '../handover/queries.js';
import type { Agent } from '../model/agent.js';
import { assertDeskVisible } from './visibility.js';
import { insertNote, NOTES_PER_HANDOVER_MAX, toNote, type Note, type NoteRow } from '../handover/handover-notes.js';
import { publishDeskSignal } from '../bus/desk-signals.js';

/** An agent notes something on a chat they can read (held, in their queues, or any as a supervisor; live or ended). */
export async function addNote(deps: Deps, input: { agent: Agent; handoverId: string; text: string }): Promise<Note> {
  const handover = await findHandover(deps.db, input.agent.tenantId, input.handoverId);
  assertDeskVisible(input.agent, handover);
  const note = await insertNote(deps.db, { tenantId: input.agent.tenantId, handoverId: handover.id, agent: input.agent, kind: 'note', text: input.text });
  // Consoles re-read the chat's notes; the signal carries ids only and goes to desk consoles only.
  publishDeskSignal(deps.bus, input.agent.tenantId, { type: 'note.created', handoverId: handover.id, noteId: note.id });
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
