import { DeliveryError } from '../connector.js';
import type { JsonResponse } from '../http-json.js';

/** Chatwoot lists contacts 15 a page; a user id matching more than this many pages is not looked further for. */
const MAX_CONTACT_PAGES = 20;

export interface ChatwootContact {
  id?: number;
  identifier?: string | null;
  email?: string | null;
  contact_inboxes?: Array<{ source_id?: string; inbox?: { id?: number } }>;
}

type UserCall = (method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal) => Promise<JsonResponse<unknown>>;

/**
 * The contact whose `identifier` (or `email`) is exactly this value, or undefined. Asked with the
 * contacts filter (`equal_to`), page by page until a page comes back short: the search endpoint is a
 * substring search of names, emails and identifiers, where many similar ids push the exact one past the
 * first page. Emails are compared as Chatwoot keeps them, in lower case (unique per account).
 */
export async function findContactBy(
  asUser: UserCall,
  attribute: 'identifier' | 'email',
  value: string,
  signal: AbortSignal,
): Promise<ChatwootContact | undefined> {
  const wanted = attribute === 'email' ? value.toLowerCase() : value;
  const filter = { payload: [{ attribute_key: attribute, filter_operator: 'equal_to', values: [wanted], query_operator: null }] };
  for (let page = 1; page <= MAX_CONTACT_PAGES; page++) {
    const res = await asUser('POST', `/contacts/filter?page=${page}`, filter, signal);
    const body = res.body as { payload?: unknown } | null;
    const list = Array.isArray(body?.payload) ? (body.payload as ChatwootContact[]) : [];
    const found = list.find((c) => (attribute === 'email' ? c.email?.toLowerCase() === wanted : c.identifier === wanted));
    if (found) return found;
    if (list.length < 15) return undefined;
  }
  return undefined;
}

/**
 * The contact's `source_id` in the inbox (the contact's id on the inbox's public API, and what a
 * conversation is opened for): read from the contact, or created when the contact has none there.
 */
export async function sourceIdIn(asUser: UserCall, contactId: number, inboxId: number, signal: AbortSignal): Promise<string> {
  const shown = await asUser('GET', `/contacts/${contactId}`, undefined, signal);
  const contact = (shown.body as { payload?: ChatwootContact } | null)?.payload;
  const existing = contact?.contact_inboxes?.find((ci) => ci.inbox?.id === inboxId)?.source_id;
  if (existing) return existing;
  const created = await asUser('POST', `/contacts/${contactId}/contact_inboxes`, { inbox_id: inboxId }, signal);
  const sourceId = (created.body as { source_id?: string } | null)?.source_id;
  if (!sourceId) throw new DeliveryError('Chatwoot returned no source_id for the contact in the inbox', { retryable: true });
  return sourceId;
}
