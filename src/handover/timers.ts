import type { Deps } from './deps.js';
import { expireUnanswered } from './lifecycle.js';

/**
 * Ends handovers nobody answered in time. Safe on many instances at once: each end re-checks the
 * deadline under the handover's row lock, so a handover is ended once.
 */
export function startAnswerTimer(deps: Deps, intervalMs: number): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const timer = setInterval(() => {
    running = running.then(async () => {
      if (stopped) return;
      try {
        const ended = await expireUnanswered(deps);
        if (ended > 0) deps.log.info({ ended }, `ended ${ended} handover(s) nobody answered in time`);
      } catch (err) {
        deps.log.warn({ err }, 'checking no-answer deadlines failed; trying again next tick');
      }
    });
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
