import { AppError } from '../resilience/errors.js';
import type { Agent } from '../model/agent.js';

/**
 * Which chats an agent may read on the desk: a supervisor every chat of the built-in desk; an agent the
 * chats they hold and those of the queues they serve. Anything else is answered as unknown.
 */
export function assertDeskVisible(
  agent: Pick<Agent, 'id' | 'role' | 'queueIds'>,
  handover: { connectorId: string | null; agentId: string | null; queueId: string },
): void {
  if (handover.connectorId) throw new AppError('handover_not_found');
  if (agent.role === 'supervisor' || handover.agentId === agent.id) return;
  if (agent.queueIds && !agent.queueIds.includes(handover.queueId)) throw new AppError('handover_not_found');
}
