import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../../deps.js';
import { addNote, listNotes } from '../../desk/notes.js';
import { noteKinds, type Note } from '../../handover/handover-notes.js';
import { deskAuth } from '../auth.js';
import { IdParams, Nullable, errorResponses, literalUnion } from '../schemas.js';

const tags = ['Desk API'];
const security = [{ deskSession: [] }];

export const NoteText = Type.String({ minLength: 1, maxLength: 5000, description: 'For agents only: never sent to the user, the bot or a helpdesk.' });
const NoteSchema = Type.Object(
  {
    id: Type.String(),
    handoverId: Type.String(),
    kind: literalUnion(noteKinds, { description: '`note`: written on the chat; `transfer`: carried by a transfer, for the agent who takes the chat next.' }),
    queue: Nullable(Type.String(), { description: 'With `transfer`: the queue the chat was sent to.' }),
    agent: Type.Object({ id: Nullable(Type.String()), name: Type.String() }),
    text: Type.String(),
    createdAt: Type.String(),
  },
  { title: 'Note' },
);

const noteJson = (n: Note) => ({
  id: n.id,
  handoverId: n.handoverId,
  kind: n.kind,
  queue: n.queue,
  agent: n.agent,
  text: n.text,
  createdAt: n.createdAt.toISOString(),
});

/** Internal notes on desk chats (docs/desk.md, "Internal notes"). */
export function deskNotesRoutes(deps: Deps): FastifyPluginAsync {
  return async (plugin) => {
    const desk = plugin.withTypeProvider<TypeBoxTypeProvider>();
    desk.addHook('onRequest', deskAuth(deps.db, deps.config.desk.sessionIdleSeconds));

    desk.get(
      '/v1/desk/handovers/:id/notes',
      { schema: { tags, security, params: IdParams, response: { 200: Type.Object({ notes: Type.Array(NoteSchema) }), ...errorResponses } } },
      async (request) => ({ notes: (await listNotes(deps, { agent: request.agent, handoverId: request.params.id })).map(noteJson) }),
    );

    desk.post(
      '/v1/desk/handovers/:id/notes',
      {
        schema: {
          tags,
          security,
          params: IdParams,
          body: Type.Object({ text: NoteText }, { additionalProperties: false }),
          response: { 201: NoteSchema, ...errorResponses },
        },
      },
      async (request, reply) =>
        reply.code(201).send(noteJson(await addNote(deps, { agent: request.agent, handoverId: request.params.id, text: request.body.text }))),
    );
  };
}
