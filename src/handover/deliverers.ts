import type { Agent } from 'undici';
import type { Connectors } from '../connectors/connector-store.js';
import type { AgentSideWork, Connector, DeliveryContext } from '../connectors/connector.js';
import { failureText } from '../connectors/connector-helpers.js';
import type { Deps } from '../deps.js';
import { endHandover } from './lifecycle.js';
import { postSignedJson } from '../outbound/index.js';
import type { Deliverer, OutboxRow } from '../delivery/worker.js';
import type { OutboxTarget } from '../delivery/outbox.js';
import { TtlCache } from '../store/ttl-cache.js';
import { LoadingCache } from '../store/loading-cache.js';
import { annotateActiveSpan } from '../telemetry/tracing.js';
import { readAttachmentFile, withFreshLinks, type FileDeps } from '../attachments/attachments.js';

/** How long a tenant's webhook URL and secret are reused before they are read again. */
const WEBHOOK_TTL_MS = 1000;

/**
 * Bot side: the tenant's signed webhook. Its URL and secret are read at most once a second per tenant
 * (a changed URL applies within a second) rather than once per event: on the hot path every query is a
 * round trip and a system call.
 */
export function botWebhookDeliverer(deps: Pick<Deps, 'db'>, dispatcher: Agent): Deliverer {
  // One read per tenant at a time, and a tenant in use read again before its entry expires.
  const webhooks = new LoadingCache<string, { webhook_url: string | null; webhook_secret: string } | null>(
    async (tenantId) => {
      const { rows } = await deps.db.query<{ webhook_url: string | null; webhook_secret: string }>(
        'select webhook_url, webhook_secret from tenants where id = $1',
        [tenantId],
      );
      return rows[0] ?? null;
    },
    { ttlMs: WEBHOOK_TTL_MS, maxEntries: 10_000, refreshAheadMs: WEBHOOK_TTL_MS / 5 },
  );
  return {
    async deliver(row, signal) {
      const tenant = await webhooks.get(row.tenant_id);
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

/**
 * What follows an agent-side item given up (other than typing or an end): the conversation ends. It
 * runs where the handover's events are published (on the HTTP thread when delivery has a thread of its
 * own); `failure` is the failure's text as it may be shown.
 */
export type GiveUp = (row: OutboxRow, failure: string) => Promise<void>;

/**
 * Agent side: the handover's connector. The handover's external id comes with the item (read with it
 * from the outbox, or returned by the statement that accepted it); one the system gave on this
 * instance since is remembered (bounded), as the item may have been read before it was recorded.
 */
export function connectorDeliverer(deps: FileDeps, connectors: Connectors, giveUp: GiveUp): Deliverer {
  const externalRefs = new TtlCache<string, string>(10 * 60_000, 10_000);
  return {
    async deliver(row, signal) {
      const { connector, record } = await connectors.get(row.connector_id!);
      annotateActiveSpan({ 'handover.connector.type': record.type });
      // A system that cannot show the user typing (no `sendTyping`) gets nothing: the signal is ephemeral anyway.
      if (row.kind === 'user.typing' && !connector.sendTyping) return;
      const externalRef = externalRefs.get(row.handover_id) ?? row.external_ref ?? null;
      const readAttachment = deps.attachments
        ? (id: string) => readAttachmentFile(deps, { tenantId: row.tenant_id, handoverId: row.handover_id, id })
        : undefined;
      const result = await perform(connector, withFreshFileLinks(deps, agentSideWork(row)), {
        externalRef,
        signal,
        attempt: row.attempts + 1,
        ...(readAttachment ? { readAttachment } : {}),
      });
      if (result?.externalRef) externalRefs.set(row.handover_id, result.externalRef);
      return result ?? undefined;
    },
    async onGiveUp(row, error) {
      // Losing typing is harmless; losing anything else means the agent side can no longer be trusted
      // with this conversation: end it, tell the bot why, and drop the rest of its lane.
      if (row.kind === 'user.typing' || row.kind === 'handover.ended') return;
      await giveUp(row, failureText(error, { quoteAnswers: !deps.config.redactContent }));
    },
  };
}

/**
 * The conversation whose agent side could not take an item ends as `failed`, the rest of its lane
 * dropped. The agent side is told of the end (one `handover.ended`, reason `failed`) when it had taken
 * the start: its agent would otherwise wait in a conversation whose messages stopped.
 */
export function endAfterGiveUp(deps: Deps): GiveUp {
  return async (row, failure) => {
    await deps.db.transaction(async (q) => {
      // An end already queued stays: the helpdesk is told of the end it belongs to (one the user or the
      // bot made while this item was being retried), as it would be of this give-up's.
      await q.query(`update outbox set state = 'cancelled' where lane = $1 and state = 'pending' and kind <> 'handover.ended'`, [row.lane]);
      await q.query(`update outbox_lanes set pending = (select count(*) from outbox where lane = $1 and state = 'pending') where lane = $1`, [row.lane]);
    });
    await endHandover(deps, {
      tenantId: row.tenant_id,
      handoverId: row.handover_id,
      reason: 'failed',
      by: 'system',
      detail: `The agent-side system did not take ${row.kind}: ${failure}`,
      tellAgentSide: row.kind !== 'handover.requested',
    });
  };
}

/** The one place a piece of agent-side work is matched to the connector method of its kind. */
async function perform(connector: Connector, work: AgentSideWork, context: DeliveryContext): Promise<{ externalRef?: string } | void> {
  switch (work.kind) {
    case 'handover.requested':
      return connector.open(work, context);
    case 'message.created':
      return connector.sendMessage(work, context);
    case 'user.typing':
      return connector.sendTyping?.(work, context);
    case 'handover.ended':
      return connector.end(work, context);
  }
}

/**
 * The item's work. Typing and an end queued by a release before they carried `createdAt` get the time
 * their item was queued, so that every try of one sends the same body.
 */
function agentSideWork(row: OutboxRow): AgentSideWork {
  const work = row.payload as AgentSideWork;
  if ((work.kind === 'user.typing' || work.kind === 'handover.ended') && typeof work.createdAt !== 'string') {
    return { ...work, createdAt: new Date(row.created_at).toISOString() };
  }
  return work;
}

/**
 * A user's message with the links of the files this service keeps signed now, for the helpdesk's
 * lifetime: the item may be a retry long after it was enqueued, a system that fetches the file by its
 * URL (Zendesk, Genesys, a generic helpdesk) must get a link that still works, and one that shows it as a
 * link (Intercom's and Freshchat's non-image files) keeps it for as long as its agents read the chat.
 */
function withFreshFileLinks(deps: FileDeps, work: AgentSideWork): AgentSideWork {
  if (work.kind !== 'message.created' || !work.message.attachments.some((a) => a.id)) return work;
  return { ...work, message: { ...work.message, attachments: withFreshLinks(deps, work.message.attachments, { for: 'helpdesk' }) } };
}

export function deliverers(deps: FileDeps, connectors: Connectors, dispatcher: Agent, giveUp: GiveUp): Record<OutboxTarget, Deliverer> {
  return { bot: botWebhookDeliverer(deps, dispatcher), agent: connectorDeliverer(deps, connectors, giveUp) };
}

export type { OutboxRow };
