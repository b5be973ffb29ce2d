import { parseJson } from '../../outbound/index.js';

/** Why a conversation is lost when Salesforce refuses to renew its token (a new token is another subject). */
export const LOST_TOKEN = 'Salesforce no longer accepts this conversation’s access token and refused to renew it; the conversation cannot be reached any more.';

/** Renew at most this long before a token expires (less for tokens that live less than three times this). */
const RENEW_AHEAD_MAX_MS = 5 * 60_000;

/**
 * When a Messaging for In-App and Web access token should be renewed: ahead of its expiry (the `exp`
 * claim of the JWT) by a third of its lifetime, at most five minutes. Past its expiry a token cannot
 * be continued any more, and a new unauthenticated token is another subject that cannot reach the
 * conversation, so waiting for a 401 loses the conversation. Null when the token carries no `exp`
 * (it is then renewed only after a 401). The token is read, not verified: Salesforce verifies it.
 */
export function renewalDueAt(token: string): number | null {
  const claims = readClaims(token);
  if (!claims || typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) return null;
  const expiresAt = claims.exp * 1000;
  const lifetime = typeof claims.iat === 'number' && claims.iat < claims.exp ? expiresAt - claims.iat * 1000 : RENEW_AHEAD_MAX_MS * 3;
  return expiresAt - Math.min(RENEW_AHEAD_MAX_MS, lifetime / 3);
}

function readClaims(token: string): { exp?: unknown; iat?: unknown } | null {
  const payload = token.split('.')[1];
  if (!payload) return null;
  const claims = parseJson(Buffer.from(payload, 'base64url').toString('utf8'));
  return claims && typeof claims === 'object' ? (claims as { exp?: unknown; iat?: unknown }) : null;
}
