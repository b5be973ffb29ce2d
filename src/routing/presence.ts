// SQL conditions on an agent `a` (and its sessions `s`) that routing, the handover's life and the desk
// share: who serves a queue, who can answer now.

/** SQL condition: session `s` is live (neither past its lifetime nor idle too long). */
export const liveSessionSql = 's.expires_at > now() and s.idle_expires_at > now()';

/**
 * SQL condition: agent `a` has a desk console open now — on any instance — or closed its last one
 * less than the reconnect grace ago. This, not a signed-in session, is what "online" means.
 */
export const consoleOpenSql = 'exists (select 1 from desk_consoles c where c.agent_id = a.id and c.expires_at > now())';

/**
 * SQL condition: agent `a` serves queue `$n` (an agent without a queue list serves every queue of its
 * own tenant, never another tenant's).
 */
export function agentInQueueSql(queueParam: string): string {
  return `a.tenant_id = (select tenant_id from queues where id = ${queueParam})
    and (a.queue_ids is null or a.queue_ids ? ${queueParam})`;
}

/**
 * SQL condition: agent `a` serves queue `$n` and can answer now: available, signed in, and at a desk
 * (a console open, or closed less than the reconnect grace ago: docs/desk.md, "Presence").
 */
export function agentServesQueueSql(queueParam: string): string {
  return `${agentInQueueSql(queueParam)}
    and a.presence = 'available'
    and exists (select 1 from agent_sessions s where s.agent_id = a.id and ${liveSessionSql})
    and ${consoleOpenSql}`;
}
