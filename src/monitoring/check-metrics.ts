import { Gauge, type Registry } from 'prom-client';
import type { ConnectorCheckLine } from '../connectors/connector-checks.js';

/**
 * `handover_connector_check_ok{connector_id, connector_type}`: 1 when the connector's last setup check
 * passed, 0 when it failed. Connectors with nothing to check (a generic webhook without an availability
 * URL) have no sample. One series per connector: bounded by the connectors configured.
 */
export function createCheckMetrics(registry: Registry): { record(line: ConnectorCheckLine): void; forget(connectorId: string): void } {
  const gauge = new Gauge({
    name: 'handover_connector_check_ok',
    help: "Whether the connector's last setup check passed (1) or failed (0): credentials, account and app ids, reachability.",
    labelNames: ['connector_id', 'connector_type'],
    registers: [registry],
  });
  const types = new Map<string, string>();
  return {
    record(line) {
      if (line.verdict === 'unchecked') return this.forget(line.connectorId);
      types.set(line.connectorId, line.type);
      gauge.set({ connector_id: line.connectorId, connector_type: line.type }, line.verdict === 'ok' ? 1 : 0);
    },
    forget(connectorId) {
      const type = types.get(connectorId);
      if (type === undefined) return;
      gauge.remove({ connector_id: connectorId, connector_type: type });
      types.delete(connectorId);
    },
  };
}
