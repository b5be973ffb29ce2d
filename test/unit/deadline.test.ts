import { describe, expect, it } from 'vitest';
import { remainingMs, runWithDeadline, withoutDeadline } from '../../src/resilience/deadline.js';

/** A request's deadline, and work done outside it (src/resilience/deadline.ts). */
describe('withoutDeadline', () => {
  it('runs work outside any deadline as it is, and answers what it answers', async () => {
    expect(withoutDeadline(() => remainingMs())).toBeUndefined();
    await expect(withoutDeadline(async () => 42)).resolves.toBe(42);
  });

  it('hides the request deadline from the work and from what the work starts, and leaves it in place around it', async () => {
    await runWithDeadline(5_000, async () => {
      expect(remainingMs()).toBeGreaterThan(0);
      const seen = await withoutDeadline(async () => {
        const now = remainingMs();
        await new Promise((resolve) => setTimeout(resolve, 1));
        const later = await new Promise<number | undefined>((resolve) => setImmediate(() => resolve(remainingMs())));
        return { now, later };
      });
      expect(seen).toEqual({ now: undefined, later: undefined });
      expect(remainingMs()).toBeGreaterThan(0);
    });
  });
});
