import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Queryable } from '../store/db.js';
import { newId } from '../store/ids.js';
import { AppError } from '../resilience/errors.js';
import type { Deps } from '../deps.js';
import { checkOutboundUrl, newWebhookSecret } from '../outbound/index.js';
import { TtlCache } from '../store/ttl-cache.js';
import { LoadingCache } from '../store/loading-cache.js';
import { RESYNC, type Bus } from '../bus/bus.js';

/** Bot API keys: recognisable in a leak scan (`handover_sk_`), shown once, stored as a SHA-256 digest. */
export const API_KEY_PREFIX = 'handover_sk_';
/** The length of every API key issued (the prefix, then 32 random bytes in base64url). */
const API_KEY_LENGTH = API_KEY_PREFIX.length + 43;

export interface Tenant {
  id: string;
  name: string;
  webhookUrl: string | null;
  /** Ended conversations older than this are deleted; null keeps them. */
  retentionDays: number | null;
  createdAt: Date;
}

export function digest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function newApiKey(): string {
  return API_KEY_PREFIX + randomBytes(32).toString('base64url');
}

export async function createTenant(deps: Deps, input: { name: string; webhookUrl?: string | undefined }) {
  if (input.webhookUrl) checkOutboundUrl(input.webhookUrl, deps.config.outbound, 'webhookUrl');
  const id = newId('tenant');
  const webhookSecret = newWebhookSecret();
  const apiKey = newApiKey();
  await deps.db.transaction(async (q) => {
    await q.query('insert into tenants (id, name, webhook_url, webhook_secret) values ($1, $2, $3, $4)', [
      id,
      input.name,
      input.webhookUrl ?? null,
      webhookSecret,
    ]);
    await q.query('insert into tenant_event_positions (tenant_id) values ($1)', [id]);
    await insertApiKey(q, id, apiKey);
  });
  return { id, name: input.name, webhookUrl: input.webhookUrl ?? null, apiKey, webhookSecret };
}

/** What a key may do: `bot` the whole bot API, `read` only its reads. */
export type ApiKeyScope = 'bot' | 'read';

export interface ApiKeyIdentity {
  tenantId: string;
  scope: ApiKeyScope;
}

async function insertApiKey(q: Queryable, tenantId: string, apiKey: string, scope: ApiKeyScope = 'bot'): Promise<string> {
  const id = newId('apiKey');
  await q.query('insert into api_keys (id, tenant_id, key_hash, key_hint, scope) values ($1, $2, $3, $4, $5)', [
    id,
    tenantId,
    digest(apiKey),
    apiKey.slice(-4),
    scope,
  ]);
  return id;
}

/** A tenant's keys, without the keys themselves: for rotation (which one is still used?) and revocation. */
export async function listApiKeys(q: Queryable, tenantId: string) {
  await requireTenant(q, tenantId);
  const { rows } = await q.query<{ id: string; key_hint: string; scope: ApiKeyScope; created_at: Date; last_used_at: Date | null; revoked_at: Date | null }>(
    'select id, key_hint, scope, created_at, last_used_at, revoked_at from api_keys where tenant_id = $1 order by created_at',
    [tenantId],
  );
  return rows.map((r) => ({
    id: r.id,
    hint: `…${r.key_hint}`,
    scope: r.scope,
    createdAt: r.created_at.toISOString(),
    lastUsedAt: r.last_used_at ? r.last_used_at.toISOString() : null,
    revokedAt: r.revoked_at ? r.revoked_at.toISOString() : null,
  }));
}

/** Bus channel of revocations: `{ type: 'api_key.revoked', tenantId, keyId, keyHash }`. */
export const CREDENTIALS_CHANNEL = 'credentials';

export interface ApiKeyRevoked {
  type: 'api_key.revoked';
  tenantId: string;
  keyId: string;
  /** The key's SHA-256, as stored: names it in caches, and cannot be used as the key. */
  keyHash: string;
}

/**
 * Revokes a key. Every instance told over the bus forgets its cached check and ends the key's open
 * event streams at once; one the signal misses refuses new requests within HANDOVER_API_KEY_CACHE_MS
 * and ends streams within HANDOVER_STREAM_RECHECK_MS.
 */
export async function revokeApiKey(deps: Pick<Deps, 'db' | 'bus'>, tenantId: string, keyId: string): Promise<void> {
  const { rows } = await deps.db.query<{ key_hash: string }>(
    'update api_keys set revoked_at = coalesce(revoked_at, now()) where id = $1 and tenant_id = $2 returning key_hash',
    [keyId, tenantId],
  );
  if (!rows[0]) throw new AppError('api_key_not_found');
  deps.bus.publish(CREDENTIALS_CHANNEL, { type: 'api_key.revoked', tenantId, keyId, keyHash: rows[0].key_hash } satisfies ApiKeyRevoked);
}

/** Whether the key with this digest exists and is not revoked, read from the database (no cache). */
export async function apiKeyIsLive(q: Queryable, keyHash: string): Promise<boolean> {
  const { rows } = await q.query('select 1 from api_keys where key_hash = $1 and revoked_at is null', [keyHash]);
  return rows.length > 0;
}

export async function createApiKey(deps: Deps, tenantId: string, scope: ApiKeyScope = 'bot') {
  await requireTenant(deps.db, tenantId);
  const apiKey = newApiKey();
  const id = await insertApiKey(deps.db, tenantId, apiKey, scope);
  return { id, apiKey, scope };
}

export async function updateTenant(
  deps: Deps,
  tenantId: string,
  input: { name?: string | undefined; webhookUrl?: string | null | undefined; retentionDays?: number | null | undefined },
): Promise<Tenant> {
  if (input.webhookUrl) checkOutboundUrl(input.webhookUrl, deps.config.outbound, 'webhookUrl');
  const { rows } = await deps.db.query<TenantRow>(
    `update tenants set name = coalesce($2, name), webhook_url = case when $3::boolean then $4 else webhook_url end,
       retention_days = case when $5::boolean then $6 else retention_days end
     where id = $1 returning id, name, webhook_url, retention_days, created_at`,
    [tenantId, input.name ?? null, input.webhookUrl !== undefined, input.webhookUrl ?? null, input.retentionDays !== undefined, input.retentionDays ?? null],
  );
  const row = rows[0];
  if (!row) throw new AppError('tenant_not_found');
  return toTenant(row);
}

interface TenantRow {
  id: string;
  name: string;
  webhook_url: string | null;
  retention_days: number | null;
  created_at: Date;
}

function toTenant(row: TenantRow): Tenant {
  return { id: row.id, name: row.name, webhookUrl: row.webhook_url, retentionDays: row.retention_days, createdAt: row.created_at };
}

export async function requireTenant(q: Queryable, tenantId: string): Promise<Tenant> {
  const { rows } = await q.query<TenantRow>('select id, name, webhook_url, retention_days, created_at from tenants where id = $1', [tenantId]);
  const row = rows[0];
  if (!row) throw new AppError('tenant_not_found');
  return toTenant(row);
}

export async function listTenants(q: Queryable): Promise<Tenant[]> {
  const { rows } = await q.query<TenantRow>('select id, name, webhook_url, retention_days, created_at from tenants order by created_at');
  return rows.map(toTenant);
}

/**
 * Resolves a bot API key to its tenant. Lookups are cached briefly so the hot path does not query the
 * database on every request; a revoked key therefore stops working within `ttlMs`.
 */
export function createApiKeyAuthenticator(q: Queryable, options: { ttlMs: number; maxEntries: number } = { ttlMs: 30_000, maxEntries: 10_000 }, bus?: Bus) {
  // null: known to be unknown or revoked (cached too, so a flood of bad keys does not reach the database).
  // One lookup per key at a time, and a key in use looked up again before it expires: the lookup
  // updates the key's row, and concurrent updates of one row wait for each other's commits, so a burst
  // of requests missing at once (a new instance, an expiry under load) queued one commit behind
  // another.
  const cache = new LoadingCache<string, ApiKeyIdentity | null>(
    async (hash) => {
      const { rows } = await q.query<{ tenant_id: string; scope: ApiKeyScope; revoked: boolean }>(
        `update api_keys set last_used_at = now() where key_hash = $1 returning tenant_id, scope, revoked_at is not null as revoked`,
        [hash],
      );
      const row = rows[0];
      return row && !row.revoked ? { tenantId: row.tenant_id, scope: row.scope } : null;
    },
    { ttlMs: options.ttlMs, maxEntries: options.maxEntries, refreshAheadMs: options.ttlMs / 5 },
  );
  // Each key's digest, kept as the credential's caller key is (admission-hook.ts): a SHA-256 per
  // request was a few microseconds of every message. Bounded, so made-up keys cannot grow it.
  const hashes = new TtlCache<string, string>(Infinity, options.maxEntries);
  // A revocation heard over the bus takes effect at once, not at the end of the cache's lifetime. When
  // the bus says signals may have been lost (it was cut off from the other instances, and while it is),
  // every check is made again: a revocation it missed takes effect then.
  bus?.subscribe(CREDENTIALS_CHANNEL, (message) => {
    if (message === RESYNC) return cache.clear();
    const revoked = message as Partial<ApiKeyRevoked>;
    if (revoked.type === 'api_key.revoked' && typeof revoked.keyHash === 'string') cache.delete(revoked.keyHash);
  });
  return async function authenticate(apiKey: string): Promise<ApiKeyIdentity> {
    if (!apiKey.startsWith(API_KEY_PREFIX)) throw new AppError('unauthorized', { message: `The API key must start with ${API_KEY_PREFIX}.` });
    // Only keys of the length this service issues are kept: a flood of long made-up ones (a header may
    // be kilobytes) must not fill memory, and no real key is longer.
    const kept = apiKey.length <= API_KEY_LENGTH;
    let hash = kept ? hashes.get(apiKey) : undefined;
    if (hash === undefined) {
      hash = digest(apiKey);
      if (kept) hashes.set(apiKey, hash);
    }
    const identity = await cache.get(hash);
    if (!identity) throw new AppError('unauthorized', { message: 'This API key is unknown or revoked.' });
    return identity;
  };
}

/** Constant-time comparison of two secrets of any length. */
export function secretsEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
