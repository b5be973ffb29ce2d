/** Prometheus text exposition, read just enough for assertions: the parser `handover doctor` uses. */
import { parseMetrics, type Sample } from '../../src/cli/diagnose.js';

export type { Sample };
export const parsePromText = parseMetrics;

/** The value of the one sample with this name whose labels include `labels` (summed if several match). */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const matching = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matching.length === 0) return undefined;
  return matching.reduce((sum, s) => sum + s.value, 0);
}
