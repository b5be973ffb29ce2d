import { inTransaction, type UnitOfWork } from '../store/unit-of-work.js';
import { AppError } from '../resilience/errors.js';
import type { Connectors } from '../connectors/connector-store.js';
import type { InboundEvent, InboundRequest } from '../connectors/connector.js';
import type { Deps } from './deps.js';
import { emitBotEvents } from './events.js';
import { lockHandover } from './handover-lock.js';
import { endLocked, markAgentJoined } from './lifecycle.js';
import { postAgentMessageIn, postAgentTypingIn } from './messages.js';

/**
 * An external system called the connector's inbound URL: verify → store (receipt + effects in one
 * transaction) → 2xx. A repeated webhook id is answered 2xx without doing anything twice.
 */
export async function receiveInbound(deps: Deps, connectors: Connectors, input: { connectorId: string; request: InboundRequest }): Promise<{ duplicate: boolean; applied: number }> {
  const { record, connector } = await connectors.get(input.connectorId);
  if (!connector.handleInbound) throw new AppError('connector_not_found', { message: `Connectors of type ${record.type} take no inbound events.` });
  const result = connector.handleInbound(input.request);
  if (!result.ok) {
    if (result.reason === 'invalid_body') throw new AppError('invalid_request', { message: result.message });
    throw new AppError(result.reason === 'stale_timestamp' ? 'stale_timestamp' : 'invalid_signature', { message: result.message });
  }
  return inTransaction(deps.db, async (uow) => {
    const { rows } = await uow.q.query('insert into inbound_receipts (connector_id, webhook_id) values ($1, $2) on conflict do nothing returning webhook_id', [record.id, result.receiptId]);
    if (rows.length === 0) return { duplicate: true, applied: 0 };
    for (const event of result.events) await applyInbound(deps, uow, record.tenantId, record.id, event);
    return { duplicate: false, applied: result.events.length };
  });
}

/**
 * Applies one event an external system told us about, inside the caller's transaction: the one path for
 * inbound webhooks and pull streams alike.
 */
export async function applyInbound(deps: Deps, uow: UnitOfWork, tenantId: string, connectorId: string, event: InboundEvent): Promise<void> {
  const handover = await lockHandover(uow.q, tenantId, event.handoverId);
  // Only the connector the handover went to may speak for it.
  if (handover.connectorId !== connectorId) throw new AppError('handover_not_found');
  const now = deps.now();
  switch (event.type) {
    case 'agent.joined':
      if (handover.state === 'ended') throw new AppError('handover_ended');
      await markAgentJoined(deps, uow, handover, event.agent, null, now);
      return;
    case 'message.created':
      await postAgentMessageIn(deps, uow, {
        tenantId,
        handoverId: handover.id,
        clientId: event.message.id,
        text: event.message.text,
        attachments: event.message.attachments,
        agent: event.agent ?? handover.agent ?? { id: 'agent' },
        source: 'connector',
      });
      return;
    case 'agent.typing':
      await postAgentTypingIn(deps, uow, { tenantId, handoverId: handover.id, typing: event.typing, source: 'connector' });
      return;
    case 'queue.updated':
    case 'handover.transferred': {
      if (handover.state === 'ended') throw new AppError('handover_ended');
      const data = event.type === 'queue.updated' ? { position: event.position ?? null, estimatedWaitSeconds: event.estimatedWaitSeconds ?? null } : event.data;
      await emitBotEvents(uow, deps.bus, tenantId, [{ type: event.type, handoverId: handover.id, conversationId: handover.conversationId, data }], now);
      return;
    }
    case 'handover.ended':
      if (handover.state !== 'ended') await endLocked(deps, uow, handover, event.reason, 'connector', event.detail);
      return;
  }
}
