import type { TSchema } from '@sinclair/typebox';
import { DeliveryError } from '../outbound/delivery-error.js';
import type { Logger } from '../telemetry/logger.js';
import type { AgentInfo, Attachment, EndReason, TranscriptEntry, UserInfo } from '../model/handover.js';

/**
 * A connector links handovers to one external customer-service system. The service hands it the
 * agent side's work one piece at a time, each kind to a method of its own: `open` when a handover starts
 * (it returns the system's id of the conversation, its `externalRef`), `sendMessage` for each of the
 * user's messages, `sendTyping` for the user typing (optional: a connector without it does not show
 * typing, and such work is dropped) and `end` when the handover ends. What the system tells us comes
 * back through `handleInbound` (it calls us) or `pullStream` (we read it); the rest is optional.
 *
 * To add a connector:
 * 1. Make a folder `src/connectors/<type>/` with `<type>-config.ts` (a TypeBox schema of its settings)
 *    and `<type>-connector.ts` (the definition below). Name any other file by its role, as the other
 *    folders do: `<type>-api.ts` (calls to the system's API), `<type>-auth.ts` (tokens the API needs
 *    beyond a fixed key), `<type>-content.ts` (our messages and transcripts ↔ the system's content),
 *    `<type>-webhook.ts` (`handleInbound`: what the system sends to our inbound URL), `<type>-stream.ts`
 *    (`pullStream`: what we read from the system) and `<type>-setup.ts` (`setup`). What several
 *    connectors share is in `connector-helpers.ts` (`requireRef`, inbound text and headers, note lines).
 * 2. Add the definition to the array in `registry.ts`.
 * 3. Write a fake server that speaks the system's real wire format under `test/fakes/` and run the
 *    shared contract suite (`test/connectors/contract.ts`) against it.
 * 4. Document the vendor-side setup in `docs/connectors/<type>.md`.
 *
 * Doing it well (see `zendesk/` and `chatwoot/`):
 * - Give the config a base URL, so it can point at a fake, a sandbox or a regional host. List every
 *   credential in `secretFields`: they are stored encrypted and reach only `create`.
 * - Call out through the shared dispatcher (`http-json.ts`) with the given signal. Throw `DeliveryError`
 *   with `retryable: false` only for what can never succeed.
 * - Make every method safe to repeat: a retry gets the same work again (`DeliveryContext.attempt`), so
 *   send ids that stay the same, or look before writing twice. Leave out `sendTyping` when the system
 *   cannot show typing (or only under some config: define it only then), rather than doing nothing.
 * - Add `availability` if the system can say who is online.
 * - Add `check` with the cheapest authenticated read the system documents, through `checkCall`
 *   (`check-call.ts`), so a wrong credential or id is named before the first handover fails.
 * - Add `setup` when the system's API can read (and perhaps change) vendor settings a deployment needs
 *   (webhooks pointing at the inbound URL, their events, routing flags), so `handover connectors setup`
 *   can report and fix them.
 * - In `handleInbound`, verify first; give one receipt per vendor event (its own id, so repeats are
 *   dropped); address events by `handoverId` or by the system's own `externalRef`; give echoes of our
 *   own actions an empty event list (acknowledged, not applied).
 */
export interface ConnectorDefinition<Config = unknown> {
  type: string;
  /** Validated when a connector is added; errors are answered as `invalid_connector_config`. */
  configSchema: TSchema;
  /** Config fields that hold credentials: never logged, never returned by the API. */
  secretFields: readonly string[];
  /** Config fields that hold URLs this service will call: checked against the outbound policy (SSRF). */
  urlFields?: readonly string[];
  /** A fresh instance per connector row: instances never share credentials. */
  create(config: Config, deps: ConnectorDeps): Connector;
}

export interface ConnectorDeps {
  connectorId: string;
  tenantId: string;
  log: Logger;
  /** Deadline of one outbound call. */
  timeoutMs: number;
  /** Durable per-handover session state, for connectors that keep one (see ConnectorSession). */
  sessions?: ConnectorSessions;
}

/**
 * Work the service hands to the agent side, always in the order it was accepted per handover. Each kind
 * has its own method of `Connector`; the deliverer (src/handover/deliverers.ts) calls the one of the kind.
 */
export type AgentSideWork = OpenWork | MessageWork | TypingWork | EndWork;

/** A handover starts: open the conversation on the system (`Connector.open`). */
export interface OpenWork {
  kind: 'handover.requested';
  eventId: string;
  handoverId: string;
  conversationId: string;
  queue: string;
  user: UserInfo;
  transcript: TranscriptEntry[];
  metadata: Record<string, unknown>;
  createdAt: string;
}

/** The user wrote a message (`Connector.sendMessage`). */
export interface MessageWork {
  kind: 'message.created';
  eventId: string;
  handoverId: string;
  conversationId: string;
  message: { id: string; text: string; attachments: Attachment[]; createdAt: string };
}

/** The user started or stopped typing (`Connector.sendTyping`). */
export interface TypingWork {
  kind: 'user.typing';
  eventId: string;
  handoverId: string;
  conversationId: string;
  typing: boolean;
  /** When it was accepted: a retry carries the same time (an item queued by an older release: its item's). */
  createdAt: string;
}

/** The handover ended, whoever ended it (`Connector.end`). */
export interface EndWork {
  kind: 'handover.ended';
  eventId: string;
  handoverId: string;
  conversationId: string;
  reason: EndReason;
  /** When the handover ended: a retry carries the same time (an item queued by an older release: its item's). */
  createdAt: string;
}

export interface DeliveryContext {
  /** The connector-side id of the conversation, once `open` returned one. */
  externalRef: string | null;
  signal: AbortSignal;
  /**
   * 1 on the first try of this piece of work, more on a retry: a retry may follow a try whose answer
   * was lost after the system took it, so a connector without an idempotency key checks first.
   */
  attempt?: number;
  /**
   * The bytes of a file this service keeps (an attachment with an `id`), for a system whose API takes
   * files rather than links; null when it is no longer kept. Absent when attachments are off.
   */
  readAttachment?(id: string): Promise<AttachmentFile | null>;
}

/** A kept attachment's bytes, with the name and type to send them under. */
export interface AttachmentFile {
  name: string;
  contentType: string;
  bytes: Buffer;
}

// The error every outbound call throws; the port names it for connectors (see src/outbound/).
export { DeliveryError };

/** What an external system told us, in the service's own terms. */
export type InboundEvent =
  | { type: 'agent.joined'; handoverId: string; agent: AgentInfo }
  | { type: 'message.created'; handoverId: string; message: { id: string; text: string; attachments: Attachment[] }; agent?: AgentInfo }
  | { type: 'agent.typing'; handoverId: string; typing: boolean }
  | { type: 'queue.updated'; handoverId: string; position?: number; estimatedWaitSeconds?: number }
  | { type: 'handover.transferred'; handoverId: string; data: Record<string, unknown> }
  | { type: 'handover.ended'; handoverId: string; reason: EndReason; detail?: string };

type AddressedByRef<E> = E extends unknown ? Omit<E, 'handoverId'> & { externalRef: string } : never;

/**
 * The same events, for systems that only know their own conversation ids: addressed by the
 * `externalRef` that `open` returned. An event whose `externalRef` matches
 * no handover of the connector is ignored (vendors send events for conversations we never opened),
 * and so is one for a handover that has ended.
 */
export type InboundEventByRef = AddressedByRef<InboundEvent>;

export interface InboundRequest {
  headers: Record<string, string | string[] | undefined>;
  rawBody: string;
  body: unknown;
}

/**
 * One delivery unit of the system, de-duplicated on its own: a system that batches several events
 * per request (Zendesk) gives each its id, so a retried batch applies only what is new. `events`
 * may be empty: an echo of our own action or an event of no interest is recorded and answered 2xx,
 * so the system does not retry it.
 */
export interface InboundReceipt {
  receiptId: string;
  events: Array<InboundEvent | InboundEventByRef>;
  /** The event was authentic but not of the shape this connector knows: acknowledged, and logged. */
  unreadable?: string;
}

export type InboundResult =
  | { ok: true; receiptId: string; events: InboundEvent[] }
  | { ok: true; receipts: InboundReceipt[] }
  | { ok: false; reason: 'bad_signature' | 'stale_timestamp' | 'invalid_body'; message: string };

/** Agents the external system reports as able to take a chat now. */
export interface AgentAvailability {
  agentsOnline: number;
  /**
   * Per queue name, where the system routes queues to groups of agents (teams) and can count them
   * apart: a queue listed here is judged by its own count, others by `agentsOnline`.
   */
  byQueue?: Record<string, number>;
}

/**
 * One instance per connector row. Each piece of agent-side work goes to the method of its kind, one at a
 * time per handover; a method throws `DeliveryError` to fail the try (retried unless `retryable: false`).
 * A retry calls the same method again with the same work, so each method must be safe to repeat (see
 * `DeliveryContext.attempt`).
 */
export interface Connector {
  /**
   * Opens the handover's conversation on the system ('handover.requested'). Resolves with the system's
   * id of it (`externalRef`), which every later call gets in `DeliveryContext.externalRef` and inbound
   * events may be addressed by.
   */
  open(work: OpenWork, context: DeliveryContext): Promise<{ externalRef?: string } | void>;
  /** Posts one of the user's messages into the conversation ('message.created'). */
  sendMessage(work: MessageWork, context: DeliveryContext): Promise<void>;
  /**
   * Shows the agents that the user is typing, or stopped ('user.typing'). Absent: the system cannot show
   * it, and such work is dropped without a call (typing is ephemeral anyway).
   */
  sendTyping?(work: TypingWork, context: DeliveryContext): Promise<void>;
  /** Ends the conversation on the system's side ('handover.ended', whoever ended the handover). */
  end(work: EndWork, context: DeliveryContext): Promise<void>;
  /** Verifies and parses a request the system sent to our inbound URL. */
  handleInbound?(request: InboundRequest): InboundResult | Promise<InboundResult>;
  /** Reads the system's event stream of a handover (systems that push nothing to us). */
  pullStream?: PullStream;
  /**
   * Asks the system who can take a chat. Never called on a request path: a background refresher
   * caches the answer (src/connectors/availability-cache.ts) and requests read the cache.
   */
  availability?(signal: AbortSignal): Promise<AgentAvailability>;
  /**
   * Checks the setup with the cheapest authenticated read the system documents (credentials valid,
   * account/app/inbox found). Never called on a request path and never part of delivery: a background
   * checker runs it on a timer, bounded in time and concurrency, and caches the verdict
   * (src/connectors/connector-checks.ts). Absent: the connector has nothing it can check.
   */
  check?(signal: AbortSignal): Promise<ConnectorCheck>;
  /**
   * Reads the vendor settings a deployment needs and says, for each, whether it is as needed; with
   * `apply`, changes what the system's API allows and says what it changed. Run on an operator's
   * request only (`handover connectors setup`), never in the background. Absent: nothing to set up.
   */
  setup?(context: SetupContext, signal: AbortSignal): Promise<void>;
}

export interface SetupContext {
  /** The URL the system must call: this connector's inbound URL. */
  inboundUrl: string;
  /** Change what is not as needed, where the system's API allows it. */
  apply: boolean;
  /** Also make changes that cannot be undone (Zendesk's `multiConvoEnabled`); only with `apply`. */
  irreversible: boolean;
  /** Tells one setting as it is found (or changed): what was reported stands even if a later call fails. */
  report(item: SetupItem): void;
}

export const setupStates = ['ok', 'changed', 'missing', 'unknown'] as const;

/**
 * One vendor setting. `ok`: as needed; `changed`: it was not, and was set now; `missing`: it is not as
 * needed (`detail` says how to set it: by `--apply`, or by hand); `unknown`: the API cannot read it,
 * `detail` says where to look.
 */
export interface SetupItem {
  /** Where and what, in the system's own words: "app settings.multiConvoEnabled". */
  setting: string;
  state: (typeof setupStates)[number];
  detail: string;
}

export const checkProblems = ['credentials_rejected', 'not_found', 'unreachable', 'misconfigured'] as const;
export type CheckProblem = (typeof checkProblems)[number];

/**
 * A connector's own verdict on its setup. `unchecked`: the system offers nothing to check without acting
 * (the generic webhook cannot be asked without sending an event); `reason` says so.
 */
export type ConnectorCheck =
  { verdict: 'ok'; reason: string } | { verdict: 'unchecked'; reason: string } | { verdict: 'failing'; problem: CheckProblem; reason: string };

/**
 * State a connector keeps per handover with the external system, stored in Postgres because any
 * instance may deliver the next item or hold the handover's stream.
 */
export interface ConnectorSession {
  /** The conversation's id on the other side. */
  externalId: string;
  /** SECRET: a credential for this one conversation (never logged, never returned by an API). */
  credential: string | null;
  /** The last stream event applied (resume after it). */
  position: string | null;
}

export interface ConnectorSessions {
  load(handoverId: string): Promise<ConnectorSession | null>;
  /** Creates the session or changes the given fields. `openStream: true` asks for its stream to be read. */
  save(handoverId: string, fields: Partial<ConnectorSession> & { openStream?: boolean }): Promise<void>;
}

/** What a pull stream gets from the service for one handover. */
export interface StreamContext {
  handoverId: string;
  /** The session as stored when this connection starts (position = where to resume). */
  session: ConnectorSession;
  /** Aborted when this instance stops holding the stream (handover ended, lease lost, shutdown). */
  signal: AbortSignal;
  /**
   * Applies the events read up to `position` and stores the position, in one transaction (the same
   * path inbound webhooks take). Throws when the lease was lost meanwhile: stop reading then.
   */
  apply(position: string, events: InboundEvent[]): Promise<void>;
  /** Stores a renewed credential before it is used. */
  saveCredential(credential: string): Promise<void>;
}

/** The external system will not let us follow this conversation any more: the handover ends `failed`. */
export class StreamLostError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'StreamLostError';
  }
}

/**
 * Optional capability of connectors whose system pushes nothing to us: the service holds one stream per
 * open session, on exactly one instance (a lease in Postgres), and calls `read` again after it returns
 * or throws (with backoff), until the handover ends.
 */
export interface PullStream {
  /** Reads one connection's worth of events; returns when the connection ends. */
  read(context: StreamContext): Promise<void>;
}
