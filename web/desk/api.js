// @ts-check
// The desk REST API. The session is the HttpOnly cookie set at sign-in (script never sees it); every
// change also carries the session's CSRF token.

/**
 * A call to the desk API: resolves with the parsed JSON body.
 * @typedef {(method: string, path: string, body?: unknown) => Promise<any>} Api
 */

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

const REQUEST_TIMEOUT_MS = 15_000;
const BUSY_TRIES = 3; // a 503 (busy, restarting) is tried again after its Retry-After, up to this often
const BUSY_WAIT_MAX_S = 3;

/**
 * Returns `api(method, path, body?)`: resolves with the parsed JSON body, rejects with an ApiError
 * (status 0 and code `network` when the server could not be reached).
 * @param {{ csrf?: string, onUnauthorized?: () => void }} options
 * @returns {Api}
 */
export function createApi({ csrf, onUnauthorized }) {
  return async function api(method, path, body) {
    const headers = { accept: 'application/json' };
    if (csrf && method !== 'GET') headers['x-csrf-token'] = csrf;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res;
    // Every desk call is safe to repeat: messages carry the desk's own id, accept and end are idempotent.
    for (let attempt = 1; ; attempt++) {
      try {
        res = await fetch(path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          cache: 'no-store',
          credentials: 'same-origin',
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
      } catch {
        throw new ApiError(0, 'network', 'The server cannot be reached. Check your connection; the desk keeps retrying.');
      }
      if (res.status !== 503 || attempt >= BUSY_TRIES) break;
      const wait = Math.min(BUSY_WAIT_MAX_S, Number(res.headers.get('retry-after')) || 1);
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    }
    const text = await res.text().catch(() => '');
    let parsed;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null; // not JSON (a proxy's error page): the status says enough
    }
    if (res.ok) return parsed;
    const error = parsed && parsed.error ? parsed.error : { code: 'http_error', message: `HTTP ${res.status}` };
    if (res.status === 401 && onUnauthorized) onUnauthorized();
    throw new ApiError(res.status, error.code, error.message);
  };
}
