import { DeliveryError } from '../outbound/delivery-error.js';
import { toError } from '../resilience/errors.js';
import type { CheckProblem, ConnectorCheck } from './connector.js';

/**
 * A failing check keeps the error it came from, so the checker can quote the system's answer where
 * quoting is allowed (HANDOVER_REDACT_CONTENT): connectors themselves never decide that.
 */
export type CheckFailure = Extract<ConnectorCheck, { verdict: 'failing' }> & { error?: Error };

/**
 * Runs one check call and names what its failure means for the setup: 401/403 the credentials,
 * 404 the account/app/inbox id, other 4xx the settings, and no answer (or a 5xx, 429) the network or
 * the system itself. `what` names the call and what it proves ("the app (GET /v2/apps/{appId})").
 */
export async function checkCall(
  what: string,
  run: () => Promise<unknown>,
  hints: Partial<Record<CheckProblem, string>> = {},
): Promise<ConnectorCheck | CheckFailure> {
  try {
    await run();
    return { verdict: 'ok', reason: `${what} answered` };
  } catch (err) {
    const error = toError(err);
    const problem = problemOf(error);
    const hint = hints[problem] ?? DEFAULT_HINTS[problem];
    return { verdict: 'failing', problem, reason: `${what} failed: ${error.message} — ${hint}`, error };
  }
}

const DEFAULT_HINTS: Record<CheckProblem, string> = {
  credentials_rejected: 'the credentials were refused: set valid ones in the connector config',
  not_found: 'an id in the connector config names nothing: check the account, app or inbox id',
  unreachable: 'no usable answer: check baseUrl, the network path and the system status',
  misconfigured: 'the system refused the request as configured: check the connector config',
};

export function problemOf(error: Error): CheckProblem {
  const status = error instanceof DeliveryError ? error.statusCode : undefined;
  if (status === 401 || status === 403) return 'credentials_rejected';
  if (status === 404) return 'not_found';
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) return 'misconfigured';
  return 'unreachable';
}
