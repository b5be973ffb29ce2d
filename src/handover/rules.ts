import { AppError } from '../resilience/errors.js';
import type { Agent } from '../model/agent.js';
import type { Handover } from '../model/handover.js';

// Who may act on a handover: the checks every use case shares, in one place.

/** The chat is active and held by this agent. */
export function assertHeldBy(handover: Handover, agentId: string): void {
  if (handover.state === 'queued') throw new AppError('handover_not_active');
  if (handover.agentId !== agentId) throw new AppError('handover_not_yours');
}

/**
 * Who may end or transfer a chat from the desk: the agent holding it, or a supervisor of the tenant
 * (any chat of the built-in desk, waiting or held — to take back the chats of an agent who left, or
 * to move a waiting user to another queue).
 */
export function assertMayManage(handover: Handover, agent: Pick<Agent, 'id' | 'role'> | undefined): void {
  if (agent?.role === 'supervisor') {
    if (handover.connectorId) throw new AppError('handover_not_found');
    return;
  }
  assertHeldBy(handover, agent?.id ?? '');
}
