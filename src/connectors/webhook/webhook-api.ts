import type { Agent } from 'undici';
import { DeliveryError } from '../connector.js';
import { describeAnswer, parseJson, send, STATUS_POLICIES } from '../../outbound/index.js';
import { storableText } from '../../store/storable-text.js';

/** What a receiver answers for each event of a batch call (docs/generic-webhook.md, "Batch mode"). */
export const batchEventStatuses = ['ok', 'retry', 'failed'] as const;
export type BatchEventStatus = (typeof batchEventStatuses)[number];

export interface BatchEventResult {
  status: BatchEventStatus;
  /** The receiver's reason, as it wrote it: may quote the event's text, so it is never put in a message. */
  error?: string;
}

/**
 * A batch answer is read up to this much plus ANSWER_BYTES_PER_EVENT per event: a result is an id and a
 * status (about 50 bytes), with room left for short errors.
 */
const ANSWER_BASE_BYTES = 64 * 1024;
const ANSWER_BYTES_PER_EVENT = 1024;
/** How much of a per-event error is kept beside the DeliveryError (as for a refusing answer). */
const QUOTE_CHARS = 200;

export interface BatchCall {
  dispatcher: Agent;
  url: string;
  secret: string;
  /** The call's `webhook-id`: new for every call (events keep their own ids inside). */
  batchId: string;
  /** `{"type":"batch","events":[…]}`, serialised once: the signature covers exactly these bytes. */
  body: string;
  /** How many events the body holds (for the answer's size bound and the span). */
  events: number;
  signal: AbortSignal;
}

/**
 * POSTs one batch, signed with Standard Webhooks over its body, and resolves with each event's result
 * by event id. The call as a whole fails exactly as a single event's call does: a network failure is
 * retried (final only when the outbound guard refused the destination); a non-2xx answer is retried
 * except the permanent statuses, with its Retry-After. A 2xx answer without readable results is retried:
 * nothing says which events the receiver took.
 *
 * The span has no parent: the call carries events of many traces, so it starts its own and names its
 * batch id, which each event's delivery span names too.
 */
export async function postBatch(call: BatchCall): Promise<Map<string, BatchEventResult>> {
  const maxBytes = ANSWER_BASE_BYTES + ANSWER_BYTES_PER_EVENT * call.events;
  const answer = await send(call.dispatcher, {
    method: 'POST',
    url: call.url,
    signal: call.signal,
    policy: STATUS_POLICIES.signedWebhook,
    maxBytes,
    body: call.body,
    secret: call.secret,
    webhookId: call.batchId,
    spanParent: null,
    spanAttributes: { 'handover.webhook.batch.id': call.batchId, 'handover.webhook.batch.size': call.events },
  });
  const results = readResults(answer.text);
  if (!results) {
    const host = new URL(call.url).host;
    const what =
      Buffer.byteLength(answer.text) >= maxBytes ? `an answer past ${maxBytes} bytes` : `no per-event results (${describeAnswer(answer.headers, answer.text)})`;
    throw new DeliveryError(`${host} answered ${answer.status} to a batch with ${what}`, { retryable: true, statusCode: answer.status });
  }
  return results;
}

/**
 * What one event's result means for its delivery: null when done, else the DeliveryError to fail it
 * with. An event missing from the answer (or whose result cannot be read) is retried, never assumed done.
 */
export function eventOutcome(host: string, result: BatchEventResult | undefined): DeliveryError | null {
  if (result?.status === 'ok') return null;
  if (!result) return new DeliveryError(`${host} answered a batch without a result for this event`, { retryable: true });
  const answerQuote = result.error ? storableText(result.error.slice(0, QUOTE_CHARS)) : undefined;
  const retryable = result.status === 'retry';
  return new DeliveryError(`${host} answered "${result.status}" for this event of a batch`, { retryable, ...(answerQuote ? { answerQuote } : {}) });
}

/** `{"results":[{"id","status","error?"}]}` by event id; null when the answer is not of that shape. */
function readResults(text: string): Map<string, BatchEventResult> | null {
  const json = parseJson(text);
  if (!isObject(json) || !Array.isArray(json.results)) return null;
  const results = new Map<string, BatchEventResult>();
  for (const entry of json.results as unknown[]) {
    // An entry that cannot be read counts as missing: its event is retried.
    if (!isObject(entry) || typeof entry.id !== 'string' || !isStatus(entry.status) || results.has(entry.id)) continue;
    results.set(entry.id, { status: entry.status, ...(typeof entry.error === 'string' ? { error: entry.error } : {}) });
  }
  return results;
}

function isStatus(value: unknown): value is BatchEventStatus {
  return (batchEventStatuses as readonly unknown[]).includes(value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
