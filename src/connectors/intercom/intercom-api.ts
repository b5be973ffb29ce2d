import type { Agent } from 'undici';
import { DeliveryError } from '../connector.js';
import { requestJson, type JsonResponse } from '../http-json.js';
import type { IntercomConfig } from './intercom-config.js';

/** The REST API version the connector is written against (sent as `Intercom-Version`). */
export const INTERCOM_API_VERSION = '2.11';

export type IntercomCall = <T = unknown>(
  method: 'GET' | 'POST' | 'PUT',
  path: string,
  body: unknown,
  signal: AbortSignal,
  options?: { accept?: number[]; label?: string },
) => Promise<JsonResponse<T>>;

/** Calls to one workspace's REST API with the app's access token. */
export function intercomCall(dispatcher: Agent, config: IntercomConfig): IntercomCall {
  const base = config.baseUrl.replace(/\/$/, '');
  return (method, path, body, signal, options = {}) =>
    requestJson(dispatcher, {
      method,
      url: `${base}${path}`,
      headers: { authorization: `Bearer ${config.accessToken}`, 'intercom-version': INTERCOM_API_VERSION },
      ...(body !== undefined ? { body } : {}),
      signal,
      ...(options.accept ? { accept: options.accept } : {}),
      ...(options.label ? { label: options.label } : {}),
    });
}

interface ErrorList {
  errors?: Array<{ code?: string; message?: string }>;
}

/**
 * The contact of the bot's user (`external_id` = the user's id): created, or, when Intercom answers
 * `409 conflict` ("A contact matching those details already exists with id=…"), the one it names —
 * else the one a search by `external_id` finds (search lags creation by up to minutes, so it is the
 * second choice).
 *
 * The contact a conflict names is checked before it is used. An archived one ("An archived contact
 * matching those details …") is unarchived first: a conversation cannot be opened for it. One matched
 * by the email but holding another user's `external_id` is not this user's: the contact is created
 * again without the email.
 */
export async function contactFor(call: IntercomCall, user: { id: string; name?: string; email?: string }, signal: AbortSignal): Promise<string> {
  const created = await call<{ id?: string } & ErrorList>(
    'POST',
    '/contacts',
    { role: 'user', external_id: user.id, ...(user.name ? { name: user.name } : {}), ...(user.email ? { email: user.email } : {}) },
    signal,
    { accept: [409] },
  );
  if (created.status !== 409 && created.body?.id) return created.body.id;
  const conflict = created.body?.errors?.map((e) => e.message ?? '').find((m) => /already exists with id=[0-9a-f]+/i.test(m));
  const named = conflict ? /already exists with id=([0-9a-f]+)/i.exec(conflict)![1]! : undefined;
  if (named) {
    const shown = await call<{ id?: string; external_id?: string | null }>('GET', `/contacts/${encodeURIComponent(named)}`, undefined, signal, {
      accept: [404],
      label: 'GET /contacts/:id',
    });
    const owner = shown.status === 404 ? undefined : (shown.body?.external_id ?? null);
    if (owner === null || owner === '' || owner === user.id) {
      if (/\barchived\b/i.test(conflict!)) {
        await call('POST', `/contacts/${encodeURIComponent(named)}/unarchive`, undefined, signal, { label: 'POST /contacts/:id/unarchive' });
      }
      return named;
    }
    if (owner !== undefined && user.email) return contactFor(call, { id: user.id, ...(user.name ? { name: user.name } : {}) }, signal);
  }
  const found = await call<{ data?: Array<{ id?: string; external_id?: string | null }> }>(
    'POST',
    '/contacts/search',
    { query: { field: 'external_id', operator: '=', value: user.id } },
    signal,
  );
  const contact = found.body?.data?.find((c) => c.external_id === user.id);
  if (!contact?.id)
    throw new DeliveryError('Intercom refused the contact as existing but no contact has the external_id of this user yet', {
      retryable: true,
      statusCode: created.status,
    });
  return contact.id;
}
