import { createHash, createHmac, hkdfSync } from 'node:crypto';
import { decodeKey, type SecretKey } from '../config/secret-box.js';

/** The HKDF label of the digest key: a key of its own, derived from each secret key, used for nothing else. */
const INFO = 'handover user-id digest v1';

/** One way a user id may have been recorded: under which key, as which digest. */
export interface UserIdDigest {
  keyId: string;
  userIdHmac: string;
}

/**
 * Digests of end users' ids for the audit log: HMAC-SHA256 of `tenant:user` under a key derived (HKDF)
 * from the service's secret key (HANDOVER_SECRET_KEYS, or the embedded store's generated key). A plain
 * hash of an email-like id can be guessed by hashing candidates; this cannot be without the key. The
 * key id is recorded beside each digest, so an erasure recorded before a key rotation is still found
 * as long as that key stays listed; a lookup names the recorded key ids it could not check.
 */
export class UserIdDigests {
  private readonly keys: Map<string, Buffer>;

  constructor(
    keys: SecretKey[],
    private readonly currentKeyId: string,
  ) {
    this.keys = new Map(keys.map((k) => [k.id, Buffer.from(hkdfSync('sha256', decodeKey(k.key), Buffer.alloc(0), INFO, 32))]));
    if (!this.keys.has(currentKeyId)) throw new Error(`the current secret key id "${currentKeyId}" is not among the configured keys`);
  }

  /** The digest to record now, under the current key. */
  digest(tenantId: string, userId: string): UserIdDigest {
    return { keyId: this.currentKeyId, userIdHmac: this.hmac(this.keys.get(this.currentKeyId)!, tenantId, userId) };
  }

  /** Whether digests recorded under this key id can still be recomputed (the key is configured). */
  knows(keyId: string): boolean {
    return this.keys.has(keyId);
  }

  /** The digest under every configured key: what a lookup of earlier records compares against. */
  candidates(tenantId: string, userId: string): UserIdDigest[] {
    return [...this.keys].map(([keyId, key]) => ({ keyId, userIdHmac: this.hmac(key, tenantId, userId) }));
  }

  private hmac(key: Buffer, tenantId: string, userId: string): string {
    return createHmac('sha256', key).update(`${tenantId}:${userId}`).digest('hex');
  }
}

/** The plain SHA-256 that erasures were recorded with before keyed digests; only to find those records. */
export function legacyUserIdSha256(tenantId: string, userId: string): string {
  return createHash('sha256').update(`${tenantId}:${userId}`).digest('hex');
}
