/**
 * The one answer to "would sending the same request again change this status?", for every call this
 * service makes to the outside. A 2xx is success; a status in a policy's final set fails the work for
 * good (the bot is told why); any other status is retried with backoff, waiting at least what the
 * answer's Retry-After asks. Network failures are retried, except a destination the SSRF guard refused.
 *
 * The table is one list with reasons; a vendor whose API gives a status another meaning gets a named
 * option below, with the reason, rather than a list of its own.
 */

/** Statuses no retry of the same request can change, whoever answers them. */
const FINAL_STATUSES = [
  400, // malformed: the same bytes are refused again
  404, // nothing there: a removed route, or a conversation the vendor deleted
  405, // the endpoint does not take this method: a wrong URL, not a passing state
  410, // gone for good, by definition
  413, // too large: the same body stays too large
  422, // well-formed but refused for its content (a validation error): the same content is refused again
] as const;
// Retried by every policy: 408 and 425 (too early or too slow: timing), 409 (a conflict that clears, or
// that the caller accepts as "already there"), 429 and 5xx (load and outages: Retry-After is waited
// for), and 3xx (redirects are never followed; a moved receiver is fixed on its side or by changing
// the URL, which the next try reads).

/** Exceptions to the table, each one for a reason a kind of API gives. */
export interface StatusPolicyOptions {
  /**
   * 401 and 403 are final. For vendor APIs called with credentials an admin configured (an API key, a
   * bot token: Zendesk, Chatwoot, connectors built on `http-json.ts`): the same credentials are refused
   * again until someone changes the connector, and a changed connector is a new instance anyway. Failing
   * at once tells the bot now instead of after the whole retry budget.
   */
  configuredCredentials?: boolean;
  /**
   * 403 is final, 401 is retried. For APIs where each conversation holds a short-lived token the
   * connector renews (Salesforce's per-conversation access token): a 401 means "expired, renew and try
   * again" (the connector renews on 401 and the next try carries the new token), while 403 says this
   * subject may never do this.
   */
  renewableToken?: boolean;
}

export interface StatusPolicy {
  /** Named in docs and tests. */
  readonly name: string;
  /** Statuses that fail the work for good. */
  readonly final: ReadonlySet<number>;
}

export function statusPolicy(name: string, options: StatusPolicyOptions = {}): StatusPolicy {
  const final = new Set<number>(FINAL_STATUSES);
  if (options.configuredCredentials) final.add(401).add(403);
  if (options.renewableToken) final.add(403);
  return Object.freeze({ name, final });
}

/**
 * The policies in use, by whom the call goes to. Without an option, 401 and 403 are retried: for our
 * own signed webhooks (bots, generic-webhook helpdesks) they mean the receiver did not accept our
 * signature, which happens while the two sides rotate a secret or the receiver redeploys, and clears
 * when they are in step again; Standard Webhooks senders retry every non-2xx answer for the same reason.
 */
export const STATUS_POLICIES = {
  signedWebhook: statusPolicy('signed webhook'),
  vendorApi: statusPolicy('vendor API', { configuredCredentials: true }),
  salesforce: statusPolicy('salesforce', { renewableToken: true }),
} as const;

/** True when a non-2xx status is worth another try under the policy. */
export function isRetryable(policy: StatusPolicy, status: number): boolean {
  return !policy.final.has(status);
}
