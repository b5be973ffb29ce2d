import type { Agent } from 'undici';
import { requestFailure } from '../../outbound/index.js';
import { toError } from '../../resilience/errors.js';
import { newId } from '../../store/ids.js';
import { annotateActiveSpan } from '../../telemetry/tracing.js';
import type { BatchSettings } from './webhook-config.js';
import { eventOutcome, postBatch } from './webhook-api.js';

export interface WebhookBatcherOptions extends BatchSettings {
  dispatcher: Agent;
  url: string;
  secret: string;
  /** Deadline of one call (each event also keeps its own signal). */
  timeoutMs: number;
}

interface Batch {
  /** The call's `webhook-id`. */
  id: string;
  items: Item[];
  /** Bytes of the events' JSON, with the commas between them. */
  bytes: number;
  /** Closes the batch: at the end of the event-loop turn, or after maxWaitMs. */
  timer: { cancel(): void } | null;
  /** Items not yet settled; once the call is out, it is aborted when none is left. */
  live: number;
  /** Set when the batch is sent: aborts the call. */
  call: AbortController | null;
}

interface Item {
  id: string;
  json: string;
  bytes: number;
  signal: AbortSignal;
  batch: Batch;
  settled: boolean;
  onAbort: () => void;
  resolve(): void;
  reject(err: Error): void;
}

/**
 * Batch mode of the generic webhook protocol (docs/generic-webhook.md): the events handed to one
 * connector instance together go out in one signed call, and each `deliver` settles by its own event's
 * result.
 *
 * Why this keeps each handover's order: the delivery worker has at most one item of a lane (handover ×
 * side) in flight, and sends the next only once that one has settled. So a batch never holds two events
 * of one handover, and an event of a handover goes out only after the receiver answered `ok` for the one
 * before it. Which events share a call is left to timing; their order within a call means nothing.
 *
 * How a batch forms: the first event opens it; it closes at the end of that event-loop turn (or after
 * maxWaitMs), or at once when it reaches maxEvents or the next event would take it past maxBytes. Lanes
 * whose items are ready at the same time (a claim, answers of one call settling together) land in the
 * same turn, so under load batches grow by themselves while an idle event goes alone and at once.
 *
 * Per-event signals: an event whose signal aborts is rejected at once (taken out of an open batch; in a
 * call already out, its result is ignored). A call whose events have all been aborted is aborted too.
 */
const BATCH_OPENING = '{"type":"batch","events":[';
const BATCH_CLOSING = ']}';
const BATCH_WRAPPER_BYTES = BATCH_OPENING.length + BATCH_CLOSING.length;

export class WebhookBatcher {
  private open: Batch | null = null;
  private readonly host: string;

  constructor(private readonly options: WebhookBatcherOptions) {
    this.host = new URL(options.url).host;
  }

  /** Sends one event (its envelope) with the next call; resolves or rejects by that event's own result. */
  deliver(eventId: string, envelope: unknown, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(this.abortError(signal));
    const json = JSON.stringify(envelope);
    const bytes = Buffer.byteLength(json) + 1;
    // An event that would take the batch past its size goes with the next one (alone if it is that large).
    if (this.open && this.open.items.length > 0 && this.open.bytes + bytes > this.options.maxBytes) this.close();
    const batch = this.open ?? this.openBatch();
    annotateActiveSpan({ 'handover.webhook.batch.id': batch.id });
    return new Promise<void>((resolve, reject) => {
      const item: Item = { id: eventId, json, bytes, signal, batch, settled: false, onAbort: () => this.aborted(item), resolve, reject };
      signal.addEventListener('abort', item.onAbort, { once: true });
      batch.items.push(item);
      batch.bytes += bytes;
      batch.live++;
      if (batch.items.length >= this.options.maxEvents) this.close();
    });
  }

  private openBatch(): Batch {
    // The body's own bytes count too (`{"type":"batch","events":[…]}`), so that a body of several
    // events stays within maxBytes, as the receiver's limit is told to allow.
    const batch: Batch = { id: newBatchId(), items: [], bytes: BATCH_WRAPPER_BYTES, timer: null, live: 0, call: null };
    const close = () => {
      if (this.open === batch) this.close();
    };
    if (this.options.maxWaitMs > 0) {
      const timer = setTimeout(close, this.options.maxWaitMs);
      batch.timer = { cancel: () => clearTimeout(timer) };
    } else {
      const immediate = setImmediate(close);
      batch.timer = { cancel: () => clearImmediate(immediate) };
    }
    this.open = batch;
    return batch;
  }

  private close(): void {
    const batch = this.open;
    if (!batch) return;
    this.open = null;
    batch.timer?.cancel();
    if (batch.items.length === 0) return;
    batch.call = new AbortController();
    void this.send(batch, batch.call);
  }

  private async send(batch: Batch, call: AbortController): Promise<void> {
    const body = `${BATCH_OPENING}${batch.items.map((i) => i.json).join(',')}${BATCH_CLOSING}`;
    const signal = AbortSignal.any([call.signal, AbortSignal.timeout(this.options.timeoutMs)]);
    try {
      const results = await postBatch({
        dispatcher: this.options.dispatcher,
        url: this.options.url,
        secret: this.options.secret,
        batchId: batch.id,
        body,
        events: batch.items.length,
        signal,
      });
      for (const item of batch.items) settle(item, eventOutcome(this.host, results.get(item.id)));
    } catch (err) {
      // The whole call failed: every event of it fails the way a single event's call would.
      const error = toError(err);
      for (const item of batch.items) settle(item, error);
    }
  }

  private aborted(item: Item): void {
    if (item.settled) return;
    settle(item, this.abortError(item.signal));
    const batch = item.batch;
    if (batch.call === null) {
      batch.items.splice(batch.items.indexOf(item), 1);
      batch.bytes -= item.bytes;
    } else if (batch.live === 0) {
      batch.call.abort(item.signal.reason);
    }
  }

  private abortError(signal: AbortSignal): Error {
    return requestFailure(signal.reason, `request to ${this.host}`);
  }
}

function settle(item: Item, error: Error | null): void {
  if (item.settled) return;
  item.settled = true;
  item.batch.live--;
  item.signal.removeEventListener('abort', item.onAbort);
  if (error) item.reject(error);
  else item.resolve();
}

/**
 * A call's `webhook-id`: shaped like this service's event ids on purpose. Both directions share the
 * secret, and the inbound door refuses every id of that shape (webhook-webhook.ts), so a batch echoed or
 * replayed to it is refused as ours, like any other request we signed.
 */
function newBatchId(): string {
  return newId('event');
}
