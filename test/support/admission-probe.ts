import { parsePromText, valueOf } from './prom-text.js';
import type { TestService } from './test-service.js';

/** The admission controller's counts as `/metrics` shows them (read over HTTP, like an operator would). */
export async function admissionCounts(t: TestService): Promise<{ inflight: number; waiting: number; limit: number }> {
  const res = await fetch(`${t.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
  const samples = parsePromText(await res.text());
  return {
    inflight: valueOf(samples, 'http_server_active_requests') ?? NaN,
    waiting: valueOf(samples, 'handover_admission_waiting') ?? NaN,
    limit: valueOf(samples, 'handover_admission_limit') ?? NaN,
  };
}

/** Ten API calls in a row, each answered by the API (not refused for load). */
export async function answeredCalls(t: TestService, token: string, count = 10): Promise<number> {
  let answered = 0;
  for (let i = 0; i < count; i++) {
    const res = await t.api('GET', '/v1/availability?queue=support', { token });
    if (res.status === 200) answered++;
  }
  return answered;
}
