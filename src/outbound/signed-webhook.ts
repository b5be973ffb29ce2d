import type { Dispatcher } from 'undici';
import { DeliveryError } from './delivery-error.js';
import { describeAnswer, parseJson } from './remote-answer.js';
import { send, type OutboundAnswer } from './send.js';
import { STATUS_POLICIES } from './status-policy.js';

/** Receivers' answers are read at most this far (described, and perhaps quoted, in the attempt log). */
const MAX_ANSWER_BYTES = 16 * 1024;

/**
 * POSTs a JSON event signed with Standard Webhooks headers (a bot's webhook, a generic-webhook
 * helpdesk). Resolves on 2xx; throws DeliveryError (retryable or not under the signed-webhook policy,
 * with the status and Retry-After) on anything else.
 */
export function postSignedJson(
  dispatcher: Dispatcher,
  url: string,
  secret: string,
  webhookId: string,
  payload: unknown,
  signal: AbortSignal,
): Promise<OutboundAnswer> {
  return send(dispatcher, { method: 'POST', url, signal, policy: STATUS_POLICIES.signedWebhook, maxBytes: MAX_ANSWER_BYTES, json: payload, secret, webhookId });
}

/**
 * GETs a small JSON document, signed like our webhooks (over an empty body) so the other side can tell
 * it is us. Resolves with the parsed body on 2xx; throws DeliveryError otherwise.
 */
export async function getSignedJson(dispatcher: Dispatcher, url: string, secret: string, requestId: string, signal: AbortSignal): Promise<unknown> {
  const answer = await send(dispatcher, {
    method: 'GET',
    url,
    signal,
    policy: STATUS_POLICIES.signedWebhook,
    maxBytes: MAX_ANSWER_BYTES,
    secret,
    webhookId: requestId,
  });
  const json = parseJson(answer.text);
  // Not the parser's error as the cause: its message quotes the body.
  if (json === undefined)
    throw new DeliveryError(`${new URL(url).host} answered ${answer.status} with something other than JSON (${describeAnswer(answer.headers, answer.text)})`, {
      retryable: true,
    });
  return json;
}
