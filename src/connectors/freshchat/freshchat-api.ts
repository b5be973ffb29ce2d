import type { Agent } from 'undici';
import { DeliveryError } from '../connector.js';
import { requestJson, type JsonResponse } from '../http-json.js';
import type { FreshchatConfig } from './freshchat-config.js';

export type FreshchatCall = <T = unknown>(
  method: 'GET' | 'POST' | 'PUT',
  path: string,
  body: unknown,
  signal: AbortSignal,
  options?: { label?: string; accept?: number[] },
) => Promise<JsonResponse<T>>;

/** Calls to one account's API (`…/v2`) with its API token. */
export function freshchatCall(dispatcher: Agent, config: FreshchatConfig): FreshchatCall {
  const base = config.baseUrl.replace(/\/$/, '');
  return (method, path, body, signal, options = {}) =>
    requestJson(dispatcher, {
      method,
      url: `${base}${path}`,
      headers: { authorization: `Bearer ${config.apiToken}` },
      ...(body !== undefined ? { body } : {}),
      signal,
      ...(options.label ? { label: options.label } : {}),
      ...(options.accept ? { accept: options.accept } : {}),
    });
}

interface FreshchatUser {
  id?: string;
  reference_id?: string | null;
}

/**
 * The Freshchat user of the bot's user (`reference_id` = the user's id): the one listed under that
 * reference id, else a new one. A list answered 404 counts as empty; a creation refused as a conflict
 * (another try created the user meanwhile) is followed by the list again.
 */
export async function userFor(call: FreshchatCall, user: { id: string; name?: string; email?: string }, signal: AbortSignal): Promise<string> {
  const listed = async () => {
    const res = await call<{ users?: FreshchatUser[] }>('GET', `/users?reference_id=${encodeURIComponent(user.id)}`, undefined, signal, {
      label: 'GET /users?reference_id=:user',
      accept: [404],
    });
    return res.status === 404 ? undefined : res.body?.users?.find((u) => u.reference_id === user.id && u.id)?.id;
  };
  const found = await listed();
  if (found) return found;
  const created = await call<FreshchatUser>(
    'POST',
    '/users',
    { reference_id: user.id, first_name: user.name ?? user.id, ...(user.email ? { email: user.email } : {}) },
    signal,
    { accept: [409] },
  );
  const id = created.status === 409 ? await listed() : created.body?.id;
  if (!id) throw new DeliveryError('Freshchat returned no user id', { retryable: true, statusCode: created.status });
  return id;
}

/** Pages of the agents list read at most for one count (100 agents each). */
const MAX_AGENT_PAGES = 10;

/**
 * Agents who set themselves available (`availability_status: AVAILABLE`, not deactivated), in one group
 * when one is given, leaving out `exceptId` (the agent the connector writes as). Freshchat answers an
 * empty list with 404: none.
 */
export async function countAvailableAgents(call: FreshchatCall, exceptId: string, groupId: string | undefined, signal: AbortSignal): Promise<number> {
  let count = 0;
  for (let page = 1; page <= MAX_AGENT_PAGES; page++) {
    const query = `availability_status=AVAILABLE&is_deactivated=false${groupId !== undefined ? `&groups=${encodeURIComponent(groupId)}` : ''}&items_per_page=100&page=${page}`;
    const res = await call<{ agents?: Array<{ id?: string }>; pagination?: { total_pages?: number } }>('GET', `/agents?${query}`, undefined, signal, {
      label: 'GET /agents?availability_status=AVAILABLE',
      accept: [404],
    });
    if (res.status === 404) return count;
    if (!Array.isArray(res.body?.agents)) throw new Error('the agents list is not an array');
    count += res.body.agents.filter((a) => a.id !== exceptId).length;
    if (res.body.agents.length === 0 || page >= (res.body.pagination?.total_pages ?? 1)) return count;
  }
  return count;
}
