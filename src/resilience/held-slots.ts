/**
 * The admission slots in use, kept so the controller can judge itself: a slot held for a request whose
 * client has gone, or a full house that gives nothing back, means slots that will not come back by
 * themselves — an instance that refuses everything while its process looks healthy.
 */

/** The controller's own health, for readiness: an instance whose slots do not come back must leave rotation. */
export interface AdmissionHealth {
  ok: boolean;
  /** What is wrong, in words (empty when ok). */
  problems: string[];
  limit: number;
  /** The lowest the limit goes: the adaptive minimum, or the fixed limit. */
  floor: number;
  inflight: number;
  waiting: number;
  /** Slots held for requests whose client has gone, past a moment's grace. */
  orphaned: number;
  /** How long every slot has been in use with none given back; 0 while one is free. */
  fullForMs: number;
}

export interface HeldSlot {
  /** Whether the request holding it still has a client (unknown: taken as yes). */
  live: (() => boolean) | undefined;
  /** When a health check first found its client gone. */
  goneSince: number | undefined;
  /** Its place in the list of slots held; -1 once given back. */
  index: number;
}

/** A closing connection gives its slot back within a tick or two; a slot held a second later is lost. */
const ORPHAN_GRACE_MS = 1000;

export class HeldSlots {
  /**
   * The slots held, in no order: one taken goes at the end, one given back is replaced by the last.
   *
   * Not a Set (see churn-free.ts): a slot is taken and given back per request, and through its `live`
   * closure it reaches the whole request. Kept in a Set, every request was promoted to the old
   * generation: about 5 KB a request, most of what the HTTP thread promoted (bench/gc-per-request.ts).
   */
  private readonly slots: HeldSlot[] = [];
  /** Since when every slot has been in use with none given back. */
  private fullSince: number | undefined;

  /** A slot taken; `full`: every slot is now in use. */
  take(live: (() => boolean) | undefined, full: boolean): HeldSlot {
    const slot: HeldSlot = { live, goneSince: undefined, index: this.slots.length };
    this.slots.push(slot);
    if (full) this.fullSince ??= Date.now();
    return slot;
  }

  /** A slot given back is progress; still full after it (the limit shrank) starts a new count. */
  give(slot: HeldSlot, stillFull: boolean): void {
    if (slot.index >= 0 && this.slots[slot.index] === slot) {
      const last = this.slots.pop()!;
      if (last !== slot) {
        this.slots[slot.index] = last;
        last.index = slot.index;
      }
      slot.index = -1;
    }
    this.fullSince = stillFull ? Date.now() : undefined;
  }

  /** Slots held past the grace for requests whose client has gone. */
  orphaned(now: number): number {
    let orphaned = 0;
    for (const slot of this.slots) {
      if (!slot.live || slot.live()) {
        slot.goneSince = undefined;
        continue;
      }
      slot.goneSince ??= now;
      if (now - slot.goneSince >= ORPHAN_GRACE_MS) orphaned++;
    }
    return orphaned;
  }

  /** How long every slot has been in use with none given back, when `full` now. */
  fullForMs(full: boolean, now: number): number {
    return full && this.fullSince !== undefined ? now - this.fullSince : 0;
  }
}

/** Words for what is wrong, given the facts; empty when the controller is sound. */
export function admissionProblems(facts: Omit<AdmissionHealth, 'ok' | 'problems'>, stuckMs: number): string[] {
  const problems: string[] = [];
  if (facts.orphaned > 0) problems.push(`${facts.orphaned} admission slot(s) are held for requests whose client has gone.`);
  if (facts.fullForMs >= stuckMs) {
    const atFloor = facts.limit <= facts.floor ? ` (the limit is at its floor of ${facts.floor})` : '';
    problems.push(`All ${facts.limit} admission slots${atFloor} have been in use for ${Math.round(facts.fullForMs / 1000)} s with none given back.`);
  }
  return problems;
}
