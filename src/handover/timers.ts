import type { Deps } from '../deps.js';
import { expireUnanswered, expireUnserved } from './lifecycle.js';
import { holdLease, releaseLease } from '../store/leases.js';

const LEASE = 'answer-timer';

/**
 * Ends handovers nobody answered in time, and the waits in desk queues nobody online serves any more.
 * One instance at a time does it, holding a lease it renews on every tick; when it dies, another takes
 * over once the lease has run out (a few ticks). Even two at once would be safe: each end re-checks its
 * cause under the handover's row lock.
 */
export function startAnswerTimer(deps: Deps, intervalMs: number, holder: string): { stop(options?: { release?: boolean }): Promise<void>; holds(): boolean } {
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  let holding = false;
  const leaseMs = Math.max(3 * intervalMs, 3000);
  // Who is at a desk is judged only after a grace of working ticks: since the start, or since the
  // database last failed a tick, the consoles of every instance may not have been counted (or their
  // counts refreshed) yet, and a wait must never end because the counting paused.
  const graceMs = deps.config.desk.presenceGraceMs;
  let countingSince = Date.now();
  const timer = setInterval(() => {
    running = running.then(async () => {
      if (stopped) return;
      try {
        holding = await holdLease(deps.db, LEASE, holder, leaseMs);
        if (!holding) return;
        const ended = await expireUnanswered(deps);
        if (ended > 0) deps.log.info({ ended }, `ended ${ended} handover(s) nobody answered in time`);
        if (Date.now() - countingSince < graceMs) return;
        const unserved = await expireUnserved(deps);
        if (unserved > 0) deps.log.info({ ended: unserved }, `ended ${unserved} wait(s) in queues no agent online serves any more`);
      } catch (err) {
        countingSince = Date.now();
        deps.log.warn({ err }, 'checking no-answer deadlines failed; trying again next tick');
      }
    });
  }, intervalMs);
  timer.unref();
  return {
    async stop(options = {}) {
      stopped = true;
      clearInterval(timer);
      await running;
      if (holding && options.release !== false) {
        await releaseLease(deps.db, LEASE, holder).catch((err) =>
          deps.log.warn({ err }, 'could not give the no-answer timer lease back; it frees itself when it runs out'),
        );
      }
      holding = false;
    },
    holds: () => holding,
  };
}
