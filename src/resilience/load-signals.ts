import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { threadCpuSeconds } from '../telemetry/thread-cpu.js';
import type { LoopWindow } from './loop-share-cap.js';

/**
 * The process-level load signals admission control reads on every request. They are sampled in the
 * background so reading them costs nothing: a rejection must stay cheap exactly when the process is busy.
 */
export interface LoadSignals {
  /** How late the event loop runs timers: median lag per tick over the last window (or the current one, if worse), in ms. */
  eventLoopDelayMs(): number;
  /** Share of time the event loop was busy over the last window (0..1). */
  eventLoopUtilization(): number;
  /**
   * Share of the last window the loop's thread ran on a CPU (0..1), from the OS's accounting; undefined
   * where the OS does not say. Utilization minus this is the time the loop had work but its thread
   * waited for a core.
   */
  eventLoopCpuShare(): number | undefined;
  /** The same, with a number that grows by one per finished window (to act once per window). */
  eventLoopWindow(): LoopWindow;
  heap(): { usedBytes: number; limitBytes: number };
  stop(): void;
}

const TICK_MS = 20;
/** A window is judged on at least this many ticks, so a single stall cannot be its median. */
const MIN_TICKS = 5;

/**
 * Event-loop lag is measured with a plain interval timer: a tick that fires late by N ms means the loop
 * was busy for N ms. (perf_hooks' monitorEventLoopDelay was tried first: here it recorded a 700 ms
 * synchronous block as a single ~10 ms sample, so it cannot be what decides to shed load.)
 * The median lag per tick over a window is the signal: on a saturated loop every tick is late, while a
 * one-off stall (a long GC, loading the embedded database at start) makes one tick late and is ignored.
 *
 * Beside the loop's utilization, each window reads the thread's own CPU time from the OS: a loop counts
 * as busy while its thread waits for a core (other processes or threads on the same cores, a
 * container's CPU quota), and the two together tell "this process computes too much" from "this
 * process does not get the CPU it needs".
 */
export function startLoadSignals(windowMs = 500): LoadSignals {
  let lastTick = performance.now();
  let lags: number[] = [];
  let previousMedian = 0;
  /** The median of the window so far, kept at each tick: admission reads it on every request. */
  let currentMedian = 0;
  let windowStart = lastTick;
  let elu = performance.eventLoopUtilization();
  let utilization = 0;
  /** Made once per window: admission reads it on every request. */
  let window: LoopWindow = { seq: 0, utilization: 0 };
  let cpuAt = threadCpuSeconds();
  let heap = readHeap();
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - lastTick - TICK_MS));
    lastTick = now;
    currentMedian = lags.length >= MIN_TICKS ? median(lags) : 0;
    if (now - windowStart >= windowMs && lags.length >= MIN_TICKS) {
      const spanSeconds = (now - windowStart) / 1000;
      previousMedian = currentMedian;
      currentMedian = 0;
      lags = [];
      windowStart = now;
      const current = performance.eventLoopUtilization();
      utilization = performance.eventLoopUtilization(current, elu).utilization;
      const cpu = threadCpuSeconds();
      const cpuShare = cpu === null || cpuAt === null ? undefined : Math.min(1, (cpu - cpuAt) / spanSeconds);
      cpuAt = cpu;
      window = { seq: window.seq + 1, utilization, cpuShare };
      elu = current;
      heap = readHeap();
    }
  }, TICK_MS);
  timer.unref();
  return {
    eventLoopDelayMs: () => Math.max(previousMedian, currentMedian),
    eventLoopUtilization: () => utilization,
    eventLoopCpuShare: () => window.cpuShare,
    eventLoopWindow: () => window,
    heap: () => heap,
    stop: () => clearInterval(timer),
  };
}

function readHeap(): { usedBytes: number; limitBytes: number } {
  const stats = getHeapStatistics();
  return { usedBytes: stats.used_heap_size, limitBytes: stats.heap_size_limit };
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
