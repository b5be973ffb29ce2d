import type { Queryable } from '../store/db.js';
import { newId } from '../store/ids.js';
import { isUniqueViolation } from '../store/pg-errors.js';
import { AppError } from '../resilience/errors.js';
import type { Agent } from '../model/agent.js';

/**
 * Canned responses (docs/desk.md, "Canned responses"): ready-made replies, the tenant's (managed by
 * supervisors) and each agent's own. An agent sees the tenant's and their own, never a colleague's.
 */
export const cannedScopes = ['tenant', 'personal'] as const;
export type CannedScope = (typeof cannedScopes)[number];

export interface CannedResponse {
  id: string;
  scope: CannedScope;
  shortcut: string;
  text: string;
  updatedAt: Date;
}

interface CannedRow {
  id: string;
  agent_id: string | null;
  shortcut: string;
  text: string;
  updated_at: Date;
}

const toCanned = (row: CannedRow): CannedResponse => ({
  id: row.id,
  scope: row.agent_id ? 'personal' : 'tenant',
  shortcut: row.shortcut,
  text: row.text,
  updatedAt: row.updated_at,
});

/** The most a search answers: the picker shows a handful, and every list is bounded. */
export const CANNED_LIST_MAX = 100;

/** `%`, `_` and `\` typed by the agent are matched as themselves. */
export function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * The canned responses an agent may use, the tenant's and their own: those whose shortcut starts with
 * `query` first, then those whose text contains it; by shortcut, own before the tenant's on a tie.
 */
export async function searchCannedResponses(
  q: Queryable,
  agent: Pick<Agent, 'id' | 'tenantId'>,
  input: { query: string; limit: number },
): Promise<CannedResponse[]> {
  const query = input.query.trim().toLowerCase();
  const { rows } = await q.query<CannedRow>(
    `select id, agent_id, shortcut, text, updated_at from canned_responses
     where tenant_id = $1 and (agent_id is null or agent_id = $2)
       and ($3 = '' or lower(shortcut) like $4 escape '\\' or lower(text) like $5 escape '\\')
     order by (lower(shortcut) like $4 escape '\\') desc, shortcut, agent_id is null, id
     limit $6`,
    [agent.tenantId, agent.id, query, `${likePattern(query).slice(1)}`, likePattern(query), Math.min(input.limit, CANNED_LIST_MAX)],
  );
  return rows.map(toCanned);
}

/** Only a supervisor writes the tenant's canned responses; anyone writes their own. */
function assertMayWrite(agent: Pick<Agent, 'role'>, scope: CannedScope): void {
  if (scope === 'tenant' && agent.role !== 'supervisor')
    throw new AppError('forbidden_role', { message: "The tenant's canned responses are managed by supervisors; add a personal one instead." });
}

const duplicate = (shortcut: string, scope: CannedScope) =>
  new AppError('already_exists', {
    message: `A ${scope === 'tenant' ? "tenant's" : 'personal'} canned response with the shortcut "${shortcut}" already exists.`,
  });

export async function createCannedResponse(
  q: Queryable,
  agent: Pick<Agent, 'id' | 'tenantId' | 'role'>,
  input: { scope: CannedScope; shortcut: string; text: string },
): Promise<CannedResponse> {
  assertMayWrite(agent, input.scope);
  try {
    const { rows } = await q.query<CannedRow>(
      `insert into canned_responses (id, tenant_id, agent_id, shortcut, text) values ($1, $2, $3, $4, $5)
       returning id, agent_id, shortcut, text, updated_at`,
      [newId('cannedResponse'), agent.tenantId, input.scope === 'personal' ? agent.id : null, input.shortcut, input.text],
    );
    return toCanned(rows[0]!);
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicate(input.shortcut, input.scope);
    throw err;
  }
}

/** One the agent may use (the tenant's or their own); any other id is answered as unknown. */
async function findUsable(q: Queryable, agent: Pick<Agent, 'id' | 'tenantId'>, id: string): Promise<CannedResponse> {
  const { rows } = await q.query<CannedRow>(
    'select id, agent_id, shortcut, text, updated_at from canned_responses where id = $1 and tenant_id = $2 and (agent_id is null or agent_id = $3)',
    [id, agent.tenantId, agent.id],
  );
  if (!rows[0]) throw new AppError('canned_response_not_found');
  return toCanned(rows[0]);
}

export async function updateCannedResponse(
  q: Queryable,
  agent: Pick<Agent, 'id' | 'tenantId' | 'role'>,
  id: string,
  change: { shortcut?: string | undefined; text?: string | undefined },
): Promise<CannedResponse> {
  const current = await findUsable(q, agent, id);
  assertMayWrite(agent, current.scope);
  try {
    const { rows } = await q.query<CannedRow>(
      `update canned_responses set shortcut = coalesce($3, shortcut), text = coalesce($4, text), updated_at = now()
       where id = $1 and tenant_id = $2 returning id, agent_id, shortcut, text, updated_at`,
      [id, agent.tenantId, change.shortcut ?? null, change.text ?? null],
    );
    if (!rows[0]) throw new AppError('canned_response_not_found');
    return toCanned(rows[0]);
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicate(change.shortcut ?? current.shortcut, current.scope);
    throw err;
  }
}

export async function deleteCannedResponse(q: Queryable, agent: Pick<Agent, 'id' | 'tenantId' | 'role'>, id: string): Promise<void> {
  const current = await findUsable(q, agent, id);
  assertMayWrite(agent, current.scope);
  await q.query('delete from canned_responses where id = $1 and tenant_id = $2', [id, agent.tenantId]);
}

/** What placeholders are filled from: the chat's user and the agent answering. */
export interface PlaceholderValues {
  user: { id?: string | undefined; name?: string | undefined; email?: string | undefined };
  agent: { name?: string | undefined; email?: string | undefined };
}

export const placeholderNames = ['user.name', 'user.id', 'user.email', 'agent.name', 'agent.email'] as const;

/**
 * Fills `{{user.name}}`, `{{agent.name}}`, … (spaces inside the braces allowed). A known placeholder
 * without a value becomes empty; anything else in braces is left as written, so a typo shows.
 */
export function fillPlaceholders(text: string, values: PlaceholderValues): string {
  return text.replace(/\{\{\s*(user|agent)\.(id|name|email)\s*\}\}/g, (whole, who: 'user' | 'agent', field: string) => {
    if (who === 'agent' && field === 'id') return whole;
    const value = (values[who] as Record<string, string | undefined>)[field];
    return typeof value === 'string' ? value : '';
  });
}
