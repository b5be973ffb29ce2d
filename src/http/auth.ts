import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../resilience/errors.js';
import { secretsEqual, type ApiKeyIdentity } from '../tenants/tenants.js';
import { authenticateSession } from '../desk/agents.js';
import type { Agent } from '../model/agent.js';
import { cookieToken, csrfTokenValid } from '../desk/session-cookie.js';
import type { Queryable } from '../store/db.js';

declare module 'fastify' {
  interface FastifyRequest {
    tenantId: string;
    agent: Agent;
    sessionToken: string;
    rawBody?: string;
    /** Admin API: which of the admin tokens authenticated the request. */
    adminTokenFingerprint?: string;
  }
}

/** `Authorization: Bearer <token>`, the token captured. */
export const BEARER = /^Bearer\s+(\S+)\s*$/i;

export function bearerToken(request: FastifyRequest): string {
  const header = request.headers.authorization;
  const match = header ? BEARER.exec(header) : null;
  if (!match?.[1]) throw new AppError('unauthorized', { message: 'Send "Authorization: Bearer <token>".' });
  return match[1];
}

export function botAuth(authenticate: (apiKey: string) => Promise<ApiKeyIdentity>) {
  return async (request: FastifyRequest) => {
    const identity = await authenticate(bearerToken(request));
    mayChange(identity, request.method);
    request.tenantId = identity.tenantId;
  };
}

/** A read-only key reads (and may hold a stream open); it changes nothing. */
export function mayChange(identity: ApiKeyIdentity, method: string): void {
  if (identity.scope === 'read' && method !== 'GET' && method !== 'HEAD') {
    throw new AppError('forbidden_scope', { message: 'This API key is read-only; use a bot key for changes.' });
  }
}

/**
 * Whether `given` is one of the configured admin tokens. HANDOVER_ADMIN_TOKEN may list several,
 * comma-separated, so a token can be rotated without a moment when no client has a valid one. Every
 * token is compared (in constant time), whichever matches.
 */
export function isAdminToken(given: string, configured: string): boolean {
  return matchAdminToken(given, configured) !== undefined;
}

/** The configured admin tokens, one per entry of HANDOVER_ADMIN_TOKEN. */
export function adminTokens(configured: string): string[] {
  return configured
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}

/** Which configured token `given` is (every one compared in constant time), or undefined. */
function matchAdminToken(given: string, configured: string): string | undefined {
  let match: string | undefined;
  for (const token of adminTokens(configured)) if (secretsEqual(given, token)) match ??= token;
  return match;
}

/** A token's public name: enough to tell tokens apart in the audit log and the token list, nothing more. */
export function adminTokenFingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 12);
}

/**
 * Admin API authentication. `onUse` hears which token (by fingerprint) authenticated each request, to
 * keep its last-used time.
 */
export function adminAuth(adminToken: string, onUse?: (fingerprint: string) => void) {
  return async (request: FastifyRequest) => {
    const token = matchAdminToken(bearerToken(request), adminToken);
    if (token === undefined) throw new AppError('unauthorized', { message: 'The admin token is wrong.' });
    request.adminTokenFingerprint = adminTokenFingerprint(token);
    onUse?.(request.adminTokenFingerprint);
  };
}

export function deskAuth(q: Queryable, idleSeconds: number) {
  return async (request: FastifyRequest) => {
    // The session token as a Bearer header (API clients), or in the console's cookie.
    const fromCookie = request.headers.authorization ? undefined : cookieToken(request.headers.cookie);
    const token = fromCookie ?? bearerToken(request);
    if (fromCookie && request.method !== 'GET' && request.method !== 'HEAD' && !csrfTokenValid(fromCookie, request.headers['x-csrf-token'])) {
      throw new AppError('csrf_token_invalid');
    }
    request.agent = await authenticateSession(q, token, idleSeconds);
    request.tenantId = request.agent.tenantId;
    request.sessionToken = token;
  };
}

/** Supervisors only (after deskAuth). */
export async function supervisorOnly(request: FastifyRequest): Promise<void> {
  if (request.agent.role !== 'supervisor') throw new AppError('forbidden_role');
}
