import { WebhookVerificationError } from './errors.js';
import type { BotEvent } from './types.js';

/** The service refuses timestamps further than this from its clock; a receiver should do the same. */
export const DEFAULT_TOLERANCE_SECONDS = 5 * 60;

type HeaderSource = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const record = headers as Record<string, string | string[] | undefined>;
  const value = record[name] ?? Object.entries(record).find(([key]) => key.toLowerCase() === name)?.[1];
  return Array.isArray(value) ? value[0] : value;
}

function base64Bytes(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The HMAC key of a secret: the base64 part of `whsec_…`, or the UTF-8 bytes of any other string. */
function keyBytes(secret: string): Uint8Array<ArrayBuffer> {
  return secret.startsWith('whsec_') ? base64Bytes(secret.slice('whsec_'.length)) : new TextEncoder().encode(secret);
}

/**
 * Verifies a webhook the service sent to your `webhookUrl` (Standard Webhooks: `webhook-id`,
 * `webhook-timestamp`, `webhook-signature`) and returns its event. Give it the **raw** body text, as
 * received, before any JSON parsing. Throws {@link WebhookVerificationError} when a header is missing,
 * the timestamp is outside the tolerance window (replays), or no signature matches. The comparison is
 * Web Crypto's own (constant time). Drop duplicates by `event.id`: a retry carries the same id.
 */
export async function verifyWebhook(
  secret: string,
  headers: HeaderSource,
  rawBody: string,
  options: { toleranceSeconds?: number; now?: Date } = {},
): Promise<BotEvent> {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures || !/^\d{1,12}$/.test(timestamp)) {
    throw new WebhookVerificationError('invalid_signature', 'webhook-id, webhook-timestamp and webhook-signature are required');
  }
  const now = (options.now ?? new Date()).getTime() / 1000;
  if (Math.abs(now - Number(timestamp)) > (options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS)) {
    throw new WebhookVerificationError('stale_timestamp', 'webhook-timestamp is outside the tolerance window: a replay, or a clock far off');
  }
  const key = await crypto.subtle.importKey('raw', keyBytes(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const signed = new TextEncoder().encode(`${id}.${timestamp}.${rawBody}`);
  for (const candidate of signatures.split(' ')) {
    const [version, value] = candidate.split(',', 2);
    if (version !== 'v1' || !value) continue;
    let given: Uint8Array<ArrayBuffer>;
    try {
      given = base64Bytes(value);
    } catch {
      continue;
    }
    if (await crypto.subtle.verify('HMAC', key, given, signed)) return JSON.parse(rawBody) as BotEvent;
  }
  throw new WebhookVerificationError(
    'invalid_signature',
    'webhook-signature does not match: check the tenant webhook secret and that the body is the raw text received',
  );
}
