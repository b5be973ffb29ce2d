/** How calls are retried. Only calls that are safe to send twice are retried at all (see client.ts). */
export interface RetryPolicy {
  /** Most sends of one call, the first included (default 4). 1: never retry. */
  maxAttempts: number;
  /** First backoff (default 250 ms), doubled per attempt, with full jitter. */
  baseDelayMs: number;
  /** Cap on one wait, Retry-After included (default 30 s): a longer Retry-After ends the retries. */
  maxDelayMs: number;
}

export const defaultRetry: RetryPolicy = { maxAttempts: 4, baseDelayMs: 250, maxDelayMs: 30_000 };

/**
 * The wait before attempt `attempt + 1`: at least what Retry-After asked for, else exponential backoff
 * with full jitter. `undefined`: waiting would pass the cap, so give up now.
 */
export function delayBefore(attempt: number, policy: RetryPolicy, retryAfterSeconds: number | undefined, random = Math.random): number | undefined {
  const backoff = random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  if (retryAfterSeconds === undefined) return backoff;
  const asked = retryAfterSeconds * 1000;
  return asked > policy.maxDelayMs ? undefined : Math.max(asked, Math.min(backoff, policy.maxDelayMs));
}

/** Retry-After as seconds (a number of seconds, or an HTTP date). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
