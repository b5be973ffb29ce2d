/**
 * Delay before retry number `attempt` (1-based): exponential, capped, with "equal jitter" — half fixed,
 * half random — so a fleet of workers does not retry in lockstep, yet no retry comes immediately.
 * A Retry-After from the remote side is honoured up to the cap.
 */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, retryAfterMs?: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  const jittered = ceiling / 2 + random() * (ceiling / 2);
  return Math.round(Math.min(maxMs, Math.max(jittered, retryAfterMs ?? 0)));
}
