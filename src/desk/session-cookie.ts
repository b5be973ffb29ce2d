import { createHash } from 'node:crypto';
import { secretsEqual } from '../tenants/tenants.js';

/**
 * The desk console's session travels in an `HttpOnly`, `SameSite=Strict` cookie (script on the page
 * cannot read it; other sites cannot send it), `Secure` when the service is reached over https. Writes
 * made with the cookie also need the session's CSRF token in `X-CSRF-Token`: derived from the session
 * token, so nothing more is stored, and readable only by the console's own origin.
 * API clients may keep sending the session token as a Bearer header instead; they need no CSRF token.
 */
export const SESSION_COOKIE = 'handover_desk';
const PATH = '/v1/desk';

export function sessionCookie(token: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${token}; Path=${PATH}; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=${PATH}; Max-Age=0; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** The session token from the request's cookies, if any. */
export function cookieToken(cookieHeader: string | undefined): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === SESSION_COOKIE) return value.join('=') || undefined;
  }
  return undefined;
}

export function csrfTokenFor(sessionToken: string): string {
  return createHash('sha256').update(`csrf:${sessionToken}`).digest('base64url');
}

export function csrfTokenValid(sessionToken: string, given: string | string[] | undefined): boolean {
  return typeof given === 'string' && secretsEqual(given, csrfTokenFor(sessionToken));
}
