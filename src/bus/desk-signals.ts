import type { Presence } from '../model/agent.js';
import type { EndReason } from '../model/handover.js';
import type { Bus, RESYNC } from './bus.js';

/**
 * What a desk console hears on `desk:<tenantId>`: something it shows has changed. Each is a hint, never
 * the state itself — the console re-reads what a signal names — so a lost signal costs a refresh, not
 * a wrong screen. The desk stream passes them on as Server-Sent Events named by `type` (web/desk/app.js
 * handles each), except the two that concern sessions, which the stream itself acts on.
 */
export type DeskSignal =
  | { type: 'handover.queued'; handoverId: string; queueId: string }
  /** An agent joined: `agentId` is null for a helpdesk's agent; the desk's agent that held it, if another, lost it. */
  | { type: 'handover.accepted'; handoverId: string; agentId: string | null; agentName: string | null }
  | { type: 'handover.transferred'; handoverId: string; queueId: string }
  | { type: 'handover.ended'; handoverId: string; reason: EndReason }
  | { type: 'handover.rated'; handoverId: string; score: number }
  | { type: 'message.created'; handoverId: string; messageId: string; seq: number }
  | { type: 'user.typing'; handoverId: string; typing: boolean }
  | { type: 'note.created'; handoverId: string; noteId?: string }
  | { type: 'agent.online'; agentId: string }
  | { type: 'agent.presence'; agentId: string; presence: Presence }
  /** Every session of the agent ended (signed out everywhere): each of their consoles checks its own. */
  | { type: 'agent.signed_out'; agentId: string }
  /** One session of the agent ended: the console it belonged to checks and closes; never passed on. */
  | { type: 'session.ended'; agentId: string };

export type DeskSignalType = DeskSignal['type'];

const channel = (tenantId: string): string => `desk:${tenantId}`;

export function publishDeskSignal(bus: Bus, tenantId: string, signal: DeskSignal): void {
  bus.publish(channel(tenantId), signal);
}

/** Returns the unsubscribe function. Besides the signals, `resync` comes when some may have been lost (bus.ts). */
export function subscribeDeskSignals(bus: Bus, tenantId: string, handler: (signal: DeskSignal | typeof RESYNC) => void): () => void {
  return bus.subscribe(channel(tenantId), (message) => handler(message as DeskSignal | typeof RESYNC));
}
