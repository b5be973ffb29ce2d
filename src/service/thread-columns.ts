import type { Attachment } from '../model/handover.js';
import type { UserMessageWrite, UserMessageWritten } from '../handover/accept-user-messages.js';
import type { ItemOutcome } from '../store/group-commit.js';
import { deserializeError, serializeError, type SerializedError } from '../resilience/errors-across-threads.js';
import type { OutboxRow } from '../delivery/outbox.js';
import { createdAtMsOf, type DeliveryAttempt as Attempt } from './events.js';

/**
 * What crosses between the HTTP thread and the delivery thread on every message, as columns: one array
 * per field rather than one object per item. A message is cloned field by field either way; an object
 * per item also costs the clone its shape (a map found or made per object on the receiving side) and a
 * heap number per time, and the many small objects of a batch of 32 cost several times the clone of
 * their fields (`v8.serialize`/`deserialize` of an accept batch's outcomes: about 1.1 µs an item as
 * objects against 0.35 as columns). Times travel as milliseconds in a Float64Array, copied as bytes.
 */

/** An accept batch (UserMessageWrite[]) as columns. */
export interface AcceptColumns {
  tenantId: string[];
  handoverId: string[];
  clientId: Array<string | null>;
  messageId: string[];
  eventId: string[];
  text: string[];
  /** null: no message of the batch has attachments (the common case); else null per message without. */
  attachments: Array<Attachment[] | null> | null;
  createdAtMs: Float64Array;
  traceParent: Array<string | null>;
}

export function acceptColumns(batch: readonly UserMessageWrite[]): AcceptColumns {
  const n = batch.length;
  const columns: AcceptColumns = {
    tenantId: new Array<string>(n),
    handoverId: new Array<string>(n),
    clientId: new Array<string | null>(n),
    messageId: new Array<string>(n),
    eventId: new Array<string>(n),
    text: new Array<string>(n),
    attachments: null,
    createdAtMs: new Float64Array(n),
    traceParent: new Array<string | null>(n),
  };
  for (let i = 0; i < n; i++) {
    const w = batch[i]!;
    columns.tenantId[i] = w.tenantId;
    columns.handoverId[i] = w.handoverId;
    columns.clientId[i] = w.clientId;
    columns.messageId[i] = w.messageId;
    columns.eventId[i] = w.eventId;
    columns.text[i] = w.text;
    columns.createdAtMs[i] = w.createdAt.getTime();
    columns.traceParent[i] = w.traceParent;
    if (w.attachments.length > 0) (columns.attachments ??= new Array<Attachment[] | null>(n).fill(null))[i] = w.attachments;
  }
  return columns;
}

export function acceptRows(columns: AcceptColumns): UserMessageWrite[] {
  const n = columns.createdAtMs.length;
  const batch = new Array<UserMessageWrite>(n);
  for (let i = 0; i < n; i++) {
    batch[i] = {
      tenantId: columns.tenantId[i]!,
      handoverId: columns.handoverId[i]!,
      clientId: columns.clientId[i] ?? null,
      messageId: columns.messageId[i]!,
      eventId: columns.eventId[i]!,
      text: columns.text[i]!,
      attachments: columns.attachments?.[i] ?? [],
      createdAt: new Date(columns.createdAtMs[i]!),
      traceParent: columns.traceParent[i] ?? null,
    };
  }
  return batch;
}

/** What a batch written in the thread answers for each of its items, in order, as columns. */
export interface OutcomeColumns {
  /** Per item: 0 nothing written (a repeat, no live handover), 1 written, 2 failed (`errors`). */
  kind: Uint8Array;
  seq: Float64Array;
  connectorId: Array<string | null>;
  /** 1: its delivery went to the thread's worker in memory. */
  handed: Uint8Array;
  /** null when no item failed. */
  errors: Array<SerializedError | null> | null;
}

export function outcomeColumns(outcomes: ReadonlyArray<ItemOutcome<UserMessageWritten>>): OutcomeColumns {
  const n = outcomes.length;
  const columns: OutcomeColumns = {
    kind: new Uint8Array(n),
    seq: new Float64Array(n),
    connectorId: new Array<string | null>(n).fill(null),
    handed: new Uint8Array(n),
    errors: null,
  };
  for (let i = 0; i < n; i++) {
    const o = outcomes[i]!;
    if (!o.ok) {
      columns.kind[i] = 2;
      (columns.errors ??= new Array<SerializedError | null>(n).fill(null))[i] = serializeError(o.error);
    } else if (o.value) {
      columns.kind[i] = 1;
      columns.seq[i] = o.value.seq;
      columns.connectorId[i] = o.value.connectorId;
      columns.handed[i] = o.value.handed ? 1 : 0;
    }
  }
  return columns;
}

export function outcomeRows(columns: OutcomeColumns): Array<ItemOutcome<UserMessageWritten>> {
  const n = columns.kind.length;
  const outcomes = new Array<ItemOutcome<UserMessageWritten>>(n);
  for (let i = 0; i < n; i++) {
    const kind = columns.kind[i];
    if (kind === 2) outcomes[i] = { ok: false, error: deserializeError(columns.errors![i]!) };
    else if (kind === 1)
      outcomes[i] = { ok: true, value: { seq: columns.seq[i]!, connectorId: columns.connectorId[i] ?? null, handed: columns.handed[i] === 1 } };
    else outcomes[i] = { ok: true, value: null };
  }
  return outcomes;
}

/** Attempts gathered over a turn of the delivery thread's loop, told in one message. */
export class AttemptColumnsBuilder {
  private target: Array<Attempt['target']> = [];
  private connectorId: Array<string | null> = [];
  private createdAtMs: number[] = [];
  private outcome: Array<Attempt['outcome']> = [];
  private seconds: number[] = [];

  get size(): number {
    return this.target.length;
  }

  add(row: Pick<OutboxRow, 'target' | 'connector_id' | 'created_at'>, outcome: Attempt['outcome'], seconds: number): void {
    this.target.push(row.target);
    this.connectorId.push(row.connector_id);
    this.createdAtMs.push(createdAtMsOf(row));
    this.outcome.push(outcome);
    this.seconds.push(seconds);
  }

  /** The attempts added since the last take, as columns; starts afresh. */
  take(): AttemptColumns {
    const columns: AttemptColumns = {
      target: this.target,
      connectorId: this.connectorId,
      createdAtMs: Float64Array.from(this.createdAtMs),
      outcome: this.outcome,
      seconds: Float64Array.from(this.seconds),
    };
    this.target = [];
    this.connectorId = [];
    this.createdAtMs = [];
    this.outcome = [];
    this.seconds = [];
    return columns;
  }
}

export interface AttemptColumns {
  target: Array<Attempt['target']>;
  connectorId: Array<string | null>;
  createdAtMs: Float64Array;
  outcome: Array<Attempt['outcome']>;
  seconds: Float64Array;
}

/** Calls `each` with every attempt of the columns, in order. */
export function forEachAttempt(columns: AttemptColumns, each: (attempt: Attempt) => void): void {
  for (let i = 0; i < columns.createdAtMs.length; i++) {
    each({
      target: columns.target[i]!,
      connectorId: columns.connectorId[i] ?? null,
      createdAtMs: columns.createdAtMs[i]!,
      outcome: columns.outcome[i]!,
      seconds: columns.seconds[i]!,
    });
  }
}
