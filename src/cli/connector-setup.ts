import type { SetupItem } from '../connectors/connector.js';

/** The admin API's answer to `POST /v1/admin/tenants/{tenantId}/connectors/{connectorId}/setup`. */
export interface ConnectorSetupAnswer {
  connectorId: string;
  name: string;
  type: string;
  inboundUrl: string;
  applied: boolean;
  check: { verdict: 'ok' | 'failing' | 'unchecked'; problem: string | null; reason: string };
  items: SetupItem[];
  failure: string | null;
}

const marks: Record<SetupItem['state'], string> = { ok: '✓', changed: '→', missing: '✗', unknown: '?' };

/**
 * The report an operator reads: the check, then one line per vendor setting (✓ as needed, → changed
 * now, ✗ not as needed, ? not readable through the API), then what to do next. Healthy when the check
 * did not fail, nothing is missing and nothing stopped the setup.
 */
export function formatConnectorSetup(answer: ConnectorSetupAnswer): { text: string; healthy: boolean } {
  const lines = [`${answer.name} (${answer.type}, ${answer.connectorId})`, `  inbound URL: ${answer.inboundUrl}`];
  const check =
    answer.check.verdict === 'failing'
      ? `✗ check failing (${answer.check.problem}): ${answer.check.reason}`
      : `${answer.check.verdict === 'ok' ? '✓' : '·'} check: ${answer.check.reason}`;
  lines.push(`  ${check}`);
  if (answer.items.length === 0 && !answer.failure)
    lines.push('  nothing to set up on the vendor side for this connector type (see its page in docs/connectors/)');
  for (const item of answer.items) lines.push(`  ${marks[item.state]} ${item.setting}: ${item.detail}`);
  if (answer.failure) lines.push(`  ✗ stopped: ${answer.failure}`);
  const missing = answer.items.filter((i) => i.state === 'missing').length;
  const changed = answer.items.filter((i) => i.state === 'changed').length;
  if (changed > 0) lines.push(`  changed ${changed} setting(s).`);
  if (missing > 0)
    lines.push(
      answer.applied
        ? `  ${missing} setting(s) still to set: see each line.`
        : `  ${missing} setting(s) to set: run again with --apply to set what the API allows.`,
    );
  return { text: lines.join('\n'), healthy: answer.check.verdict !== 'failing' && missing === 0 && !answer.failure };
}
