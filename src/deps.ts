import type { Bus } from './bus/bus.js';
import type { ConnectorCheckLine } from './connectors/connector-checks.js';
import type { Config } from './config/config.js';
import type { Db } from './store/db.js';
import type { Logger } from './telemetry/logger.js';
import type { Funnel } from './telemetry/funnel-metrics.js';
import type { UserIdDigests } from './privacy/user-digest.js';
import type { GroupCommit } from './store/group-commit.js';
import type { UserMessageWrite, UserMessageWritten } from './handover/accept-user-messages.js';
import type { LatencyVerdict } from './resilience/connector-latency.js';
import type { DeskConsoles } from './desk/consoles.js';
import type { AttachmentService } from './attachments/attachment-service.js';

/** What the use cases need from the outside world: passed in, never imported as singletons. */
export interface Deps {
  db: Db;
  bus: Bus;
  log: Logger;
  config: Config;
  now(): Date;
  /** Keyed digests of end users' ids, for the audit log's record of an erasure. */
  userIds: UserIdDigests;
  /** The desk consoles open on this instance: who is at a desk (docs/desk.md, "Presence"). */
  deskConsoles: DeskConsoles;
  /** The circuit of an external system as this instance sees it. */
  connectorState(connectorId: string): 'closed' | 'half_open' | 'open';
  /** Items waiting for an external system, as the outbox's backlog was last sampled (never waits); null: not sampled yet. */
  connectorBacklog(connectorId: string): number | null;
  /** How fast an external system answers, as this instance measured it (in memory; never waits). */
  connectorLatency?(connectorId: string): LatencyVerdict;
  /** Agents an external system last reported available (cached; never waits); null: unknown. */
  agentAvailability?(connectorId: string): { agentsOnline: number; byQueue?: Record<string, number> } | null;
  /** A tenant's connectors' last setup checks (in memory; never waits); absent where nothing checks. */
  connectorChecks?(tenantId: string): ConnectorCheckLine[];
  /** The group commit of user messages (the accept path); absent, each message is written alone. */
  userMessages?: GroupCommit<UserMessageWrite, UserMessageWritten>;
  /** Files attached to messages (src/attachments/); absent when HANDOVER_ATTACHMENT_STORE is `off`. */
  attachments?: AttachmentService;
  /** Counts the handover funnel (metrics); absent in code that has no metrics. */
  funnel?: Funnel;
}
