import type { ConversationReference } from 'botbuilder';

/** A conversation handed over to a person: what the middleware needs to relay it and to answer in it. */
export interface LiveHandoff {
  /** The conversation's key, which is also the handover's `conversationId` (`channelId:conversation.id`). */
  conversationId: string;
  /** `ho_…`; empty while the handover is being asked for. */
  handoverId: string;
  /** Where proactive messages go: the reference of the turn that asked for the handoff. */
  reference: Partial<ConversationReference>;
  /** An agent has joined (`handoff.status` `accepted` was sent). */
  accepted: boolean;
}

/**
 * Where live handoffs are kept. The default keeps them in memory; a bot that runs several instances, or
 * must relay after a restart, gives one backed by its database (the records are plain JSON).
 */
export interface HandoffStore {
  get(conversationId: string): Promise<LiveHandoff | undefined> | LiveHandoff | undefined;
  set(handoff: LiveHandoff): Promise<void> | void;
  delete(conversationId: string): Promise<void> | void;
}

export class MemoryHandoffStore implements HandoffStore {
  readonly #handoffs = new Map<string, LiveHandoff>();

  get(conversationId: string): LiveHandoff | undefined {
    const handoff = this.#handoffs.get(conversationId);
    return handoff && structuredClone(handoff);
  }

  set(handoff: LiveHandoff): void {
    this.#handoffs.set(handoff.conversationId, structuredClone(handoff));
  }

  delete(conversationId: string): void {
    this.#handoffs.delete(conversationId);
  }
}
