import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU figures (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;

/**
 * CPU time (user + system, seconds) of the calling thread, from the OS's own accounting
 * (/proc/thread-self/stat); null where there is no such file (not Linux). Node reports the process's CPU
 * only: this tells the HTTP thread's share apart from the delivery thread's.
 */
export function threadCpuSeconds(): number | null {
  let text: string;
  try {
    text = readFileSync('/proc/thread-self/stat', 'utf8');
  } catch {
    return null;
  }
  // Fields after the command name (which may hold spaces), from field 3 (state) on: utime is 14, stime 15.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? ticks / TICKS_PER_SECOND : null;
}
