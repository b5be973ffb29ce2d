import { isForeignKeyViolation, isUniqueViolation } from '../store/pg-errors.js';
import { randomBytes } from 'node:crypto';
import type { Queryable } from '../store/db.js';
import { newId } from '../store/ids.js';
import { AppError } from '../resilience/errors.js';
import type { Deps } from '../deps.js';
import { digest } from '../tenants/tenants.js';
import { decoyHash, hashPassword, verifyPassword } from './passwords.js';
import { consoleOpenSql, liveSessionSql } from '../routing/presence.js';
import type { Agent, Presence, Role } from '../model/agent.js';
import { publishDeskSignal } from '../bus/desk-signals.js';

interface AgentRow {
  id: string;
  tenant_id: string;
  email: string;
  name: string;
  password_hash: string;
  queue_ids: string[] | null;
  max_chats: number;
  presence: Presence;
  role: Role;
  disabled_at: Date | null;
}

function toAgent(row: AgentRow): Agent {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    email: row.email,
    name: row.name,
    queueIds: row.queue_ids,
    maxChats: row.max_chats,
    presence: row.presence,
    role: row.role,
    disabled: row.disabled_at !== null,
  };
}

export async function createAgent(
  deps: Deps,
  input: {
    tenantId: string;
    email: string;
    name: string;
    password: string;
    queues?: string[] | undefined;
    maxChats?: number | undefined;
    role?: Role | undefined;
  },
): Promise<Agent> {
  const queueIds = await queueIdsByName(deps.db, input.tenantId, input.queues);
  const passwordHash = await hashPassword(input.password, deps.config.desk.passwordScryptLogN);
  try {
    const { rows } = await deps.db.query<AgentRow>(
      `insert into agents (id, tenant_id, email, name, password_hash, queue_ids, max_chats, role) values ($1, $2, $3, $4, $5, $6::jsonb, $7, $8) returning *`,
      [
        newId('agent'),
        input.tenantId,
        input.email.trim().toLowerCase(),
        input.name,
        passwordHash,
        queueIds ? JSON.stringify(queueIds) : null,
        input.maxChats ?? 3,
        input.role ?? 'agent',
      ],
    );
    return toAgent(rows[0]!);
  } catch (err) {
    if (isUniqueViolation(err)) throw new AppError('already_exists', { message: `An agent with email ${input.email} already exists.` });
    if (isForeignKeyViolation(err)) throw new AppError('tenant_not_found');
    throw err;
  }
}

/** Queue names to ids (null: every desk queue); an unknown name is refused. */
async function queueIdsByName(q: Queryable, tenantId: string, names: string[] | undefined): Promise<string[] | null> {
  if (!names || names.length === 0) return null;
  const { rows } = await q.query<{ id: string; name: string }>('select id, name from queues where tenant_id = $1 and name = any($2::text[])', [
    tenantId,
    names,
  ]);
  const missing = names.filter((name) => !rows.some((r) => r.name === name));
  if (missing.length > 0) throw new AppError('queue_not_found', { message: `No queue named ${missing.map((m) => `"${m}"`).join(', ')} for this tenant.` });
  return rows.map((r) => r.id);
}

/**
 * Changes an agent's role, queues, chat limit or password, or disables (enables) them. Takes effect on
 * the agent's next request: sessions read the agent's row each time. An empty queue list means every
 * desk queue. A new password or disabling signs the agent out everywhere: whoever had their old
 * password, or their session, has nothing left; a disabled agent cannot sign in until enabled again.
 */
export async function updateAgent(
  deps: Deps,
  tenantId: string,
  agentId: string,
  change: {
    name?: string | undefined;
    role?: Role | undefined;
    queues?: string[] | undefined;
    maxChats?: number | undefined;
    password?: string | undefined;
    disabled?: boolean | undefined;
  },
): Promise<Agent> {
  const queueIds = change.queues === undefined ? undefined : await queueIdsByName(deps.db, tenantId, change.queues);
  const passwordHash = change.password === undefined ? null : await hashPassword(change.password, deps.config.desk.passwordScryptLogN);
  const { rows } = await deps.db.query<AgentRow>(
    `update agents set name = coalesce($3, name), role = coalesce($4, role), max_chats = coalesce($5, max_chats),
       queue_ids = case when $6::boolean then $7::jsonb else queue_ids end,
       password_hash = coalesce($8, password_hash),
       disabled_at = case when $9::boolean is null then disabled_at when $9 then coalesce(disabled_at, now()) else null end
     where tenant_id = $1 and id = $2 returning *`,
    [
      tenantId,
      agentId,
      change.name ?? null,
      change.role ?? null,
      change.maxChats ?? null,
      queueIds !== undefined,
      queueIds ? JSON.stringify(queueIds) : null,
      passwordHash,
      change.disabled ?? null,
    ],
  );
  if (!rows[0]) throw new AppError('agent_not_found');
  if (passwordHash !== null || change.disabled === true) {
    await endSessions(deps, tenantId, agentId);
    return toAgent({ ...rows[0], presence: 'away' });
  }
  return toAgent(rows[0]);
}

/**
 * Signs an agent in. The answer never tells whether an email exists: an unknown email costs the same
 * password check (a decoy hash) and gets the same `invalid_credentials`. An email held by agents of
 * several tenants is checked against each of them (in parallel, so it takes as long as one): the one
 * whose password matches signs in; only a password right for several of them asks for `tenantId`.
 * Guessing is bounded by `attempts` (per email and address), never by locking the account itself.
 */
export async function login(
  deps: Deps,
  input: { email: string; password: string; tenantId?: string | undefined },
  attempts: { failed(): void; succeeded(): void },
) {
  const { rows } = await deps.db.query<AgentRow>(
    `select * from agents where lower(email) = $1 and ($2::text is null or tenant_id = $2) and disabled_at is null order by tenant_id limit 20`,
    [input.email.trim().toLowerCase(), input.tenantId ?? null],
  );
  const checks = await Promise.all(
    (rows.length > 0 ? rows : [null]).map(async (row) => ({
      row,
      ok: await verifyPassword(input.password, row?.password_hash ?? decoyHash(deps.config.desk.passwordScryptLogN)),
    })),
  );
  const matches = checks.flatMap((c) => (c.ok && c.row ? [c.row] : []));
  if (matches.length === 0) {
    attempts.failed();
    throw new AppError('invalid_credentials');
  }
  attempts.succeeded();
  if (matches.length > 1) throw new AppError('ambiguous_login');
  const row = matches[0]!;
  const token = `hds_${randomBytes(32).toString('base64url')}`;
  const expiresAt = new Date(deps.now().getTime() + deps.config.desk.sessionTtlSeconds * 1000);
  // Only while the password checked is still the agent's and the agent is not disabled: a new password
  // or disabling that landed during the check (which takes a while, by design) ends this sign-in too.
  const { rowCount } = await deps.db.query(
    `insert into agent_sessions (token_hash, agent_id, tenant_id, expires_at, idle_expires_at)
     select $1, $2, $3, $4, least($4, now() + $5 * interval '1 second')
     where exists (select 1 from agents where id = $2 and password_hash = $6 and disabled_at is null)`,
    [digest(token), row.id, row.tenant_id, expiresAt, deps.config.desk.sessionIdleSeconds, row.password_hash],
  );
  if (rowCount === 0) throw new AppError('invalid_credentials');
  return { token, expiresAt, agent: toAgent(row) };
}

/**
 * The agent of a live session, in one statement that also moves the idle deadline forward. The
 * deadline is written only when it has moved by more than a minute (or a tenth of the idle time), so
 * a busy console does not write on every request.
 */
export async function authenticateSession(q: Queryable, token: string, idleSeconds: number): Promise<Agent> {
  const { rows } = await q.query<AgentRow>(
    `with live as (select s.* from agent_sessions s where s.token_hash = $1 and ${liveSessionSql}),
     touched as (
       update agent_sessions set idle_expires_at = least(expires_at, now() + $2 * interval '1 second')
       where token_hash = (select token_hash from live)
         and idle_expires_at < expires_at
         and idle_expires_at < now() + ($2 - least(60, $2 / 10.0)) * interval '1 second'
     )
     select a.* from live join agents a on a.id = live.agent_id where a.disabled_at is null`,
    [digest(token), idleSeconds],
  );
  if (!rows[0]) throw new AppError('unauthorized', { message: 'The desk session is unknown, expired or was idle too long; sign in again.' });
  return toAgent(rows[0]);
}

/** Ends every session of an agent (a supervisor or an admin signing them out); they go away. */
export async function endSessions(deps: Deps, tenantId: string, agentId: string): Promise<number> {
  const ended = await deps.db.transaction(async (q) => {
    const { rows } = await q.query<{ token_hash: string }>('delete from agent_sessions where tenant_id = $1 and agent_id = $2 returning token_hash', [
      tenantId,
      agentId,
    ]);
    const { rowCount } = await q.query(`update agents set presence = 'away', presence_changed_at = now() where tenant_id = $1 and id = $2`, [
      tenantId,
      agentId,
    ]);
    if (rowCount === 0) throw new AppError('agent_not_found');
    return rows.length;
  });
  publishDeskSignal(deps.bus, tenantId, { type: 'agent.presence', agentId, presence: 'away' });
  publishDeskSignal(deps.bus, tenantId, { type: 'agent.signed_out', agentId });
  return ended;
}

export async function logout(deps: Deps, token: string, agent: Agent): Promise<void> {
  await deps.db.transaction(async (q) => {
    await q.query('delete from agent_sessions where token_hash = $1', [digest(token)]);
    // Without another live session the agent can no longer answer: stop counting them as online.
    await q.query(
      `update agents set presence = 'away', presence_changed_at = now()
       where id = $1 and not exists (select 1 from agent_sessions s where s.agent_id = $1 and ${liveSessionSql})`,
      [agent.id],
    );
  });
  // Its open consoles check their session and end (the signal names no session: each checks its own).
  publishDeskSignal(deps.bus, agent.tenantId, { type: 'session.ended', agentId: agent.id });
}

export async function setPresence(deps: Deps, agent: Pick<Agent, 'id' | 'tenantId'>, presence: Presence): Promise<Agent> {
  const { rows } = await deps.db.query<AgentRow>(`update agents set presence = $3, presence_changed_at = now() where tenant_id = $1 and id = $2 returning *`, [
    agent.tenantId,
    agent.id,
    presence,
  ]);
  if (!rows[0]) throw new AppError('agent_not_found');
  publishDeskSignal(deps.bus, agent.tenantId, { type: 'agent.presence', agentId: agent.id, presence });
  return toAgent(rows[0]);
}

export interface TeamMember extends Agent {
  /** Has a live session (can be signed out). */
  signedIn: boolean;
  /** Has a desk console open (or closed it less than the reconnect grace ago): can answer when available. */
  online: boolean;
  activeChats: number;
}

/** The tenant's agents with their load, for a supervisor. */
export async function listTeam(q: Queryable, tenantId: string): Promise<TeamMember[]> {
  const { rows } = await q.query<AgentRow & { signed_in: boolean; online: boolean; active_chats: number }>(
    `select a.*,
            exists (select 1 from agent_sessions s where s.agent_id = a.id and ${liveSessionSql}) as signed_in,
            exists (select 1 from agent_sessions s where s.agent_id = a.id and ${liveSessionSql}) and ${consoleOpenSql} as online,
            (select count(*)::int from handovers h where h.agent_id = a.id and h.state = 'active') as active_chats
     from agents a where a.tenant_id = $1 order by a.name, a.email limit 1000`,
    [tenantId],
  );
  return rows.map((r) => ({ ...toAgent(r), signedIn: r.signed_in, online: r.online, activeChats: r.active_chats }));
}

export async function listAgents(q: Queryable, tenantId: string): Promise<Agent[]> {
  const { rows } = await q.query<AgentRow>('select * from agents where tenant_id = $1 order by email', [tenantId]);
  return rows.map(toAgent);
}
