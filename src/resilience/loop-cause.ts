/**
 * Why a busy event loop is busy, told from the loop's utilization and its thread's own CPU time (both
 * per window, src/resilience/load-signals.ts). No imports: the doctor command reads it too.
 */
/**
 * From this share of a window spent waiting for a core (the loop had work, its thread did not run), the
 * loop is said to be short of CPU rather than busy with its own work.
 */
export const CPU_WAIT_SHORT = 0.2;

/** Share of the window the loop had work but its thread waited for a core; undefined where unknown. */
export function cpuWaitShare(utilization: number, cpuShare: number | undefined): number | undefined {
  return cpuShare === undefined ? undefined : Math.max(0, utilization - cpuShare);
}

/** Whether the loop's thread waited for a core so much of the window that the loop is short of CPU. */
export function shortOfCpu(utilization: number, cpuShare: number | undefined): boolean {
  const wait = cpuWaitShare(utilization, cpuShare);
  return wait !== undefined && wait >= CPU_WAIT_SHORT;
}

/**
 * Why a busy loop is busy, in words for refusals, the status page and the doctor: its thread computing
 * (the process has more to do than a core can do), or its thread waiting for a core it does not get.
 */
export function loopBusyCause(
  utilization: number,
  cpuShare: number | undefined,
  /** How the text names the instance: 'this instance' in its own refusals, 'the instance' on the status page. */
  subject = 'this instance',
): { starved: boolean; text: string } {
  if (cpuShare !== undefined && shortOfCpu(utilization, cpuShare)) {
    return {
      starved: true,
      text: `its thread ran only ${pct(cpuShare)} of the time and waited for a CPU ${pct(utilization - cpuShare)}: ${subject} does not get the CPU it needs (its cores are shared with other busy processes or threads, such as a database on the same machine, or its container's CPU quota is used up)`,
    };
  }
  return { starved: false, text: `${subject} is CPU-bound` };
}

function pct(share: number): string {
  return `${Math.round(100 * share)} %`;
}
