import { stat } from 'node:fs/promises';
import { getPriority, setPriority } from 'node:os';

/**
 * Lowers the calling thread's CPU priority by `steps` nice steps (at most to 19), and answers the nice
 * value it runs at then; null where that cannot be done for one thread alone.
 *
 * On Linux a nice value belongs to a thread, and `setpriority(PRIO_PROCESS, 0, …)` (os.setPriority
 * without a pid) changes the calling thread only; elsewhere it changes the whole process, so nothing is
 * done there. Raising a nice value needs no privilege; lowering it again would, so the value only ever
 * goes up from what the thread inherited (an operator's `nice` of the whole process stays beneath it).
 */
export function lowerThreadPriority(steps: number): { nice: number } | null {
  if (process.platform !== 'linux' || steps <= 0) return null;
  const current = getPriority();
  const target = Math.min(19, current + steps);
  if (target !== current) setPriority(target);
  return { nice: getPriority() };
}

/**
 * Whether a thread of this process can be made to run below the others by `steps` nice steps:
 * lowerThreadPriority would change its value (Linux, steps above 0, the process not already at 19).
 */
export function canLowerThreadPriority(steps: number): boolean {
  return process.platform === 'linux' && steps > 0 && getPriority() < 19;
}

/**
 * Makes sure libuv's thread pool (one for the whole process: file system calls, DNS lookups, some
 * crypto) has been started, by the calling thread. A thread inherits the nice value of the thread that
 * creates it, and the pool starts on its first use from whichever thread uses it first: started by the
 * delivery thread after it lowered its priority, it would run the HTTP thread's file reads and lookups
 * at that priority too. Called before that thread starts (today the pool is always running by then;
 * this keeps it so whatever the start-up order becomes).
 */
export async function startThreadPool(): Promise<void> {
  await stat(process.execPath).catch(() => undefined);
}
