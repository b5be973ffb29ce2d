import { describe, expect, it } from 'vitest';
import { LoopShareCap } from '../../src/resilience/loop-share-cap.js';

/** A cap on a clock the test moves. */
function capAt(limit = 0.99) {
  let now = 0;
  let seq = 0;
  const cap = new LoopShareCap(limit, () => now);
  return {
    cap,
    /** Moves the clock by `ms`, admitting `offered` busy requests spread over it; answers how many were admitted. */
    run(ms: number, offered: number, busy = true): number {
      let admitted = 0;
      for (let i = 0; i < offered; i++) {
        now += ms / offered;
        if (cap.take(busy)) admitted++;
      }
      return admitted;
    },
    /** Ends a window of the loop's utilization (and of its thread's share on a CPU, where given). */
    window(utilization: number, cpuShare?: number) {
      cap.observe({ seq: ++seq, utilization, cpuShare });
    },
    repeatWindow(utilization: number) {
      cap.observe({ seq, utilization });
    },
  };
}

describe('loop share cap', () => {
  it('admits everything while the loop has time to spare', () => {
    const c = capAt();
    expect(c.run(500, 1000)).toBe(1000);
    c.window(0.9);
    expect(c.cap.current).toBeUndefined();
    expect(c.run(500, 1000)).toBe(1000);
  });

  it('caps busy callers at 85 % of what was admitted once the loop was busy throughout two windows in a row', () => {
    const c = capAt();
    c.run(500, 1000);
    c.window(1);
    // One busy window alone (a burst, a long collection) is not saturation.
    expect(c.cap.current).toBeUndefined();
    c.run(500, 1000); // 2000/s
    c.window(1);
    expect(c.cap.current).toBeCloseTo(1700, 0);
    // Offered 2000/s for half a second: about 850 admitted, the rest refused.
    const admitted = c.run(500, 1000);
    expect(admitted).toBeGreaterThanOrEqual(840);
    expect(admitted).toBeLessThanOrEqual(870);
  });

  it('does not take a loop whose thread waited for a core for one busy with its own work', () => {
    const c = capAt();
    // Busy throughout, but its thread ran 70 % of the window and waited for a core 30 %: short of CPU.
    c.run(500, 1000);
    c.window(1, 0.7);
    c.run(500, 1000);
    c.window(1, 0.7);
    expect(c.cap.current).toBeUndefined();
    expect(c.run(500, 1000)).toBe(1000);
    // Its thread on a CPU nearly all the window: its own work, and the cap engages on the second.
    c.window(1, 0.95);
    c.run(500, 1000);
    c.window(1, 0.95);
    expect(c.cap.current).toBeCloseTo(1700, 0);
    // Short of CPU again: the cap that refused rises, as when the loop has room.
    c.run(500, 1000);
    c.window(1, 0.6);
    expect(c.cap.current).toBeCloseTo(1870, 0);
  });

  it('keeps lowering the cap while the loop stays busy, and acts once per window', () => {
    const c = capAt();
    c.window(1);
    c.run(500, 1000);
    c.window(1);
    c.repeatWindow(1);
    expect(c.cap.current).toBeCloseTo(1700, 0);
    c.run(500, 1000);
    c.window(1);
    // 85 % of what was admitted under the cap (about 1700/s).
    expect(c.cap.current).toBeGreaterThan(1400);
    expect(c.cap.current).toBeLessThan(1460);
  });

  it('raises a cap that refused requests once the loop has room again, and removes it when it refused none', () => {
    const c = capAt();
    c.window(1);
    c.run(500, 1000);
    c.window(1);
    c.run(500, 1000);
    c.window(0.95);
    expect(c.cap.current).toBeCloseTo(1870, 0);
    c.run(500, 100); // 200/s: under the cap, nothing refused
    c.window(0.5);
    expect(c.cap.current).toBeUndefined();
  });

  it('never refuses a caller with nothing in flight, but counts it against the cap', () => {
    const c = capAt();
    c.window(1);
    c.run(500, 100); // 200/s
    c.window(1);
    expect(c.cap.current).toBeCloseTo(170, 0);
    expect(c.run(100, 100, false)).toBe(100);
    // Quiet callers took the bucket below zero: busy ones wait for it to fill again.
    expect(c.run(10, 1, true)).toBe(0);
  });

  it('never goes below half of what was admitted when it engaged, nor 10/s, and does nothing with a limit of 1', () => {
    const c = capAt();
    c.window(1);
    c.run(500, 1000); // 2000/s
    for (let i = 0; i < 20; i++) {
      c.window(1);
      c.run(500, 1000);
    }
    expect(c.cap.current).toBeCloseTo(1000, 0);
    const low = capAt();
    low.window(1);
    for (let i = 0; i < 50; i++) {
      low.run(500, 2);
      low.window(1);
    }
    expect(low.cap.current).toBe(10);
    const off = capAt(1);
    off.window(1);
    off.run(500, 1000);
    off.window(1);
    expect(off.cap.current).toBeUndefined();
    expect(off.run(500, 1000)).toBe(1000);
  });
});
