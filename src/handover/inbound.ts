import { inTransaction, type UnitOfWork } from '../store/unit-of-work.js';
import { externalIdKey } from '../store/ids.js';
import { storableText } from '../store/storable-text.js';
import { AppError } from '../resilience/errors.js';
import type { ConnectorRecord, Connectors } from '../connectors/connector-store.js';
import type { InboundEvent, InboundEventByRef, InboundReceipt, InboundRequest } from '../connectors/connector.js';
import { storableInboundEvent } from '../connectors/connector-helpers.js';
import type { Deps } from '../deps.js';
import { emitBotEvents } from './events.js';
import { lockHandover } from './handover-lock.js';
import { endLocked, markAgentJoined } from './lifecycle.js';
import { postAgentMessageIn, postAgentTypingIn } from './messages.js';

/** What checking a request to a connector's inbound URL found. */
export type InboundVerdict =
  | { ok: true; record: ConnectorRecord; receipts: InboundReceipt[] }
  /** `authentic`: the sender proved who it is, but sent a body it should not have (answered 400). */
  | { ok: false; authentic: boolean; error: AppError };

/**
 * Verifies a request to a connector's inbound URL, before anything is spent on it beyond the check
 * itself (no rate budget of the connector, no transaction). An unknown connector is not authentic
 * either. Failures of our own (the database away) are thrown.
 */
export async function verifyInbound(connectors: Connectors, input: { connectorId: string; request: InboundRequest }): Promise<InboundVerdict> {
  let found: Awaited<ReturnType<Connectors['get']>>;
  try {
    found = await connectors.get(input.connectorId);
  } catch (err) {
    if (err instanceof AppError && err.code === 'connector_not_found') return { ok: false, authentic: false, error: err };
    throw err;
  }
  const { record, connector } = found;
  if (!connector.handleInbound)
    return {
      ok: false,
      authentic: false,
      error: new AppError('connector_not_found', { message: `Connectors of type ${record.type} take no inbound events.` }),
    };
  const result = await connector.handleInbound(input.request);
  if (!result.ok) {
    // Connectors check the body only once the sender is verified.
    if (result.reason === 'invalid_body') return { ok: false, authentic: true, error: new AppError('invalid_request', { message: result.message }) };
    return {
      ok: false,
      authentic: false,
      error: new AppError(result.reason === 'stale_timestamp' ? 'stale_timestamp' : 'invalid_signature', { message: result.message }),
    };
  }
  return { ok: true, record, receipts: 'receipts' in result ? result.receipts : [{ receiptId: result.receiptId, events: result.events }] };
}

/**
 * Stores what a verified request brought (receipts + effects in one transaction), so the caller can
 * answer 2xx. Each receipt (a webhook id, or one event of a batch) is applied once: a repeat is
 * answered 2xx without doing anything twice.
 */
export async function storeInbound(deps: Deps, record: ConnectorRecord, receipts: InboundReceipt[]): Promise<{ duplicate: boolean; applied: number }> {
  return inTransaction(deps.db, async (uow) => {
    let applied = 0;
    let fresh = 0;
    for (const receipt of receipts) {
      const receiptId = storableText(receipt.receiptId);
      // Kept by digest past 256 characters; a receipt of such an id from before was kept as it came.
      if (
        receiptId.length > 256 &&
        (await uow.q.query('select 1 from inbound_receipts where connector_id = $1 and webhook_id = $2', [record.id, receiptId])).rows.length > 0
      )
        continue;
      const { rows } = await uow.q.query(
        'insert into inbound_receipts (connector_id, webhook_id) values ($1, $2) on conflict do nothing returning webhook_id',
        [record.id, externalIdKey(receiptId)],
      );
      if (rows.length === 0) continue;
      fresh++;
      if (receipt.unreadable) {
        deps.log.warn(
          { connectorId: record.id, receiptId: receipt.receiptId, problem: receipt.unreadable },
          'an authentic inbound event could not be read and was dropped',
        );
      }
      for (const event of receipt.events) if (await applyInbound(deps, uow, record.tenantId, record.id, event)) applied++;
    }
    return { duplicate: receipts.length > 0 && fresh === 0, applied };
  });
}

/**
 * Applies one event an external system told us about, inside the caller's transaction: the one path for
 * inbound webhooks and pull streams alike. False when it was ignored (an external conversation that is
 * not one of ours, or already ended).
 */
export async function applyInbound(
  deps: Deps,
  uow: UnitOfWork,
  tenantId: string,
  connectorId: string,
  raw: InboundEvent | InboundEventByRef,
): Promise<boolean> {
  const event = storableInboundEvent(raw);
  // Nothing left to say: only links that were not web links, dropped (storableInboundEvent).
  if (
    event.type === 'message.created' &&
    event.message.text === '' &&
    event.message.attachments.length === 0 &&
    raw.type === 'message.created' &&
    raw.message.attachments.length > 0
  )
    return false;
  if ('externalRef' in event) {
    const { rows } = await uow.q.query<{ id: string }>(
      'select id from handovers where connector_id = $1 and external_ref = $2 order by created_at desc limit 1',
      [connectorId, event.externalRef],
    );
    const handoverId = rows[0]?.id;
    if (!handoverId) return false;
    try {
      await applyToHandover(deps, uow, tenantId, connectorId, handoverId, event);
    } catch (err) {
      // A system that only knows its own conversation keeps talking after we ended ours (an agent's
      // goodbye): nothing to apply, and an error would only make it retry.
      if (err instanceof AppError && err.code === 'handover_ended') return false;
      throw err;
    }
    return true;
  }
  await applyToHandover(deps, uow, tenantId, connectorId, event.handoverId, event);
  return true;
}

async function applyToHandover(
  deps: Deps,
  uow: UnitOfWork,
  tenantId: string,
  connectorId: string,
  handoverId: string,
  event: InboundEvent | InboundEventByRef,
): Promise<void> {
  const handover = await lockHandover(uow.q, tenantId, handoverId);
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
