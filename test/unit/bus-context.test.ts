import { describe, expect, it } from 'vitest';
import { createLocalBus } from '../../src/bus/local-bus.js';
import { remainingMs, runWithDeadline } from '../../src/resilience/deadline.js';

describe('bus handlers run in the subscriber context', () => {
  it("does not hand a publishing request's deadline to the subscribers", async () => {
    const bus = createLocalBus();
    const seen: Array<number | undefined> = [];
    bus.subscribe('events:t', () => seen.push(remainingMs()));
    // A request whose deadline has passed publishes (its transaction committed anyway).
    runWithDeadline(0, () => bus.publish('events:t', { pos: 1 }));
    await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual([undefined]);
    await bus.close();
  });
});
