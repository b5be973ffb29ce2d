import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../../deps.js';
import { AppError, errorCatalogue } from '../../resilience/errors.js';
import { authenticateSession, endSessions, listTeam, login, logout, setPresence } from '../../desk/agents.js';
import { presences, type Agent } from '../../model/agent.js';
import { listQueues } from '../../routing/queues.js';
import { guessingSource, LoginAttempts, type LoginAttempt } from '../../desk/login-attempts.js';
import { getHandover, listMessages } from '../../handover/queries.js';
import { acceptHandover, acceptNext, endHandover, transferHandover } from '../../handover/lifecycle.js';
import { postAgentMessage, postAgentTyping } from '../../handover/messages.js';
import { estimateAt, waitPerPlace } from '../../routing/availability.js';
import { toHandover } from '../../model/handover.js';
import { listDeskHandovers, listHeldChats, waitingPerQueue } from '../../desk/desk-lists.js';
import { deskAuth, supervisorOnly } from '../auth.js';
import { openSse } from '../sse.js';
import { endWithCredential, StreamCounts } from '../stream-guard.js';
import { digest } from '../../tenants/tenants.js';
import { handoverJson, messageJson } from '../views.js';
import {
  HandoverSchema,
  IdParams,
  MessageSchema,
  NewMessageBody,
  Nullable,
  TranscriptSchema,
  TypingBody,
  emptyBodyAsObject,
  errorResponses,
  literalUnion,
} from '../schemas.js';
import { TtlCache } from '../../store/ttl-cache.js';
import { recordAuditAfter } from '../../audit/audit-log.js';
import { clearedSessionCookie, csrfTokenFor, sessionCookie } from '../../desk/session-cookie.js';
import { resolveAttachments, withFreshLinks } from '../../attachments/attachments.js';
import { subscribeDeskSignals } from '../../bus/desk-signals.js';

const tags = ['Desk API'];
const security = [{ deskSession: [] }];

const DeskHandoverSchema = Type.Intersect(
  [HandoverSchema, Type.Object({ transcript: TranscriptSchema, queue: Type.String(), waitingSeconds: Type.Integer() })],
  { title: 'DeskHandover' },
);
const AgentSchema = Type.Object(
  {
    id: Type.String(),
    tenantId: Type.String(),
    email: Type.String(),
    name: Type.String(),
    role: Type.String({ description: '`agent` or `supervisor`' }),
    presence: Type.String(),
    maxChats: Type.Integer(),
    queueIds: Nullable(Type.Array(Type.String())),
  },
  { title: 'DeskAgent' },
);
const TeamMemberSchema = Type.Intersect(
  [
    AgentSchema,
    Type.Object({
      signedIn: Type.Boolean({ description: 'Has a live session (can be signed out).' }),
      online: Type.Boolean({
        description:
          'Signed in with a desk console open now, or closed less than HANDOVER_PRESENCE_GRACE_MS ago: counts for availability when `presence` is `available`.',
      }),
      activeChats: Type.Integer(),
    }),
  ],
  { title: 'TeamMember' },
);
const AgentParams = Type.Object({ agentId: Type.String({ minLength: 1, maxLength: 64 }) });

const agentJson = (a: Agent) => ({
  id: a.id,
  tenantId: a.tenantId,
  email: a.email,
  name: a.name,
  role: a.role,
  presence: a.presence,
  maxChats: a.maxChats,
  queueIds: a.queueIds,
});

export function deskRoutes(deps: Deps): FastifyPluginAsync {
  const failuresByAddress = new TtlCache<string, number>(deps.config.desk.loginLockSeconds * 1000, 100_000);
  // Reached over https (as behind any real deployment's TLS): the cookie is sent over https only.
  const secureCookies = deps.config.publicUrl.startsWith('https:');
  const openStreams = new StreamCounts(deps.config.http.streams.maxPerCredential);
  const loginAttempts = new LoginAttempts(deps.config.desk.loginMaxFailures, deps.config.desk.loginLockSeconds);
  return async (plugin) => {
    const app = plugin.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/v1/desk/login',
      {
        schema: {
          tags,
          summary: 'Sign in; returns a session token for the Authorization header',
          body: Type.Object(
            {
              email: Type.String({ minLength: 1, maxLength: 320 }),
              password: Type.String({ minLength: 1, maxLength: 512 }),
              tenantId: Type.Optional(Type.String({ maxLength: 64 })),
            },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ token: Type.String(), csrfToken: Type.String(), expiresAt: Type.String(), agent: AgentSchema }), ...errorResponses },
        },
      },
      async (request, reply) => {
        // Per client address too, so guessing across many accounts (or unknown ones) is bounded as well.
        // Counted before the attempt (synchronously, so parallel attempts all count); a success takes
        // its count back.
        // An IPv6 client counts by its /64 (guessingSource).
        const source = guessingSource(request.ip);
        const attempts = (failuresByAddress.get(source) ?? 0) + 1;
        if (attempts > deps.config.desk.loginMaxFailuresPerAddress) {
          throw new AppError('too_many_login_attempts', {
            message: `Too many failed sign-ins from this address; try again in up to ${deps.config.desk.loginLockSeconds} s.`,
            retryAfterSeconds: deps.config.desk.loginLockSeconds,
          });
        }
        failuresByAddress.set(source, attempts);
        // The typed email names the account tried; anything that does not look like one (a password in
        // the wrong field) is not kept.
        const typed = request.body.email.trim().toLowerCase();
        const actor = `agent:${/^[^\s@]{1,64}@[^\s@]{1,255}$/.test(typed) ? typed : '[not an email]'}`;
        const audit = (action: string, outcome: number, tenantId: string | null) =>
          recordAuditAfter(deps.db, { actor, action, tenantId, outcome, address: request.ip }, request.log, 'a sign-in');
        let attempt: LoginAttempt | undefined;
        try {
          attempt = loginAttempts.begin(request.body.email, source);
          const session = await login(deps, request.body, attempt);
          failuresByAddress.set(source, Math.max(0, (failuresByAddress.get(source) ?? 1) - 1));
          await audit('desk.login', 200, session.agent.tenantId);
          // The console uses the HttpOnly cookie (and the CSRF token for writes); API clients the token.
          reply.header('set-cookie', sessionCookie(session.token, deps.config.desk.sessionTtlSeconds, secureCookies));
          return { token: session.token, csrfToken: csrfTokenFor(session.token), expiresAt: session.expiresAt.toISOString(), agent: agentJson(session.agent) };
        } catch (err) {
          if (err instanceof AppError && (err.code === 'invalid_credentials' || err.code === 'too_many_login_attempts')) {
            await audit(err.code === 'invalid_credentials' ? 'desk.login.failed' : 'desk.login.locked', err.status, null);
          } else {
            // Not a wrong password (the database failed, say): neither count keeps the attempt.
            attempt?.abandoned();
            failuresByAddress.set(source, Math.max(0, (failuresByAddress.get(source) ?? 1) - 1));
          }
          throw err;
        }
      },
    );

    // Everything below needs a session.
    await app.register(async (scoped) => {
      const desk = scoped.withTypeProvider<TypeBoxTypeProvider>();
      desk.addHook('onRequest', deskAuth(deps.db, deps.config.desk.sessionIdleSeconds));

      desk.post('/v1/desk/logout', { schema: { tags, security, response: { 204: Type.Null(), ...errorResponses } } }, async (request, reply) => {
        await logout(deps, request.sessionToken, request.agent);
        return reply.header('set-cookie', clearedSessionCookie(secureCookies)).code(204).send(null);
      });

      desk.get(
        '/v1/desk/session',
        {
          schema: {
            tags,
            security,
            summary: "The signed-in agent and the session's CSRF token (for a console that has the cookie)",
            response: { 200: Type.Object({ agent: AgentSchema, csrfToken: Type.String() }), ...errorResponses },
          },
        },
        async (request) => ({ agent: agentJson(request.agent), csrfToken: csrfTokenFor(request.sessionToken) }),
      );

      desk.get('/v1/desk/me', { schema: { tags, security, response: { 200: AgentSchema, ...errorResponses } } }, async (request) => agentJson(request.agent));

      desk.put(
        '/v1/desk/presence',
        {
          schema: {
            tags,
            security,
            summary: 'Available agents receive chats while a desk console of theirs is open (GET /v1/desk/events); away agents do not',
            body: Type.Object({ presence: literalUnion(presences) }, { additionalProperties: false }),
            response: { 200: AgentSchema, ...errorResponses },
          },
        },
        async (request) => agentJson(await setPresence(deps, request.agent, request.body.presence)),
      );

      desk.get(
        '/v1/desk/queues',
        {
          schema: {
            tags,
            security,
            response: {
              200: Type.Object({ queues: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), waiting: Type.Integer() })) }),
              ...errorResponses,
            },
          },
        },
        async (request) => {
          const queues = (await listQueues(deps.db, request.tenantId)).filter(
            (q) => !q.connectorId && (!request.agent.queueIds || request.agent.queueIds.includes(q.id)),
          );
          const waiting = await waitingPerQueue(deps.db, request.tenantId);
          return { queues: queues.map((q) => ({ id: q.id, name: q.name, waiting: waiting.get(q.id) ?? 0 })) };
        },
      );

      desk.get(
        '/v1/desk/handovers',
        {
          schema: {
            tags,
            security,
            summary: 'Users waiting in your queues (longest wait first) and your own chats',
            response: { 200: Type.Object({ waiting: Type.Array(DeskHandoverSchema), mine: Type.Array(DeskHandoverSchema) }), ...errorResponses },
          },
        },
        async (request) => {
          const agent = request.agent;
          const rows = await listDeskHandovers(deps.db, agent);
          const now = deps.now().getTime();
          const positions = new Map<string, number>();
          // Read once per queue, not once per user waiting in it.
          const perPlace = new Map<string, number | null>();
          const waiting = [];
          const mine = [];
          for (const row of rows) {
            const h = toHandover(row);
            const base = { transcript: h.transcript, queue: row.queue_name, waitingSeconds: Math.max(0, Math.round((now - h.queuedAt.getTime()) / 1000)) };
            if (h.state === 'queued') {
              const position = (positions.get(h.queueId) ?? 0) + 1;
              positions.set(h.queueId, position);
              if (!perPlace.has(h.queueId)) perPlace.set(h.queueId, await waitPerPlace(deps.db, h.queueId));
              waiting.push({
                ...handoverJson({ handover: h, position, estimatedWaitSeconds: estimateAt(perPlace.get(h.queueId) ?? null, position) }),
                ...base,
              });
            } else {
              mine.push({ ...handoverJson({ handover: h, position: null, estimatedWaitSeconds: null }), ...base });
            }
          }
          return { waiting, mine };
        },
      );

      desk.get(
        '/v1/desk/handovers/:id/messages',
        {
          schema: {
            tags,
            security,
            params: IdParams,
            querystring: Type.Object({
              after: Type.Optional(Type.String({ pattern: '^[0-9]{1,12}$', description: 'Sequence number of the last message you have.' })),
            }),
            response: { 200: Type.Object({ messages: Type.Array(MessageSchema) }), ...errorResponses },
          },
        },
        async (request) => {
          const view = await getHandover(deps.db, request.tenantId, request.params.id);
          assertVisible(request.agent, view.handover);
          const messages = await listMessages(deps.db, request.tenantId, request.params.id, Number(request.query.after ?? 0), 1000);
          return { messages: messages.map((m) => messageJson(m, (a) => withFreshLinks(deps, a))) };
        },
      );

      desk.post(
        '/v1/desk/handovers/:id/accept',
        { schema: { tags, security, params: IdParams, response: { 200: HandoverSchema, ...errorResponses } } },
        async (request) => {
          const handover = await acceptHandover(deps, { agent: request.agent, handoverId: request.params.id });
          return handoverJson({ handover, position: null, estimatedWaitSeconds: null });
        },
      );

      desk.post(
        '/v1/desk/accept-next',
        {
          schema: {
            tags,
            security,
            summary: 'Take whoever has waited longest (FIFO)',
            body: Type.Optional(Type.Object({ queue: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false })),
            response: { 200: Type.Object({ handover: Nullable(HandoverSchema) }), ...errorResponses },
          },
        },
        async (request) => {
          const handover = await acceptNext(deps, { agent: request.agent, queue: request.body?.queue });
          return { handover: handover ? handoverJson({ handover, position: null, estimatedWaitSeconds: null }) : null };
        },
      );

      desk.post(
        '/v1/desk/handovers/:id/messages',
        { schema: { tags, security, params: IdParams, body: NewMessageBody, response: { 202: Type.Object({ id: Type.String() }), ...errorResponses } } },
        async (request, reply) => {
          const agent = request.agent;
          const { id } = await postAgentMessage(deps, {
            tenantId: agent.tenantId,
            handoverId: request.params.id,
            clientId: request.body.id,
            text: request.body.text,
            attachments: await resolveAttachments(deps, { tenantId: agent.tenantId, handoverId: request.params.id, attachments: request.body.attachments }),
            agent: { id: agent.id, name: agent.name },
            source: 'desk',
          });
          return reply.code(202).send({ id });
        },
      );

      desk.post(
        '/v1/desk/handovers/:id/typing',
        { schema: { tags, security, params: IdParams, body: TypingBody, response: { 202: Type.Object({}), ...errorResponses } } },
        async (request, reply) => {
          await postAgentTyping(deps, {
            tenantId: request.tenantId,
            handoverId: request.params.id,
            typing: request.body.typing,
            agentId: request.agent.id,
            source: 'desk',
          });
          return reply.code(202).send({});
        },
      );

      desk.post(
        '/v1/desk/handovers/:id/transfer',
        {
          schema: {
            tags,
            security,
            params: IdParams,
            body: Type.Object(
              {
                queue: Type.String({ minLength: 1, maxLength: 200 }),
                note: Type.Optional(
                  Type.String({ maxLength: 5000, description: 'An internal note for the agent who takes the chat next (never sent to the user).' }),
                ),
              },
              { additionalProperties: false },
            ),
            response: { 200: HandoverSchema, ...errorResponses },
          },
        },
        async (request) => {
          const handover = await transferHandover(deps, {
            agent: request.agent,
            handoverId: request.params.id,
            queue: request.body.queue,
            note: request.body.note,
          });
          return handoverJson({ handover, position: null, estimatedWaitSeconds: null });
        },
      );

      desk.post(
        '/v1/desk/handovers/:id/end',
        {
          // The body is optional: none (or an empty one) ends with the default reason.
          preValidation: emptyBodyAsObject,
          schema: {
            tags,
            security,
            params: IdParams,
            body: Type.Optional(
              Type.Object({ reason: Type.Optional(literalUnion(['agent_ended', 'user_ended', 'abandoned'] as const)) }, { additionalProperties: false }),
            ),
            response: { 200: HandoverSchema, ...errorResponses },
          },
        },
        async (request) => {
          const handover = await endHandover(deps, {
            tenantId: request.tenantId,
            handoverId: request.params.id,
            reason: request.body?.reason ?? 'agent_ended',
            by: 'desk',
            agent: request.agent,
          });
          return handoverJson({ handover, position: null, estimatedWaitSeconds: null });
        },
      );

      // Supervisors: the team at a glance, and the means to take back an absent agent's chats.
      desk.get(
        '/v1/desk/team',
        {
          preValidation: supervisorOnly,
          schema: {
            tags,
            security,
            summary: 'Supervisors: every agent of the tenant with presence and load, and every chat held on the desk',
            response: {
              200: Type.Object({
                agents: Type.Array(TeamMemberSchema),
                chats: Type.Array(
                  Type.Object({
                    id: Type.String(),
                    agentId: Type.String(),
                    queue: Type.String(),
                    acceptedAt: Nullable(Type.String()),
                    userName: Nullable(Type.String()),
                  }),
                ),
              }),
              ...errorResponses,
            },
          },
        },
        async (request) => {
          const agents = await listTeam(deps.db, request.tenantId);
          const chats = await listHeldChats(deps.db, request.tenantId);
          return {
            agents: agents.map((a) => ({ ...agentJson(a), signedIn: a.signedIn, online: a.online, activeChats: a.activeChats })),
            chats: chats.map((c) => ({ ...c, acceptedAt: c.acceptedAt?.toISOString() ?? null })),
          };
        },
      );

      desk.put(
        '/v1/desk/agents/:agentId/presence',
        {
          preValidation: supervisorOnly,
          schema: {
            tags,
            security,
            summary: 'Supervisors: set an agent away (one who left without saying so stops receiving chats); only the agent makes themselves available',
            params: AgentParams,
            body: Type.Object({ presence: literalUnion(['away'] as const) }, { additionalProperties: false }),
            response: { 200: AgentSchema, ...errorResponses },
          },
        },
        async (request) => agentJson(await setPresence(deps, { id: request.params.agentId, tenantId: request.tenantId }, request.body.presence)),
      );

      desk.post(
        '/v1/desk/agents/:agentId/sign-out',
        {
          preValidation: supervisorOnly,
          schema: {
            tags,
            security,
            summary: 'Supervisors: end every session of an agent (a lost laptop, someone who left); their open consoles close',
            params: AgentParams,
            response: { 200: Type.Object({ endedSessions: Type.Integer() }), ...errorResponses },
          },
        },
        async (request) => {
          const endedSessions = await endSessions(deps, request.tenantId, request.params.agentId);
          await recordAuditAfter(
            deps.db,
            {
              actor: `agent:${request.agent.email}`,
              action: 'desk.agent.signed_out',
              tenantId: request.tenantId,
              outcome: 200,
              details: { agentId: request.params.agentId, by: request.agent.id, endedSessions },
              address: request.ip,
            },
            request.log,
            'a sign-out',
          );
          return { endedSessions };
        },
      );

      desk.get(
        '/v1/desk/events',
        {
          config: { admission: 'stream' },
          // A HEAD of a stream would open one that never sends its head: no such route (Fastify adds one per GET).
          exposeHeadRoute: false,
          schema: { tags, security, summary: 'Live signals for the console (Server-Sent Events); re-read state on each', response: errorResponses },
        },
        async (request, reply) => {
          const { agent, sessionToken } = request;
          const release = openStreams.take(digest(sessionToken), 'desk session');
          const stream = openSse(request, reply);
          stream.onClose(release);
          // While this stream is open the agent is at a desk: online (docs/desk.md, "Presence"). `ready`
          // goes once that is recorded, so a client that sees it is counted everywhere.
          const atDesk = deps.deskConsoles.open(agent);
          stream.onClose(atDesk.release);
          const sessionEnded = () => ({
            event: 'session.ended',
            data: { agentId: agent.id, error: { code: 'session_ended', message: errorCatalogue.session_ended.message } },
          });
          // An open console is in use: its checks keep its session from going idle. A session that has
          // ended (logout, signed out by a supervisor or an admin, idle, past its lifetime) ends the stream
          // at the next check: at once on a signal, within HANDOVER_STREAM_RECHECK_MS otherwise.
          const idleSeconds = deps.config.desk.sessionIdleSeconds;
          const watch = endWithCredential(stream, {
            everyMs: Math.min(deps.config.http.streams.recheckMs, (idleSeconds * 1000) / 3),
            stillValid: () =>
              authenticateSession(deps.db, sessionToken, idleSeconds).then(
                () => true,
                (err: unknown) => {
                  if (err instanceof AppError && err.code === 'unauthorized') return false;
                  throw err;
                },
              ),
            finalEvent: sessionEnded,
            log: request.log,
          });
          const unsubscribe = subscribeDeskSignals(deps.bus, request.tenantId, (signal) => {
            // Some session of this agent ended (all of them, for a sign-out): is it this one? Never passed
            // on: another console of the tenant would take it for its own.
            if (signal.type === 'session.ended' || signal.type === 'agent.signed_out') {
              if (signal.agentId === agent.id) watch.recheck();
              if (signal.type === 'session.ended') return;
            }
            // A chat waiting in a queue the agent does not serve is not one to show them (assertDeskVisible).
            // Transfers still go to everyone: one out of the agent's queues must take the chat off their
            // console. The agent's queues are those of the stream's start (renewed within
            // HANDOVER_DESK_STREAM_RENEW_MS).
            if (signal.type === 'handover.queued' && !servesQueue(request.agent, signal.queueId)) return;
            void stream.send({ event: signal.type, data: signal });
          });
          stream.onClose(unsubscribe);
          await atDesk.recorded;
          await stream.send({ event: 'ready', data: { agentId: agent.id } });
          // Renewed now and then: a console that vanished without closing the connection (a laptop put to
          // sleep) does not come back, and stops counting within the renewal plus the grace.
          const renew = setTimeout(() => void stream.send({ event: 'renew', data: {} }).finally(() => stream.end()), deps.config.desk.consoleRenewMs);
          renew.unref();
          stream.onClose(() => clearTimeout(renew));
        },
      );
    });
  };
}

/** An agent reads the chats they hold and those of their queues; a supervisor every desk chat. */
function assertVisible(agent: Agent, handover: { connectorId: string | null; state: string; agentId: string | null; queueId: string }): void {
  if (handover.connectorId) throw new AppError('handover_not_found');
  if (agent.role === 'supervisor' || handover.agentId === agent.id) return;
  if (agent.queueIds && !agent.queueIds.includes(handover.queueId)) throw new AppError('handover_not_found');
}

/** Whether a chat waiting in this queue is one the agent may see: a supervisor sees every queue. */
function servesQueue(agent: Pick<Agent, 'role' | 'queueIds'>, queueId: string): boolean {
  return agent.role === 'supervisor' || agent.queueIds === null || agent.queueIds.includes(queueId);
}
