import type { Agent } from 'undici';
import { DeliveryError } from '../connector.js';
import { parseJson, send, STATUS_POLICIES } from '../../outbound/index.js';

/** Renew this long before the token's end at most (a tenth of a short token's life otherwise). */
const RENEW_MARGIN_MS = 60_000;

interface Token {
  value: string;
  renewAt: number;
}

export interface GenesysTokens {
  /** A token with time left: the one held, or a new one asked for once however many callers wait. */
  get(signal: AbortSignal): Promise<string>;
  /** Forgets a token the API refused (revoked, or the org's clock disagrees). */
  drop(value: string): void;
}

/**
 * OAuth client credentials (`POST {login}/oauth/token`, Basic client id:secret, form
 * `grant_type=client_credentials` → `{access_token, expires_in}`), the token reused until shortly
 * before it expires so no call is made with a token about to lapse. Kept in memory per connector
 * instance: a restart asks for a new one, which Genesys allows.
 */
export function genesysTokens(
  dispatcher: Agent,
  config: { loginBaseUrl: string; clientId: string; clientSecret: string },
  timeoutMs: number,
  now: () => number = Date.now,
): GenesysTokens {
  const url = `${config.loginBaseUrl.replace(/\/$/, '')}/oauth/token`;
  const basic = Buffer.from(`${config.clientId}:${config.clientSecret}`).toString('base64');
  let held: Token | null = null;
  let pending: Promise<Token> | null = null;

  async function ask(signal: AbortSignal): Promise<Token> {
    const asked = now();
    const answer = await send(dispatcher, {
      method: 'POST',
      url,
      signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
      policy: STATUS_POLICIES.vendorApi,
      maxBytes: 64 * 1024,
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
      describe: `POST /oauth/token on ${new URL(url).host}`,
    });
    const body = parseJson(answer.text) as { access_token?: unknown; expires_in?: unknown } | undefined;
    if (typeof body?.access_token !== 'string' || !body.access_token)
      throw new DeliveryError('the Genesys login answered no access_token', { retryable: true, statusCode: answer.status });
    const lifetimeMs = (typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 3600) * 1000;
    return { value: body.access_token, renewAt: asked + lifetimeMs - Math.min(RENEW_MARGIN_MS, lifetimeMs / 10) };
  }

  return {
    async get(signal) {
      if (held && now() < held.renewAt) return held.value;
      pending ??= ask(signal).finally(() => {
        pending = null;
      });
      held = await pending;
      return held.value;
    },
    drop(value) {
      if (held?.value === value) held = null;
    },
  };
}
