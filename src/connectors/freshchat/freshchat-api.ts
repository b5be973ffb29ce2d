import type { Agent } from 'undici';
import { DeliveryError } from '../connector.js';
import { requestJson, type JsonResponse } from '../http-json.js';
import type { FreshchatConfig } from './freshchat-config.js';

export type FreshchatCall = <T = unknown>(method: 'GET' | 'POST' | 'PUT', path: string, body: unknown, signal: AbortSignal, options?: { label?: string; accept?: number[] }) => Promise<JsonResponse<T>>;

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
    const res = await call<{ users?: FreshchatUser[] }>('GET', `/users?reference_id=${encodeURIComponent(user.id)}`, undefined, signal, { label: 'GET /users?reference_id=:user', accept: [404] });
    return res.status === 404 ? undefined : res.body?.users?.find((u) => u.reference_id === user.id && u.id)?.id;
  };
  const found = await listed();
  if (found) return found;
  const created = await call<FreshchatUser>('POST', '/users', { reference_id: user.id, first_name: user.name ?? user.id, ...(user.email ? { email: user.email } : {}) }, signal, { accept: [409] });
  const id = created.status === 409 ? await listed() : created.body?.id;
  if (!id) throw new DeliveryError('Freshchat returned no user id', { retryable: true, statusCode: created.status });
  return id;
}
