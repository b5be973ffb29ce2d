import type { Agent } from 'undici';
import type { Connectors } from '../connectors/connector-store.js';
import type { AgentSideWork } from '../connectors/connector.js';
import type { Deps } from '../handover/deps.js';
import { endHandover } from '../handover/lifecycle.js';
import { postSignedJson } from './http-post.js';
import type { Deliverer, OutboxRow } from './worker.js';
import type { OutboxTarget } from './outbox.js';

/** Bot side: the tenant's signed webhook, read fresh for each item so a changed URL applies at once. */
export function botWebhookDeliverer(deps: Deps, dispatcher: Agent): Deliverer {
  return {
    async deliver(row, signal) {
      const { rows } = await deps.db.query<{ webhook_url: string | null; webhook_secret: string }>('select webhook_url, webhook_secret from tenants where id = $1', [row.tenant_id]);
      const tenant = rows[0];
      // The tenant removed its webhook: the event stays readable on the SSE stream and the poll endpoint.
      if (!tenant?.webhook_url) return;
      const event = row.payload as { id: string };
      await postSignedJson(dispatcher, tenant.webhook_url, tenant.webhook_secret, event.id, event, signal);
    },
    async onGiveUp() {
      // Nothing else to do: the event stays in the log for SSE and polling, and the attempts are recorded.
    },
  };
}

/** Agent side: the handover's connector. */
export function connectorDeliverer(deps: Deps, connectors: Connectors): Deliverer {
  return {
    async deliver(row, signal) {
      const { connector } = await connectors.get(row.connector_id!);
      // A system that cannot show the user typing gets nothing: the signal is ephemeral anyway.
      if (row.kind === 'user.typing' && connector.capabilities?.userTyping === false) return;
      const { rows } = await deps.db.query<{ external_ref: string | null }>('select external_ref from handovers where id = $1', [row.handover_id]);
      const result = await connector.deliver(row.payload as AgentSideWork, { externalRef: rows[0]?.external_ref ?? null, signal });
      return result ?? undefined;
    },
    async onGiveUp(row, error) {
      // Losing typing is harmless; losing anything else means the agent side can no longer be trusted
      // with this conversation: end it, tell the bot why, and drop the rest of its lane.
      if (row.kind === 'user.typing' || row.kind === 'handover.ended') return;
      await deps.db.transaction(async (q) => {
        await q.query(`update outbox set state = 'cancelled' where lane = $1 and state = 'pending'`, [row.lane]);
        await q.query('update outbox_lanes set pending = 0 where lane = $1', [row.lane]);
      });
      await endHandover(deps, {
        tenantId: row.tenant_id,
        handoverId: row.handover_id,
        reason: 'failed',
        by: 'system',
        detail: `The agent-side system did not take ${row.kind}: ${error.message}`,
      });
    },
  };
}

export function deliverers(deps: Deps, connectors: Connectors, dispatcher: Agent): Record<OutboxTarget, Deliverer> {
  return { bot: botWebhookDeliverer(deps, dispatcher), agent: connectorDeliverer(deps, connectors) };
}

export type { OutboxRow };
