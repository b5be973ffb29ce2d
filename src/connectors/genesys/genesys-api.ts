import type { Agent } from 'undici';
import { DeliveryError } from '../connector.js';
import { requestJson, type JsonResponse } from '../http-json.js';
import type { GenesysTokens } from './genesys-auth.js';

export type GenesysCall = <T = unknown>(
  method: 'GET' | 'POST' | 'PATCH',
  path: string,
  body: unknown,
  signal: AbortSignal,
  label?: string,
) => Promise<JsonResponse<T>>;

/**
 * Calls to the org's Platform API with a client-credentials token. A 401 means the token was revoked
 * or lapsed early: it is dropped and the call made once more with a new one; a second 401 is final
 * (the client's credentials or role are wrong).
 */
export function genesysCall(dispatcher: Agent, apiBaseUrl: string, tokens: GenesysTokens): GenesysCall {
  const base = apiBaseUrl.replace(/\/$/, '');
  return async <T = unknown>(method: 'GET' | 'POST' | 'PATCH', path: string, body: unknown, signal: AbortSignal, label?: string): Promise<JsonResponse<T>> => {
    const once = async () => {
      const token = await tokens.get(signal);
      try {
        return await requestJson<T>(dispatcher, {
          method,
          url: `${base}${path}`,
          headers: { authorization: `Bearer ${token}` },
          ...(body !== undefined ? { body } : {}),
          signal,
          ...(label ? { label } : {}),
        });
      } catch (err) {
        if (err instanceof DeliveryError && err.statusCode === 401) tokens.drop(token);
        throw err;
      }
    };
    try {
      return await once();
    } catch (err) {
      if (err instanceof DeliveryError && err.statusCode === 401) return once();
      throw err;
    }
  };
}

/** The Open Messaging integration as the Platform API shows it (its id, name and webhook settings). */
export function integrationPath(integrationId: string): string {
  return `/api/v2/conversations/messaging/integrations/open/${encodeURIComponent(integrationId)}`;
}
