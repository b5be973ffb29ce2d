export { HandoffMiddleware, type HandoffMiddlewareOptions } from './handoff-middleware.js';
export { MemoryHandoffStore, type HandoffStore, type LiveHandoff } from './handoff-store.js';
export { HANDOFF_INITIATE, HANDOFF_STATUS, conversationKey, handoverRequest, type HandoffState } from './handoff-request.js';
