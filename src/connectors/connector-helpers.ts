import { DeliveryError } from '../outbound/delivery-error.js';
import { storableText } from '../store/storable-text.js';
import type { InboundEvent, InboundEventByRef } from './connector.js';

// What several connectors and the parts that call them share, kept apart from the port (connector.ts),
// which holds only the contract.

/**
 * A failure as the service stores, logs and reports it: the error's message, plus the quoted remote
 * answer when quoting is allowed (HANDOVER_REDACT_CONTENT unset or false).
 */
export function failureText(err: Error, options: { quoteAnswers: boolean }): string {
  // The quote may sit on a cause (a connector that wraps a refusal in its own error).
  let quote: string | undefined;
  for (let e: unknown = err, depth = 0; options.quoteAnswers && e instanceof Error && depth < 5 && quote === undefined; e = e.cause, depth++) {
    if (e instanceof DeliveryError) quote = e.answerQuote;
  }
  return storableText(quote ? `${err.message}: ${quote}` : err.message);
}

/** The longest message text we take from an external system (as the bot API takes at most). */
export const MAX_INBOUND_TEXT = 20_000;

/**
 * A text cut to `MAX_INBOUND_TEXT` UTF-16 units, never between the two halves of a character outside
 * the basic plane (an emoji): half a pair is no text, and PostgreSQL refuses it in jsonb.
 */
export function cutInboundText(text: string): string {
  if (text.length <= MAX_INBOUND_TEXT) return text;
  const last = text.charCodeAt(MAX_INBOUND_TEXT - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? MAX_INBOUND_TEXT - 1 : MAX_INBOUND_TEXT);
}

/**
 * An inbound event with every string storable (see storableText) and its message text cut to size.
 * Vendors' webhooks and streams are taken as they come rather than refused whole: one bad character in
 * one event of a batch must not lose the others.
 */
export function storableInboundEvent<E extends InboundEvent | InboundEventByRef>(event: E): E {
  const clean = (value: unknown): unknown => {
    if (typeof value === 'string') return storableText(value);
    if (Array.isArray(value)) return value.map(clean);
    if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clean(v)]));
    return value;
  };
  const cleaned = clean(event) as E;
  if (cleaned.type === 'message.created') cleaned.message.text = cutInboundText(cleaned.message.text);
  return cleaned;
}
