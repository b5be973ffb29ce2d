import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Connector credentials at rest: each secret field of a connector's config is stored as
 * `{"$enc":"v1","kid":"<key id>","iv":"<base64 12 bytes>","tag":"<base64 16 bytes>","ct":"<base64>"}` —
 * AES-256-GCM under the key named by `kid`, with the connector id and field name as additional
 * authenticated data, so a ciphertext copied onto another connector or field does not decrypt.
 * The key id beside each value lets keys rotate: a new current key encrypts, older keys still decrypt.
 */
export interface SealedValue {
  $enc: 'v1';
  kid: string;
  iv: string;
  tag: string;
  ct: string;
}

export interface SecretKey {
  id: string;
  /** 32 bytes, base64. */
  key: string;
}

export function isSealed(value: unknown): value is SealedValue {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.$enc === 'v1' && typeof v.kid === 'string' && typeof v.iv === 'string' && typeof v.tag === 'string' && typeof v.ct === 'string';
}

export class SecretBox {
  private readonly keys: Map<string, Buffer>;
  readonly currentKeyId: string;

  constructor(keys: SecretKey[], currentKeyId?: string) {
    if (keys.length === 0) throw new Error('SecretBox needs at least one key');
    this.keys = new Map(keys.map((k) => [k.id, decodeKey(k.key)]));
    this.currentKeyId = currentKeyId ?? keys[0]!.id;
    if (!this.keys.has(this.currentKeyId)) throw new Error(`the current secret key id "${this.currentKeyId}" is not among the configured keys`);
  }

  seal(plain: string, context: string): SealedValue {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.currentKeyId)!, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return { $enc: 'v1', kid: this.currentKeyId, iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), ct: ct.toString('base64') };
  }

  open(sealed: SealedValue, context: string): string {
    const key = this.keys.get(sealed.kid);
    if (!key) throw new Error(`a connector secret is encrypted under key "${sealed.kid}", which is not configured (HANDOVER_SECRET_KEYS)`);
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.ct, 'base64')), decipher.final()]).toString('utf8');
  }

  /** The config with each secret field sealed; fields already sealed under the current key stay as they are. */
  sealConfig(config: Record<string, unknown>, secretFields: readonly string[], connectorId: string): Record<string, unknown> {
    const out = { ...config };
    for (const field of secretFields) {
      const value = out[field];
      if (typeof value === 'string') out[field] = this.seal(value, contextOf(connectorId, field));
    }
    return out;
  }

  /**
   * The config with each secret field in clear, for the live instance only. A plain string (a row
   * written before encryption, not yet sealed at start) is taken as it is.
   */
  openConfig(config: Record<string, unknown>, secretFields: readonly string[], connectorId: string): Record<string, unknown> {
    const out = { ...config };
    for (const field of secretFields) {
      const value = out[field];
      if (isSealed(value)) out[field] = this.open(value, contextOf(connectorId, field));
    }
    return out;
  }

  /** True when some secret field is in clear or sealed under a key other than the current one. */
  needsSealing(config: Record<string, unknown>, secretFields: readonly string[]): boolean {
    return secretFields.some(
      (field) => typeof config[field] === 'string' || (isSealed(config[field]) && (config[field] as SealedValue).kid !== this.currentKeyId),
    );
  }

  /** Re-seals every secret field under the current key (plain values and values under older keys). */
  resealConfig(config: Record<string, unknown>, secretFields: readonly string[], connectorId: string): Record<string, unknown> {
    return this.sealConfig(this.openConfig(config, secretFields, connectorId), secretFields, connectorId);
  }
}

function contextOf(connectorId: string, field: string): string {
  return `connector:${connectorId}:${field}`;
}

export function decodeKey(base64: string): Buffer {
  const key = Buffer.from(base64, 'base64');
  if (key.length !== 32 || key.toString('base64').replace(/=+$/, '') !== base64.trim().replace(/=+$/, '')) {
    throw new Error('expected a base64 encoded 32-byte key');
  }
  return key;
}

/** Parses `kid:base64key,kid2:base64key` (HANDOVER_SECRET_KEYS). */
export function parseSecretKeys(raw: string): SecretKey[] {
  if (raw.trim() === '') return [];
  const keys: SecretKey[] = [];
  for (const part of raw
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const colon = part.indexOf(':');
    if (colon <= 0) throw new Error('expected comma-separated `keyId:base64key` pairs');
    const id = part.slice(0, colon).trim();
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new Error(`key id "${id}" may hold only letters, digits, _ . -`);
    const key = part.slice(colon + 1).trim();
    try {
      decodeKey(key);
    } catch {
      throw new Error(`key "${id}": expected a base64 encoded 32-byte key (e.g. \`openssl rand -base64 32\`)`);
    }
    if (keys.some((k) => k.id === id)) throw new Error(`key id "${id}" is listed twice`);
    keys.push({ id, key });
  }
  return keys;
}
