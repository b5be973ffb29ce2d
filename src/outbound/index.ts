/**
 * Every call this service makes to the outside goes through `send` (or `openStream` for a long-lived
 * stream): one client with tracing, the SSRF guard, signing, bounded reads, Retry-After and the one
 * status policy. To call a new system: build its requests with `send`, pick (or add, with its reason) a
 * policy in `status-policy.ts`, and pass the pool the service built (`createOutboundAgent`).
 */
export { DeliveryError } from './delivery-error.js';
export { createOutboundAgent, createStreamAgent } from './outbound-pool.js';
export { checkOutboundUrl, forbiddenAddressReason, ForbiddenDestinationError, guardedConnect, type OutboundPolicy } from './outbound-guard.js';
export { answerError, describeAnswer, headerValue, parseJson, type RemoteAnswer } from './remote-answer.js';
export { getSignedJson, postSignedJson } from './signed-webhook.js';
export {
  forbiddenCause,
  openStream,
  parseRetryAfter,
  requestFailure,
  send,
  type HttpMethod,
  type OpenedStream,
  type OutboundAnswer,
  type OutboundCall,
} from './send.js';
export { addSignatureHeaders, newWebhookSecret, sign, signedHeaders, SIGNATURE_TOLERANCE_SECONDS, verify, type VerifyFailure } from './standard-webhooks.js';
export { isRetryable, STATUS_POLICIES, statusPolicy, type StatusPolicy, type StatusPolicyOptions } from './status-policy.js';
