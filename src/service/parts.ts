import type { Logger } from '../telemetry/logger.js';

/**
 * The one lifecycle of the service's parts, and the stack that starts and stops them.
 *
 * A part is started by a function; once started, its release goes on the stack. A start that fails at
 * any part releases what was started before it, newest first, and `stop()` runs the same releases in
 * the same order: shutdown is written once, as the order of the starts, and never by hand per failure.
 * (The releasers of graphile-worker and the ordered start and stop of pg-boss's components.)
 */

export interface StopOptions {
  /**
   * How long work in flight (requests, deliveries) may take to finish before it is aborted: what is
   * left, when a part is stopped, of the grace period its stop was given (one for all the parts), and
   * at least PART_GRACE_FLOOR_MS (or that grace period, if shorter).
   */
  graceMs: number;
  /**
   * Give held leases (connector streams, the no-answer timer, retention) back at once. False when the
   * process is taken for dead: other instances take the leases when they run out.
   */
  release: boolean;
}

/**
 * The one shape of a running background part: stopped with the service's options (each takes what
 * applies to it). The worker waits `graceMs` for deliveries; lease holders give their leases back when
 * `release`; timers and samplers just stop.
 */
export interface Part {
  stop(options: StopOptions): void | Promise<void>;
}

/** What a part leaves on the stack once started: how to stop it. */
export type Release<T> = (part: T, options: StopOptions) => void | Promise<void>;

/** A test's view of the starts: `beforeStart` runs before each part starts, and what it throws fails that start. */
export interface PartHooks {
  beforeStart?(name: string): void | Promise<void>;
}

/**
 * The least a part is given to stop when those before it used up the stop's grace period (or the
 * grace period, if shorter): enough for a delivery in flight to come back, well within the exit timer.
 */
export const PART_GRACE_FLOOR_MS = 2000;

/** Stopped at once, leases given back: what a failed start does with what it had started. */
const UNDO: StopOptions = { graceMs: 0, release: true };

export class Parts {
  private releases: { name: string; release: (options: StopOptions) => void | Promise<void> }[] = [];
  private stopping: Promise<void> | null = null;

  constructor(
    private readonly log: Logger,
    private readonly hooks: PartHooks = {},
  ) {}

  /**
   * Starts one part and keeps its release (a part with nothing to release, such as applying the
   * migrations, passes none). Throws what the start threw; the caller's `build` undoes the rest.
   */
  async start<T>(name: string, start: () => T | Promise<T>, release?: Release<T>): Promise<T> {
    if (this.stopping) throw new Error(`cannot start ${name}: the service is stopping`);
    await this.hooks.beforeStart?.(name);
    const part = await start();
    if (release) this.releases.push({ name, release: (options) => release(part, options) });
    return part;
  }

  /** Starts a part that has the one lifecycle: its own `stop(options)` is its release. */
  startPart<P extends Part>(name: string, start: () => P | Promise<P>): Promise<P> {
    return this.start(name, start, (part, options) => part.stop(options));
  }

  /**
   * Runs `build` (a sequence of `start`s); if anything in it throws, releases every part started so
   * far, newest first, and throws the original error.
   */
  async build<T>(build: () => Promise<T>): Promise<T> {
    try {
      return await build();
    } catch (err) {
      await this.stop(UNDO).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Releases every part, newest first. A release that fails is logged and the next one still runs;
   * the first failure is thrown at the end. Calling it again waits for the same stop. The stack is
   * empty afterwards and can start parts again.
   */
  stop(options: StopOptions): Promise<void> {
    this.stopping ??= this.unwind(options).finally(() => {
      this.stopping = null;
    });
    return this.stopping;
  }

  /** Names of the parts started and not yet released, oldest first. */
  names(): string[] {
    return this.releases.map((r) => r.name);
  }

  private async unwind(options: StopOptions): Promise<void> {
    let first: unknown;
    // One grace period for the whole stop, not one per part: a part that used all of it (the HTTP
    // server waiting on a request that never ends) leaves the next ones what is left, and at least a
    // short floor to finish what they hold in hand (deliveries just sent), so the stop ends about when
    // the grace period runs out and the process's exit timer (the grace period and 5 s) is not what
    // ends the delivery worker's.
    const deadline = performance.now() + options.graceMs;
    const floor = Math.min(options.graceMs, PART_GRACE_FLOOR_MS);
    while (this.releases.length > 0) {
      const { name, release } = this.releases.pop()!;
      try {
        await release({ ...options, graceMs: Math.max(floor, Math.round(deadline - performance.now())) });
      } catch (err) {
        this.log.error({ err, part: name }, `stopping ${name} failed; stopping the others`);
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }
}
