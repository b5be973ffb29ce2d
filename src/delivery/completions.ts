import { namedStatement, type Db } from '../store/db.js';
import { isRetryableConflict } from '../store/pg-errors.js';
import { withoutDeadline } from '../resilience/deadline.js';
import type { Logger } from '../telemetry/logger.js';

/**
 * Records a batch delivered — deletes the items delivered at their first attempt ($9), marks done those
 * delivered after failed ones ($1, $2) — lowers its lanes' pending counts, records external ids and
 * releases finished lanes — those in $8 only when nothing is left pending in them; answers which
 * released lanes it kept.
 */
export const RECORD_COMPLETIONS = namedStatement(
  'record-completions',
  `with done as (
    select * from unnest($1::bigint[], $2::int[]) as d(id, attempt)
  ), kept as (
    -- Found by the primary key, as below: "state = 'pending'" would let the plan walk the index of
    -- pending items, every item of a backlog, for each batch; these are its other states spelled out
    -- (every state an item can have: pending, done, dead, cancelled; a new one must be added here).
    update outbox o set state = 'done', attempts = d.attempt, done_at = now(), last_error = null
    from done d
    where o.id = any($1::bigint[]) and o.id = d.id and d.attempt > 1
      and o.state <> 'done' and o.state <> 'dead' and o.state <> 'cancelled'
    returning o.lane
  ), gone as (
    -- One descent of the primary key per id. (Written as "state = 'pending'" with a join on the
    -- batch, the plan walked the index of every pending item, a backlog's worth, or probed the key
    -- once per pair of ids.)
    -- Only while no attempt is recorded for it: if another worker (after this one's lease ran out)
    -- recorded a failed one meanwhile, the item stays for its next attempt (a repeat, with the same
    -- event id) rather than leave that attempt's row behind.
    -- An item cancelled meanwhile (its conversation ended after a give-up, the lane's count set to 0)
    -- is left as it is, as above.
    delete from outbox o where o.id = any($9::bigint[]) and o.attempts = 0
      and o.state <> 'done' and o.state <> 'dead' and o.state <> 'cancelled'
    returning o.lane
  ), counts as (
    select lane, count(*)::int as n from (select lane from kept union all select lane from gone) item group by lane
  ), ref as (
    update handovers h set external_ref = r.ref
    from unnest($4::text[], $5::text[]) as r(id, ref) where h.id = any($4::text[]) and h.id = r.id
  ), touched as materialized (
    select l.lane from outbox_lanes l
    where l.lane = any($7::text[]) and l.lane in (select lane from counts union select unnest($3::text[]))
    order by l.lane for update
  )
  update outbox_lanes l set
    pending = l.pending - coalesce(c.n, 0),
    locked_by = case when l.lane = any($3::text[]) and l.locked_by = $6 and (l.lane <> all($8::text[]) or l.pending - coalesce(c.n, 0) <= 0)
      then null else l.locked_by end,
    locked_until = case when l.lane = any($3::text[]) and l.locked_by = $6 and (l.lane <> all($8::text[]) or l.pending - coalesce(c.n, 0) <= 0)
      then null else l.locked_until end
  from touched t left join counts c on c.lane = t.lane
  where l.lane = t.lane
  returning l.lane, l.locked_by = $6 as kept`,
);

/**
 * Successful deliveries, recorded in batches: one statement marks many items done, lowers their lanes'
 * pending counts, records external ids, and gives back the lanes that are finished — instead of a
 * statement (and a socket write, and a commit) per delivered item.
 *
 * What a success stores: nothing, when it came at the first attempt: the item is deleted (the message
 * itself stays in `messages`; the metrics count the delivery). An item that failed before keeps its
 * row, marked `done` with its attempt count and `done_at`, beside its failed attempts in
 * `delivery_attempts` (status and error), which are what an operator reads. A row per success would
 * double the writes of the hottest path, and marking every item `done` kept a second copy of every
 * message for as long as its conversation (a new row version and two index entries per message, then
 * vacuum's work on the old one).
 *
 * A lane's release waits for its completions to be written with it (the same statement), so a lane
 * is never given back while items it delivered still look pending: another instance taking it would
 * send them again. A worker whose lane ran out of known items asks for a release "if empty": the same
 * statement gives the lane back when its pending count falls to zero and keeps it otherwise (items
 * written by another instance, or not handed to this one), so finding out that a lane is done costs no
 * statement of its own. Completions not yet written when the process dies are delivered again by whoever
 * takes the lane — at least once, with the same event ids, as the protocol promises.
 */
/** Tries of one batch before it is left to the leases (about 12 s of pauses in all). */
const MAX_WRITE_FAILURES = 7;

interface Done {
  id: number;
  attempt: number;
  lane: string;
}

export class CompletionRecorder {
  private done: Done[] = [];
  private refs = new Map<string, string>();
  /** Per lane: who waits for its release (told whether it was given back), and whether only if empty. */
  private releases = new Map<string, { waiting: Array<(released: boolean) => void>; ifEmpty: boolean }>();
  private writing: Promise<void> | null = null;
  private scheduled = false;
  private failures = 0;
  /** Closed at the worker's stop: releases asked later are left to their leases. */
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly instanceId: string,
    private readonly log: Logger,
    /** Largest number of items per statement. */
    private readonly maxBatch = 500,
  ) {}

  /** Records a delivered item (soon, with others). */
  delivered(item: Done, externalRef?: { handoverId: string; ref: string }): void {
    this.done.push(item);
    if (externalRef) this.refs.set(externalRef.handoverId, externalRef.ref);
    this.schedule();
  }

  /**
   * Gives the lane back once everything delivered so far is recorded; resolves after that commit with
   * whether it was given back (or is not this instance's any more). With `ifEmpty`, a lane that still
   * has pending items is kept, leased to this instance, and the answer is false.
   */
  release(lane: string, options: { ifEmpty?: boolean } = {}): Promise<boolean> {
    if (this.closed) {
      // Its database may be closing too: a write started now could outlive the worker by its retries.
      this.log.info({ lane }, 'a lane given back after its worker stopped: its lease runs out and then any instance delivers it');
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const entry = this.releases.get(lane);
      if (entry) {
        entry.waiting.push(resolve);
        // One release asked without the condition makes the lane's release unconditional.
        entry.ifEmpty &&= options.ifEmpty === true;
      } else this.releases.set(lane, { waiting: [resolve], ifEmpty: options.ifEmpty === true });
      this.schedule();
    });
  }

  /** Writes everything still held, then takes no more releases; for the worker's stop. */
  async close(): Promise<void> {
    while (this.writing || this.done.length > 0 || this.releases.size > 0) {
      if (this.writing) await this.writing;
      else await this.writeNext();
    }
    this.closed = true;
  }

  private schedule(): void {
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.writing) void this.writeNext();
    });
  }

  private writeNext(): Promise<void> {
    const done = this.done.splice(0, this.maxBatch);
    const refs = this.refs;
    this.refs = new Map();
    // Release only lanes none of whose completions are left for a later batch. Both maps are made anew
    // for each batch rather than emptied in place: a long-lived Map taking and dropping a lane per
    // message replaces its table every few hundred, and each table it replaced kept its entries (the
    // waiting lane runs, with their items and calls) alive through young collections until a full one
    // (resilience/churn-free.ts).
    const leftLanes = new Set(this.done.map((d) => d.lane));
    const asked = this.releases;
    this.releases = new Map();
    const releases = new Map<string, { waiting: Array<(released: boolean) => void>; ifEmpty: boolean }>();
    for (const [lane, entry] of asked) (leftLanes.has(lane) ? this.releases : releases).set(lane, entry);
    // Recorded for every request's delivery, bound by none of their deadlines.
    const run = withoutDeadline(() => this.write(done, refs, releases))
      .then((kept) => {
        this.failures = 0;
        for (const [lane, entry] of releases) for (const resolve of entry.waiting) resolve(!kept.has(lane));
      })
      .catch(async (err: unknown) => {
        // Put it all back and try again after a pause (the database may be busy or restarting). The
        // lanes stay leased meanwhile; past the retry bound they are left to run out their leases
        // and be delivered again (at least once): nothing is lost, but it is logged.
        this.failures++;
        if (this.failures > MAX_WRITE_FAILURES) {
          this.log.error(
            { err, items: done.length, lanes: releases.size },
            'recording delivered outbox items keeps failing; their lanes are delivered again when their leases run out',
          );
          for (const entry of releases.values()) for (const resolve of entry.waiting) resolve(true);
          return;
        }
        this.log.warn({ err, items: done.length, attempt: this.failures }, 'recording delivered outbox items failed; retrying');
        this.done.unshift(...done);
        for (const [handoverId, ref] of refs) if (!this.refs.has(handoverId)) this.refs.set(handoverId, ref);
        for (const [lane, entry] of releases) {
          const later = this.releases.get(lane);
          this.releases.set(lane, { waiting: [...entry.waiting, ...(later?.waiting ?? [])], ifEmpty: entry.ifEmpty && (later?.ifEmpty ?? true) });
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** this.failures)));
      })
      .finally(() => {
        this.writing = null;
        if (this.done.length > 0 || this.releases.size > 0) this.schedule();
      });
    this.writing = run;
    return run;
  }

  /** Writes one batch; answers the released lanes kept (still leased here: items pending). */
  private async write(done: Done[], refs: Map<string, string>, releases: Map<string, { ifEmpty: boolean }>): Promise<Set<string>> {
    const release = [...releases.keys()];
    if (done.length === 0 && refs.size === 0 && release.length === 0) return new Set();
    const ifEmpty = release.filter((lane) => releases.get(lane)!.ifEmpty);
    for (let attempt = 1; ; attempt++) {
      try {
        const { rows } = await this.db.query<{ lane: string; kept: boolean }>(RECORD_COMPLETIONS, [
          // Those delivered after a failed attempt, kept as done; those at their first go in $9.
          done.filter((d) => d.attempt > 1).map((d) => d.id),
          done.filter((d) => d.attempt > 1).map((d) => d.attempt),
          release,
          [...refs.keys()],
          [...refs.values()],
          this.instanceId,
          [...new Set([...done.map((d) => d.lane), ...release])],
          ifEmpty,
          done.filter((d) => d.attempt === 1).map((d) => d.id),
        ]);
        return new Set(rows.filter((r) => r.kept && releases.has(r.lane)).map((r) => r.lane));
      } catch (err) {
        // Lanes are locked in one order everywhere, so this is not expected; if it happens, the
        // statement did nothing and can run again.
        if (!isRetryableConflict(err) || attempt >= 3) throw err;
      }
    }
  }
}
