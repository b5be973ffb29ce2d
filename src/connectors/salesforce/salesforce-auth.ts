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
  if (unextendable.has(token)) return null;
  const claims = readClaims(token);
  if (!claims || typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) return null;
  const expiresAt = claims.exp * 1000;
  const lifetime = typeof claims.iat === 'number' && claims.iat < claims.exp ? expiresAt - claims.iat * 1000 : RENEW_AHEAD_MAX_MS * 3;
  return expiresAt - Math.min(RENEW_AHEAD_MAX_MS, lifetime / 3);
}

/**
 * Tokens a renewal gave without a later expiry than the token it renewed: renewing them ahead of their
 * expiry again would only repeat that (on a timer that then fires at once), so they are renewed only
 * after a 401 (and the conversation is lost if Salesforce refuses then). Bounded: the oldest go first.
 */
const unextendable = new Set<string>();
const MAX_UNEXTENDABLE = 1000;

/** Notes what a renewal gave: a token that expires no later than the one it renewed is not renewed ahead again. */
export function noteRenewal(previous: string, renewed: string): void {
  const before = expiryOf(previous);
  const after = expiryOf(renewed);
  if (before === null || after === null || after > before) return;
  unextendable.add(renewed);
  if (unextendable.size > MAX_UNEXTENDABLE) unextendable.delete(unextendable.values().next().value!);
}

function expiryOf(token: string): number | null {
  const exp = readClaims(token)?.exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp : null;
}

function readClaims(token: string): { exp?: unknown; iat?: unknown } | null {
  const payload = token.split('.')[1];
  if (!payload) return null;
  const claims = parseJson(Buffer.from(payload, 'base64url').toString('utf8'));
  return claims && typeof claims === 'object' ? (claims as { exp?: unknown; iat?: unknown }) : null;
}
