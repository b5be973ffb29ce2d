import type { Config } from '../config/config.js';
import { AppError } from './errors.js';
import { GradientLimit } from './gradient-limit.js';
import { admissionProblems, HeldSlots, type AdmissionHealth } from './held-slots.js';
import type { LoadSignals } from './load-signals.js';
import { loopBusyCause } from './loop-cause.js';
import { LoopShareCap } from './loop-share-cap.js';

export const rejectionCauses = ['queue_wait', 'queue_full', 'event_loop', 'memory', 'shutting_down'] as const;
export type RejectionCause = (typeof rejectionCauses)[number];

/** The `admission` settings (src/config/config.ts documents each), less those of the HTTP layer and readiness. */
export type AdmissionOptions = Omit<Config['admission'], 'handlerTimeoutMs' | 'stuckMs' | 'latencyTargetMs'> & {
  /** null or absent (`auto`): `defaultLatencyTargetMs` of the constructor, 20 ms unless a test gives another. */
  latencyTargetMs?: number | null;
};

/** What admission uses of an AbortSignal (the HTTP layer passes a lighter object of this shape). */
export type GoneSignal = Pick<AbortSignal, 'aborted' | 'reason'> & {
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
};

export interface Permit {
  /** Frees the slot and feeds the latency sample to the limiter. Only the first call counts. */
  release(): void;
}

export interface AcquireOptions {
  /** Aborted when the client has gone: a wait for a slot ends at once, with the abort's reason. */
  signal?: GoneSignal;
  /**
   * Whether the request still has a client, asked only by `health()`: a slot held for a request
   * whose client has gone is one that will not come back by itself.
   */
  live?: () => boolean;
  /**
   * The request was already counted against the loop's cap by `refusalBeforeRouting` (and not refused
   * there), so it is not counted or judged by it again.
   */
  loopShareTaken?: boolean;
}

interface Waiter {
  key: string;
  enqueuedAt: number;
  resolve(permit: Permit): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout | undefined;
  live: (() => boolean) | undefined;
  /** Stops listening for the client going away. */
  unwatch(): void;
}

interface Caller {
  inflight: number;
  queue: Waiter[];
}

export type { AdmissionHealth } from './held-slots.js';

export interface AdmissionSnapshot {
  limit: number;
  inflight: number;
  waiting: number;
  overloaded: boolean;
  rttShortMs: number;
  rttLongMs: number;
}

/**
 * Admission control in front of the API: a concurrency limit that adapts to latency, a short wait queue
 * bounded by time (not length), fair shares between callers when contended, and early refusal when the
 * process itself is the bottleneck (event loop, memory). Every refusal names its measured cause.
 */
export class AdmissionController {
  private readonly limiter: GradientLimit;
  private readonly callers = new Map<string, Caller>();
  private inflight = 0;
  private waiting = 0;
  private readonly held = new HeldSlots();
  private queueEmptySince = Date.now();
  /** How long an admitted request holds its slot (moving average; 0 until one was released). */
  private serviceMs = 0;
  /**
   * Waits are cut to the CoDel target until then: set when a request waited its whole bound, and when
   * the line stood through a whole interval (see noteAdmission).
   */
  private shedUntil = 0;
  /** Admissions in the current CoDel interval: all, those that waited in the line, and the shortest such wait. */
  private interval = { since: Date.now(), admitted: 0, queued: 0, shortestWaitMs: Infinity };
  /** Callers with at least one request waiting. */
  private linesWaiting = 0;
  private draining = false;
  /** Starting up (loading code, warming the embedded database) keeps the loop busy without being overload. */
  private readonly eventLoopCheckFrom: number;
  /**
   * When the adaptive limit's floor rises from where a just-started instance begins to the floor of a
   * warm one (`initialLimit` left to `auto`); Infinity once it has, or where it never moves.
   */
  private floorRisesAt: number;
  /** Admissions per second for busy callers while the loop has no time to spare. */
  private readonly loopCap: LoopShareCap;
  /** Refusals so far, by cause: the metrics read them (handover_admission_rejections_total). */
  private readonly refused: Record<RejectionCause, number> = { queue_wait: 0, queue_full: 0, event_loop: 0, memory: 0, shutting_down: 0 };
  /** The last refusal of each kind made before routing, answered again while it is recent (REUSE_REFUSAL_MS). */
  private readonly recentRefusals = new Map<RefusalKind, { error: AppError; at: number }>();

  constructor(
    private readonly options: AdmissionOptions,
    private readonly signals: LoadSignals,
    private readonly onReject: (cause: RejectionCause) => void = () => {},
    defaultLatencyTargetMs = 20,
    /** The clock of the loop's cap and of refusals answered again (tests move it themselves). */
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.eventLoopCheckFrom = Date.now() + options.warmupMs;
    this.floorRisesAt = options.adaptive && warmFloor(options) > limitFloor(options) ? this.eventLoopCheckFrom : Infinity;
    this.loopCap = new LoopShareCap(options.eventLoopUtilizationLimit, clock);
    this.limiter = new GradientLimit({
      initial: startLimit(options),
      min: limitFloor(options),
      max: options.maxLimit,
      targetMs: options.latencyTargetMs ?? defaultLatencyTargetMs,
    });
  }

  /** Refusals so far, by cause (counted as they are made; read by the metrics). */
  rejectionCounts(): Readonly<Record<RejectionCause, number>> {
    return this.refused;
  }

  /**
   * The limit now. Reading it is also where the floor rises once the warm-up is over (`floorRisesAt`):
   * every path that admits, refuses or reports reads it first, so no timer is needed for that.
   */
  get limit(): number {
    if (!this.options.adaptive) return startLimit(this.options);
    if (this.floorRisesAt !== Infinity && Date.now() >= this.floorRisesAt) {
      this.floorRisesAt = Infinity;
      this.limiter.raiseFloor(warmFloor(this.options));
    }
    return this.limiter.limit;
  }

  snapshot(): AdmissionSnapshot {
    const { shortMs, longMs } = this.limiter.rtts();
    return {
      limit: this.limit,
      inflight: this.inflight,
      waiting: this.waiting,
      overloaded: this.isQueueOverloaded(Date.now()),
      rttShortMs: shortMs,
      rttLongMs: longMs,
    };
  }

  /**
   * Judges the controller itself: slots held for requests whose client has gone, and every slot in use
   * with none given back for `stuckMs` (every admitted request is answered or cut at its deadline long
   * before, so such slots are not coming back). A limit at its floor under real load still gives slots
   * back, and is not a fault: taking a busy instance out of rotation would only load the others more.
   */
  health(bounds: { stuckMs: number }, now = Date.now()): AdmissionHealth {
    const limit = this.limit;
    const facts = {
      limit,
      floor: this.options.adaptive ? this.limiter.min : startLimit(this.options),
      inflight: this.inflight,
      waiting: this.waiting,
      orphaned: this.held.orphaned(now),
      // Without admission control nothing is refused for want of a slot.
      fullForMs: this.held.fullForMs(this.options.enabled && this.inflight >= limit, now),
    };
    const problems = admissionProblems(facts, bounds.stuckMs);
    return { ok: problems.length === 0, problems, ...facts };
  }

  /** Stop admitting: every new request is refused with `shutting_down`. */
  drain(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Admits a request from `key` (one caller: an API key, or an address). `holdsSlot: false` is for
   * long-lived streams, which are checked but do not occupy a slot for their whole life.
   */
  acquire(key: string, holdsSlot = true, options: AcquireOptions = {}): Permit | Promise<Permit> {
    if (options.signal?.aborted) throw options.signal.reason;
    if (this.draining) throw this.reject('shutting_down', 'This instance is shutting down; retry on another.');
    if (!this.options.enabled) return this.grant(key, holdsSlot, options.live);
    const refusal = this.processRefusal();
    if (refusal) throw refusal;
    if (!holdsSlot) return this.grant(key, false, options.live);
    const caller = this.caller(key);
    if (!options.loopShareTaken && this.loopCapApplies() && !this.loopCap.take(busy(caller))) throw this.loopCapError();
    if (this.inflight < this.limit && this.waiting === 0) {
      this.noteAdmission(Date.now(), null);
      return this.grant(key, true, options.live);
    }
    // Contended: wait in this caller's own line; slots go to the caller with the fewest in flight.
    const fairQueue = Math.max(1, Math.ceil(this.options.maxQueueLength / Math.max(1, this.linesWaiting)));
    if (this.waiting >= this.options.maxQueueLength && caller.queue.length >= fairQueue) {
      throw this.reject('queue_full', `${this.waiting} requests are already waiting for a slot; limit ${this.limit} in flight.`);
    }
    const now = Date.now();
    // Shedding is for the callers that make the line stand: one with nothing in flight or waiting is not
    // among them, waits the full bound and gets the next free slot (fewest in flight first), so a
    // flood cannot starve a quiet caller.
    const shedding = this.isQueueOverloaded(now) && busy(caller);
    const maxWait = shedding ? this.options.codelTargetMs : this.options.queueTimeoutMs;
    // While shedding, a wait that cannot end within its bound is refused now, not at its end (see
    // predictedRefusal). Outside shedding the full wait stays: it absorbs bursts, and holds back
    // clients that retry the moment they are refused.
    if (shedding) {
      const predicted = this.predictedRefusal(caller, maxWait);
      if (predicted) throw predicted;
    }
    return new Promise<Permit>((resolve, reject) => {
      const waiter: Waiter = { key, enqueuedAt: now, resolve, reject, timer: undefined, live: options.live, unwatch: () => {} };
      if (this.waiting === 0) this.queueEmptySince = now;
      waiter.timer = setTimeout(() => this.expire(waiter), maxWait);
      // A waiter whose client has gone leaves the line at once: handed a slot later, it would hold it
      // for a request nobody can answer.
      const signal = options.signal;
      if (signal) {
        const abandon = () => {
          if (this.leave(waiter)) reject(signal.reason);
        };
        signal.addEventListener('abort', abandon, { once: true });
        waiter.unwatch = () => signal.removeEventListener('abort', abandon);
      }
      if (caller.queue.length === 0) this.linesWaiting++;
      caller.queue.push(waiter);
      this.waiting++;
      // The limit may have grown since the last release.
      this.dispatch();
    });
  }

  /**
   * The refusal `acquire` would give a slot-holding request from `key` arriving now, when it can be told
   * without queueing it — or undefined when it might be admitted. For the HTTP layer to refuse before
   * routing, parsing or running any hook, so that under overload a refusal costs the process as little
   * as it can. Only callers already busy (requests in flight or waiting) are refused for the line;
   * anyone is refused for the process itself (memory, a late event loop).
   */
  refusalBeforeRouting(key: string): AppError | undefined {
    if (this.draining || !this.options.enabled) return undefined;
    const refusal = this.processRefusal(true);
    if (refusal) return refusal;
    const caller = this.callers.get(key);
    const isBusy = caller !== undefined && busy(caller);
    if (caller && isBusy && !(this.inflight < this.limit && this.waiting === 0) && this.isQueueOverloaded(Date.now())) {
      const predicted = this.predictedRefusal(caller, this.options.codelTargetMs, true);
      if (predicted) return predicted;
    }
    // Decided here for this request, so `acquire` is told not to count it again (loopShareTaken).
    if (this.loopCapApplies() && !this.loopCap.take(isBusy)) return this.loopCapError(true);
    return undefined;
  }

  /**
   * Whether the loop's cap (LoopShareCap) judges requests now, after feeding it the loop's last window;
   * false while warming up, when a busy loop is not overload. A busy caller over the cap is refused;
   * others count against it.
   */
  private loopCapApplies(): boolean {
    if (Date.now() < this.eventLoopCheckFrom) return false;
    this.loopCap.observe(this.signals.eventLoopWindow());
    return true;
  }

  private loopCapError(reuse = false): AppError {
    return this.refusal(
      'loop_cap',
      'event_loop',
      reuse,
      () =>
        `The event loop was busy ${Math.round(100 * this.loopCap.utilization)}% of the last 0.5 s (limit ${Math.round(100 * this.options.eventLoopUtilizationLimit)}%); ${loopBusyCause(this.loopCap.utilization, this.loopCap.cpuShare).text}. It admits at most ${Math.round(this.loopCap.current ?? 0)} requests/s from callers with requests in flight until it has room again.`,
    );
  }

  /** The process itself is the bottleneck: memory, or an event loop running late. */
  private processRefusal(reuse = false): AppError | undefined {
    const heap = this.signals.heap();
    if (heap.usedBytes > heap.limitBytes * this.options.heapUsedLimitRatio) {
      return this.refusal(
        'memory',
        'memory',
        reuse,
        () =>
          `Heap ${mb(heap.usedBytes)} used of a ${mb(heap.limitBytes)} limit (${Math.round((100 * heap.usedBytes) / heap.limitBytes)}%, shedding above ${Math.round(100 * this.options.heapUsedLimitRatio)}%).`,
      );
    }
    const lag = this.signals.eventLoopDelayMs();
    if (lag > this.options.eventLoopDelayLimitMs && Date.now() >= this.eventLoopCheckFrom) {
      return this.refusal(
        'loop_lag',
        'event_loop',
        reuse,
        () =>
          `Event-loop timers run ${Math.round(lag)} ms late (median over the last 0.5 s; limit ${this.options.eventLoopDelayLimitMs} ms); ${loopBusyCause(this.signals.eventLoopUtilization(), this.signals.eventLoopCpuShare()).text}.`,
      );
    }
    return undefined;
  }

  /**
   * A wait that could not end within `maxWait` at the pace slots come back: about one every
   * serviceMs / limit, going round the waiting callers (this one's line counted too), so a caller with
   * some already waiting is reached after about (those + 1) × lines. Refused at once: its client gets the
   * answer in microseconds instead of after the bound and the timer's lateness, and its connection is free.
   */
  private predictedRefusal(caller: Caller, maxWait: number, reuse = false): AppError | undefined {
    if (this.serviceMs === 0) return undefined;
    const lines = this.linesWaiting + (caller.queue.length === 0 ? 1 : 0);
    const ahead = Math.min(this.waiting + 1, (caller.queue.length + 1) * lines);
    if ((ahead * this.serviceMs) / Math.max(1, this.limit) <= maxWait) return undefined;
    return this.refusal(
      'predicted_wait',
      'queue_wait',
      reuse,
      () =>
        `No slot would come free within the ${maxWait} ms a request may wait: ${this.waiting} waiting, limit ${this.limit} in flight, each taking about ${Math.round(this.serviceMs)} ms (refused at once, without waiting).`,
    );
  }

  /**
   * Counts an admission (`waitedMs` null: granted without waiting) towards CoDel's interval, and judges
   * the interval just ended. A line stood through it when most admissions waited in it and none waited
   * less than the target: then waits are cut to the target for the next interval.
   *
   * This is CoDel's own test (the shortest sojourn over an interval), and it sees what the test of an
   * empty queue misses. Slots come back in bursts when a batch commits: the line empties for an instant
   * at each one, so it never stays non-empty for a whole interval. Yet every request in it waited tens
   * of milliseconds. Measured at three times capacity, such a line held every client connection busy;
   * it refused nothing while the clients' own backlog grew to seconds.
   */
  private noteAdmission(now: number, waitedMs: number | null): void {
    const interval = this.interval;
    if (now - interval.since >= this.options.codelIntervalMs) {
      const stood = interval.queued >= MIN_QUEUED_TO_JUDGE && 2 * interval.queued >= interval.admitted && interval.shortestWaitMs > this.options.codelTargetMs;
      if (stood) this.shedUntil = Math.max(this.shedUntil, now + this.options.codelIntervalMs);
      interval.since = now;
      interval.admitted = interval.queued = 0;
      interval.shortestWaitMs = Infinity;
    }
    interval.admitted++;
    if (waitedMs !== null) {
      interval.queued++;
      if (waitedMs < interval.shortestWaitMs) interval.shortestWaitMs = waitedMs;
    }
  }

  /** Queue "standing" for longer than the CoDel interval: cut waits to the target. */
  private isQueueOverloaded(now: number): boolean {
    return (this.waiting > 0 && now - this.queueEmptySince > this.options.codelIntervalMs) || now < this.shedUntil;
  }

  private grant(key: string, holdsSlot: boolean, live: (() => boolean) | undefined): Permit {
    const caller = this.caller(key);
    const startedAt = performance.now();
    const inflightAtStart = this.inflight;
    if (holdsSlot) {
      this.inflight++;
      caller.inflight++;
    }
    const slot = holdsSlot ? this.held.take(live, this.inflight >= this.limit) : undefined;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        if (!holdsSlot) return this.forget(key);
        this.inflight--;
        caller.inflight--;
        this.held.give(slot!, this.inflight >= this.limit);
        const took = performance.now() - startedAt;
        this.serviceMs = this.serviceMs === 0 ? took : this.serviceMs * 0.9 + took * 0.1;
        if (this.options.adaptive) this.limiter.onSample(took, inflightAtStart + 1);
        this.forget(key);
        this.dispatch();
      },
    };
  }

  /** Hands free slots to waiters: the caller with the fewest requests in flight goes first. */
  private dispatch(): void {
    while (this.waiting > 0 && this.inflight < this.limit) {
      let chosen: Caller | undefined;
      let chosenKey = '';
      for (const [key, caller] of this.callers) {
        const head = caller.queue[0];
        if (!head) continue;
        if (!chosen || caller.inflight < chosen.inflight || (caller.inflight === chosen.inflight && head.enqueuedAt < chosen.queue[0]!.enqueuedAt)) {
          chosen = caller;
          chosenKey = key;
        }
      }
      if (!chosen) return;
      const waiter = chosen.queue.shift()!;
      if (chosen.queue.length === 0) this.linesWaiting--;
      this.waiting--;
      if (this.waiting === 0) this.queueEmptySince = Date.now();
      clearTimeout(waiter.timer);
      waiter.unwatch();
      const now = Date.now();
      this.noteAdmission(now, now - waiter.enqueuedAt);
      waiter.resolve(this.grant(chosenKey, true, waiter.live));
    }
  }

  private expire(waiter: Waiter): void {
    if (!this.leave(waiter)) return;
    // A request waited its whole bound: overload, whether or not the queue empties now (expiries
    // empty it too). Waits stay short for an interval after the last one, as CoDel keeps dropping
    // until the queue's delay is back under its target.
    this.shedUntil = Date.now() + this.options.codelIntervalMs;
    const waited = Date.now() - waiter.enqueuedAt;
    waiter.reject(this.reject('queue_wait', `The request waited ${waited} ms for a slot; limit ${this.limit} in flight, ${this.waiting} still waiting.`));
  }

  /** Takes a waiter out of its line (timed out, or its client gone); false if it had already left. */
  private leave(waiter: Waiter): boolean {
    const caller = this.callers.get(waiter.key);
    const index = caller ? caller.queue.indexOf(waiter) : -1;
    if (!caller || index < 0) return false;
    caller.queue.splice(index, 1);
    if (caller.queue.length === 0) this.linesWaiting--;
    this.waiting--;
    if (this.waiting === 0) this.queueEmptySince = Date.now();
    clearTimeout(waiter.timer);
    waiter.unwatch();
    this.forget(waiter.key);
    return true;
  }

  /**
   * A refusal of one kind. With `reuse` (refusals made before routing), the last one of the same kind is
   * answered again while it is less than REUSE_REFUSAL_MS old: the same code, cause and message, its
   * figures that old at most. Under overload most requests are refused, each from Node's request event,
   * and building the message, the error and its JSON for each one was a sizeable part of what a refusal
   * cost (docs/overload.md, "What a refusal costs"). It is still counted, one by one.
   */
  private refusal(kind: RefusalKind, cause: RejectionCause, reuse: boolean, message: () => string): AppError {
    if (!reuse) return this.reject(cause, message());
    const now = this.clock();
    const recent = this.recentRefusals.get(kind);
    if (recent && now - recent.at < REUSE_REFUSAL_MS) {
      this.count(cause);
      return recent.error;
    }
    const error = this.reject(cause, message());
    this.recentRefusals.set(kind, { error, at: now });
    return error;
  }

  private count(cause: RejectionCause): void {
    this.refused[cause]++;
    this.onReject(cause);
  }

  private reject(cause: RejectionCause, message: string): AppError {
    this.count(cause);
    const code = cause === 'shutting_down' ? 'shutting_down' : cause === 'queue_full' ? 'overloaded_queue_wait' : (`overloaded_${cause}` as const);
    // No stack trace is captured (AppError): a refusal happens when the process is busiest.
    return new AppError(code, { message, details: { cause }, retryAfterSeconds: 1 });
  }

  private caller(key: string): Caller {
    let caller = this.callers.get(key);
    if (!caller) {
      caller = { inflight: 0, queue: [] };
      this.callers.set(key, caller);
    }
    return caller;
  }

  private forget(key: string): void {
    const caller = this.callers.get(key);
    if (caller && caller.inflight === 0 && caller.queue.length === 0) this.callers.delete(key);
  }
}

/** The kinds of refusal made before routing, each with a message of its own. */
type RefusalKind = 'memory' | 'loop_lag' | 'loop_cap' | 'predicted_wait';

/** How long a refusal made before routing is answered again as it was (its figures this old at most). */
export const REUSE_REFUSAL_MS = 100;

/** Fewer admissions through the line than this in an interval say nothing about whether it stood. */
const MIN_QUEUED_TO_JUDGE = 16;

/** A caller with requests in flight or waiting: one of those that make a line stand. */
function busy(caller: Caller): boolean {
  return caller.inflight > 0 || caller.queue.length > 0;
}

function mb(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MiB`;
}

/**
 * Where the limit starts (and stays, when not adaptive), capped at the most limit: the initial limit, or
 * with `auto`, half the floor while adaptive (a just-started instance is several times slower for its
 * first seconds; docs/overload.md, "The start") and the floor itself when fixed.
 */
function startLimit(options: Pick<AdmissionOptions, 'initialLimit' | 'minLimit' | 'maxLimit' | 'adaptive'>): number {
  if (options.initialLimit !== null) return Math.min(options.initialLimit, options.maxLimit);
  return Math.min(options.adaptive ? Math.max(1, Math.floor(options.minLimit / 2)) : options.minLimit, options.maxLimit);
}

/** The adaptive limit's floor as it starts: the configured minimum, or where the limit starts when that is lower. */
function limitFloor(options: Pick<AdmissionOptions, 'minLimit' | 'initialLimit' | 'maxLimit' | 'adaptive'>): number {
  return Math.min(options.minLimit, startLimit(options));
}

/**
 * The adaptive limit's floor once the warm-up is over: the configured minimum where the start was left
 * to `auto`; otherwise the floor it started with (an initial limit an operator set lower stays the floor).
 */
function warmFloor(options: Pick<AdmissionOptions, 'minLimit' | 'initialLimit' | 'maxLimit' | 'adaptive'>): number {
  return options.initialLimit === null ? Math.min(options.minLimit, options.maxLimit) : limitFloor(options);
}
