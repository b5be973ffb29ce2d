import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { decodeKey, type SecretKey } from '../config/secret-box.js';
import { AppError } from '../resilience/errors.js';

/** The HKDF label of the link key: derived from each secret key, used for nothing else. */
const INFO = 'handover attachment links v1';

/**
 * Short-lived links to attachments: `/v1/attachments/{id}?expires=<unix seconds>&sig=<base64url>`, the
 * signature an HMAC-SHA256 of `id.expires` under a key derived (HKDF) from the service's secret key
 * (HANDOVER_SECRET_KEYS, or the embedded store's generated one). Whoever holds a link may fetch the
 * file until it expires, and nothing else: the id and the expiry are both signed, so neither can be
 * changed. Every configured key verifies, so links signed before a key rotation keep working until
 * they expire.
 */
export class AttachmentLinks {
  private readonly current: Buffer;
  private readonly all: Buffer[];

  constructor(
    keys: SecretKey[],
    currentKeyId: string,
    private readonly ttlSeconds: number,
  ) {
    const derived = new Map(keys.map((k) => [k.id, Buffer.from(hkdfSync('sha256', decodeKey(k.key), Buffer.alloc(0), INFO, 32))]));
    const current = derived.get(currentKeyId);
    if (!current) throw new Error(`the current secret key id "${currentKeyId}" is not among the configured keys`);
    this.current = current;
    this.all = [...derived.values()];
  }

  /** A link path valid for the configured time (or `ttlSeconds`) from `now`, with its expiry. */
  sign(id: string, now: Date, ttlSeconds = this.ttlSeconds): { path: string; expiresAt: Date } {
    const expires = Math.floor(now.getTime() / 1000) + ttlSeconds;
    const sig = mac(this.current, id, expires).toString('base64url');
    return { path: `/v1/attachments/${encodeURIComponent(id)}?expires=${expires}&sig=${sig}`, expiresAt: new Date(expires * 1000) };
  }

  /** Throws `attachment_link_invalid` (tampered, or not ours) or `attachment_link_expired`. */
  verify(id: string, expires: string | undefined, sig: string | undefined, now: Date): void {
    const seconds = expires && /^\d{1,12}$/.test(expires) ? Number(expires) : NaN;
    // Only the canonical encoding: the last character's two spare bits could otherwise vary.
    const decoded = sig && /^[A-Za-z0-9_-]{43}$/.test(sig) ? Buffer.from(sig, 'base64url') : null;
    const given = decoded && decoded.toString('base64url') === sig ? decoded : null;
    if (!given || !Number.isFinite(seconds) || !this.all.some((key) => timingSafeEqual(mac(key, id, seconds), given))) {
      throw new AppError('attachment_link_invalid');
    }
    if (seconds * 1000 <= now.getTime()) throw new AppError('attachment_link_expired');
  }
}

function mac(key: Buffer, id: string, expires: number): Buffer {
  return createHmac('sha256', key).update(`${id}.${expires}`).digest();
}
