export { HandoverClient, botOperations, type CallOptions, type EventsOptions, type HandoverClientOptions, type PositionStore } from './client.js';
export { HandoverError, HandoverNetworkError, WebhookVerificationError } from './errors.js';
export { verifyWebhook, DEFAULT_TOLERANCE_SECONDS } from './webhooks.js';
export type { RetryPolicy } from './retry.js';
export type * from './types.js';
