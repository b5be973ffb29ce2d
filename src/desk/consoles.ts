import type { Bus } from '../bus/bus.js';
import type { Queryable } from '../store/db.js';
import type { Logger } from '../telemetry/logger.js';
import { withoutDeadline } from '../resilience/deadline.js';
import { publishDeskSignal } from '../bus/desk-signals.js';

/** The longest a shutdown waits for the last console counts to be written. */
const STOP_WAIT_MS = 3000;

export interface DeskConsoles {
  /**
   * Counts an open console (a live desk stream) of the agent until `release` is called. `recorded`
   * resolves once the count is written (or the write failed: the next refresh writes it again).
   */
  open(agent: { id: string; tenantId: string }): { release: () => void; recorded: Promise<void> };
  /**
   * Stops refreshing the counts and waits (at most `STOP_WAIT_MS`) for the last ones to be written;
   * later releases are still written. What is not written lapses by itself within the grace.
   */
  stop(): Promise<void>;
}

/**
 * The open desk consoles of this instance, kept in the database so every instance (and the no-answer
 * timer, wherever it runs) sees the same truth, with Redis or without it.
 *
 * One row per agent and instance holds how many consoles of the agent this instance serves and until
 * when the row counts. While the count is above zero the instance moves `expires_at` forward every
 * third of the grace, so the consoles of an instance that died lapse by themselves within the grace.
 * When the count falls to zero the row is left to lapse after the grace: a reload or a network blip
 * that reconnects in time (here or on another instance) never shows the agent offline.
 *
 * Writes go one after another, each takes every count changed since the last one (a reconnect storm is
 * a few statements, not one per console), and each writes the counts as they are when it runs, so a
 * late write never undoes a newer one. A write that fails (the database away) is logged; the next
 * refresh writes every count again. A release counts once however often it is called.
 */
export function createDeskConsoles(deps: { db: Queryable; bus: Bus; log: Logger; instanceId: string; graceMs: number }): DeskConsoles {
  const { db, bus, log, instanceId, graceMs } = deps;
  const counts = new Map<string, { tenantId: string; consoles: number }>();
  let writes: Promise<void> = Promise.resolve();
  let refresh: NodeJS.Timeout | undefined;
  const lapseChecks = new Set<NodeJS.Timeout>();
  let stopped = false;

  /** Agents whose count is to be written by the next write; one write takes all there are. */
  const pending = new Set<string>();
  let nextWrite: Promise<void> | null = null;

  const write = (agentIds: Iterable<string>): Promise<void> => {
    for (const id of agentIds) pending.add(id);
    // Outside the deadline of the request that opened or closed the console: the count must be written.
    nextWrite ??= writes = writes.then(() =>
      withoutDeadline(async () => {
        nextWrite = null;
        const rows = [...pending].flatMap((id) => {
          const entry = counts.get(id);
          return entry ? [{ id, ...entry }] : [];
        });
        pending.clear();
        if (rows.length === 0) return;
        try {
          await db.query(
            `insert into desk_consoles (agent_id, instance_id, tenant_id, consoles, expires_at)
             select agent_id, $1, tenant_id, consoles, now() + $2 * interval '1 millisecond'
             from unnest($3::text[], $4::text[], $5::int[]) as x(agent_id, tenant_id, consoles)
             where exists (select 1 from agents where id = x.agent_id)
             on conflict (agent_id, instance_id) do update set consoles = excluded.consoles, expires_at = excluded.expires_at`,
            [instanceId, graceMs, rows.map((r) => r.id), rows.map((r) => r.tenantId), rows.map((r) => r.consoles)],
          );
          // Written at zero: the row now lapses by itself after the grace; nothing here keeps it.
          for (const row of rows) if (row.consoles === 0 && counts.get(row.id)?.consoles === 0) counts.delete(row.id);
        } catch (err) {
          log.warn({ err, agents: rows.length }, 'recording open desk consoles failed; the next refresh writes them again');
        }
      }),
    );
    return nextWrite;
  };

  const refreshAll = (): void => {
    write(counts.keys());
    // Rows of instances long gone: nothing counts them any more.
    writes = writes.then(() =>
      db.query(`delete from desk_consoles where expires_at < now() - interval '1 hour'`).then(
        () => undefined,
        () => undefined,
      ),
    );
    if (counts.size === 0 && refresh) {
      clearInterval(refresh);
      refresh = undefined;
    }
  };

  const changedOnline = (tenantId: string, agentId: string): void => {
    // A hint for consoles showing the team; the truth is re-read from the database.
    publishDeskSignal(bus, tenantId, { type: 'agent.online', agentId });
  };

  return {
    open(agent) {
      const entry = counts.get(agent.id) ?? { tenantId: agent.tenantId, consoles: 0 };
      entry.consoles++;
      counts.set(agent.id, entry);
      const recorded = write([agent.id]);
      if (!stopped && !refresh) {
        refresh = setInterval(refreshAll, Math.max(100, Math.floor(graceMs / 3)));
        refresh.unref();
      }
      if (entry.consoles === 1) changedOnline(agent.tenantId, agent.id);
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        const current = counts.get(agent.id);
        if (!current) return;
        current.consoles = Math.max(0, current.consoles - 1);
        write([agent.id]);
        if (current.consoles > 0 || stopped) return;
        // Offline once the grace has run out, unless a console came back meanwhile (here or elsewhere).
        const check = setTimeout(() => {
          lapseChecks.delete(check);
          if (!counts.get(agent.id)?.consoles) changedOnline(agent.tenantId, agent.id);
        }, graceMs + 250);
        check.unref();
        lapseChecks.add(check);
      };
      return { release, recorded };
    },
    async stop() {
      stopped = true;
      clearInterval(refresh);
      refresh = undefined;
      for (const check of lapseChecks) clearTimeout(check);
      lapseChecks.clear();
      // Bounded: with the database gone a shutdown must not hang on a count that lapses anyway.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([writes, new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS)))]);
      clearTimeout(timer);
    },
  };
}
