import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): headers `webhook-id`,
 * `webhook-timestamp` (unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
 * Used for webhooks to bots, to generic-webhook helpdesks, and to verify what those helpdesks send us.
 */
export const SIGNATURE_TOLERANCE_SECONDS = 5 * 60;

/** A new secret in the spec's format: `whsec_` + base64 of 32 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** The HMAC key: the base64 part of a `whsec_` secret, or the UTF-8 bytes of any other string. */
export function secretKey(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
}

export function sign(secret: string, id: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secretKey(secret)).update(`${id}.${timestampSeconds}.${body}`).digest('base64');
  return `v1,${mac}`;
}

export function signedHeaders(secret: string, id: string, body: string, now = new Date()): Record<string, string> {
  return addSignatureHeaders({}, secret, id, body, now);
}

/** Writes the three headers into a request's own headers object (no copy on the outbound path). */
export function addSignatureHeaders(headers: Record<string, string>, secret: string, id: string, body: string, now = new Date()): Record<string, string> {
  const timestamp = Math.floor(now.getTime() / 1000);
  headers['webhook-id'] = id;
  headers['webhook-timestamp'] = String(timestamp);
  headers['webhook-signature'] = sign(secret, id, timestamp, body);
  return headers;
}

export type VerifyFailure = 'missing_headers' | 'stale_timestamp' | 'bad_signature';

/**
 * Checks the three headers against the raw body. The signature header may carry several space-separated
 * signatures (during secret rotation); one match is enough. Comparison is constant-time.
 */
export function verify(
  secret: string,
  headers: { id?: string | undefined; timestamp?: string | undefined; signature?: string | undefined },
  body: string,
  now = new Date(),
): { ok: true; id: string } | { ok: false; reason: VerifyFailure } {
  const { id, timestamp, signature } = headers;
  if (!id || !timestamp || !signature || !/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'missing_headers' };
  const ts = Number(timestamp);
  if (Math.abs(now.getTime() / 1000 - ts) > SIGNATURE_TOLERANCE_SECONDS) return { ok: false, reason: 'stale_timestamp' };
  const expected = Buffer.from(sign(secret, id, ts, body).slice(3), 'base64');
  for (const candidate of signature.split(' ')) {
    const [version, value] = candidate.split(',', 2);
    if (version !== 'v1' || !value) continue;
    const given = Buffer.from(value, 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return { ok: true, id };
  }
  return { ok: false, reason: 'bad_signature' };
}
