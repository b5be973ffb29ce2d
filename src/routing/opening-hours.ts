/**
 * Weekly opening hours of a desk queue, read as wall-clock time in the queue's own time zone.
 *
 * Only `Intl.DateTimeFormat` knows the zone rules, and asking it is the expensive part, so each zone keeps
 * one formatter and the UTC offset of the last minute it was asked about: `isOpenAt(schedule, new Date())`
 * from many requests in the same minute costs one `formatToParts` per zone per minute. Each schedule object
 * is compiled once (a WeakMap keyed by the object), so treat schedules as immutable: replace, don't mutate.
 *
 * Closed dates are local calendar dates: the queue is closed from that date's local midnight to the next.
 * Weekly ranges are not cut any other way, so a range that runs past midnight out of a closed date opens
 * again at that midnight, just as one running into a closed date stops there.
 */

export const weekdays = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof weekdays)[number];
/** Times are "HH:MM" in the queue's time zone, 24-hour. A range with `to` <= `from` runs past midnight into the next day (22:00–02:00). "24:00" is allowed as `to` (end of day). A day absent or with [] is closed. */
export interface TimeRange {
  from: string;
  to: string;
}
export type WeeklyHours = Partial<Record<Weekday, TimeRange[]>>;
export interface Schedule {
  /** null/undefined → open around the clock (closed dates still apply). */
  weekly?: WeeklyHours | null;
  /** IANA zone name, e.g. "Europe/Oslo". */
  timeZone: string;
  /** "YYYY-MM-DD" local dates on which the queue is closed all day (holidays). A range that began the previous evening and runs past midnight into a closed date stops at that midnight. */
  closedDates?: string[];
}

const MINUTE = 60_000;
const DAY = 86_400_000;
const DAY_MINUTES = 1440;
const WEEK_MINUTES = 7 * DAY_MINUTES;
const HORIZON = 366 * DAY;
// Day 0 of the epoch, 1970-01-01, was a Thursday: index 3 in `weekdays`.
const EPOCH_WEEKDAY = 3;
// Zone names come from tenants; any casing of a real zone is valid, so bound what we keep.
const MAX_CACHED_ZONES = 2000;

const timePattern = /^([01]\d|2[0-3]):([0-5]\d)$/;
const datePattern = /^(\d{4})-(\d{2})-(\d{2})$/;

// ---------------------------------------------------------------------------------------------------------
// Validation

/** Every problem with the schedule, one sentence each naming the field; empty when it is valid. */
export function validateSchedule(s: Schedule): string[] {
  const problems: string[] = [];
  // The admin API hands us parsed JSON: the static type is a hope, not a fact.
  const input: unknown = s;
  if (!isRecord(input)) {
    return ['schedule: must be an object with "timeZone", and optionally "weekly" and "closedDates"'];
  }
  checkTimeZone(input.timeZone, problems);
  checkWeekly(input.weekly, problems);
  checkClosedDates(input.closedDates, problems);
  return problems;
}

function checkTimeZone(value: unknown, problems: string[]): void {
  if (typeof value !== 'string' || value === '') {
    problems.push(`timeZone: must be an IANA time zone name such as "Europe/Oslo", got ${show(value)}`);
  } else if (!isKnownTimeZone(value)) {
    problems.push(`timeZone: ${show(value)} is not a known IANA time zone (for example "Europe/Oslo")`);
  }
}

function isKnownTimeZone(timeZone: string): boolean {
  if (clocks.has(timeZone)) return true;
  try {
    new Intl.DateTimeFormat(undefined, { timeZone });
  } catch (err) {
    if (err instanceof RangeError) return false;
    throw err;
  }
  // A zone that was just validated is about to be used; building its clock now makes the next check free.
  clockFor(timeZone);
  return true;
}

interface DayRange {
  index: number;
  from: string;
  to: string;
  start: number;
  /** Minutes after this day's midnight; past 1440 when the range runs into the next day. */
  end: number;
}

function checkWeekly(value: unknown, problems: string[]): void {
  if (value === undefined || value === null) return;
  if (!isRecord(value)) {
    problems.push(`weekly: must be an object keyed by weekday (${weekdays.join(', ')}), or null for open around the clock`);
    return;
  }
  for (const key of Object.keys(value)) {
    if (!isWeekday(key)) {
      problems.push(`weekly.${key}: ${show(key)} is not a weekday; use ${weekdays.join(', ')}`);
    }
  }
  const byDay = weekdays.map((day) => checkDay(day, value[day], problems));
  byDay.forEach((ranges, d) => {
    const day = weekdays[d]!;
    for (let i = 0; i < ranges.length; i++) {
      for (let j = i + 1; j < ranges.length; j++) {
        const a = ranges[i]!;
        const b = ranges[j]!;
        if (a.start < b.end && b.start < a.end) {
          problems.push(`${describe(day, a)} and ${describe(day, b)} overlap`);
        }
      }
    }
    const nextDay = weekdays[(d + 1) % 7]!;
    for (const a of ranges) {
      if (a.end <= DAY_MINUTES) continue;
      for (const b of byDay[(d + 1) % 7]!) {
        if (b.start < a.end - DAY_MINUTES) {
          problems.push(`${describe(day, a)} runs past midnight into ${describe(nextDay, b)}`);
        }
      }
    }
  });
}

/** The day's well-formed ranges, for the overlap checks; problems with the rest are reported. */
function checkDay(day: Weekday, value: unknown, problems: string[]): DayRange[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    problems.push(`weekly.${day}: must be a list of {"from": "HH:MM", "to": "HH:MM"} ranges ([] for closed)`);
    return [];
  }
  const ranges: DayRange[] = [];
  value.forEach((range: unknown, index) => {
    const field = `weekly.${day}[${index}]`;
    if (!isRecord(range)) {
      problems.push(`${field}: must be an object like {"from": "09:00", "to": "17:00"}, got ${show(range)}`);
      return;
    }
    const start = checkTime(`${field}.from`, range.from, false, problems);
    const to = checkTime(`${field}.to`, range.to, true, problems);
    if (start === null || to === null) return;
    const end = to > start ? to : to + DAY_MINUTES;
    ranges.push({ index, from: range.from as string, to: range.to as string, start, end });
  });
  return ranges;
}

function checkTime(field: string, value: unknown, isEnd: boolean, problems: string[]): number | null {
  if (typeof value !== 'string') {
    problems.push(`${field}: must be a time "HH:MM", got ${show(value)}`);
    return null;
  }
  if (value === '24:00') {
    if (isEnd) return DAY_MINUTES;
    problems.push(`${field}: "24:00" is only allowed as "to" (end of day); use "00:00"`);
    return null;
  }
  const match = timePattern.exec(value);
  if (match === null) {
    problems.push(`${field}: ${show(value)} is not HH:MM (24-hour, 00:00 to ${isEnd ? '24:00' : '23:59'}, e.g. "09:00")`);
    return null;
  }
  return Number(match[1]) * 60 + Number(match[2]);
}

function checkClosedDates(value: unknown, problems: string[]): void {
  if (value === undefined || value === null) return;
  if (!Array.isArray(value)) {
    problems.push(`closedDates: must be a list of "YYYY-MM-DD" dates, got ${show(value)}`);
    return;
  }
  value.forEach((date: unknown, index) => {
    const field = `closedDates[${index}]`;
    if (typeof date !== 'string') {
      problems.push(`${field}: must be a date "YYYY-MM-DD", got ${show(date)}`);
    } else if (!datePattern.test(date)) {
      problems.push(`${field}: ${show(date)} is not YYYY-MM-DD`);
    } else if (epochDay(date) === null) {
      problems.push(`${field}: ${show(date)} is not a real calendar date`);
    }
  });
}

function describe(day: Weekday, range: DayRange): string {
  return `weekly.${day}[${range.index}] (${range.from} to ${range.to})`;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isWeekday(key: string): key is Weekday {
  return (weekdays as readonly string[]).includes(key);
}

/** Days since 1970-01-01 for a "YYYY-MM-DD" date, or null when no such date exists (2025-02-30). */
function epochDay(date: string): number | null {
  const match = datePattern.exec(date);
  if (match === null) return null;
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  // Date.UTC reads years 0–99 as 1900–1999; the Gregorian calendar repeats every 400 years, so shift past them.
  return Date.UTC(year + 400, month - 1, day) / DAY - DAYS_IN_400_YEARS;
}

const DAYS_IN_400_YEARS = 146_097;
const monthLengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

function daysInMonth(year: number, month: number): number {
  if (month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) return 29;
  return monthLengths[month - 1]!;
}

// ---------------------------------------------------------------------------------------------------------
// Zone offsets

interface ZoneClock {
  readonly format: Intl.DateTimeFormat;
  /** The UTC minute `offset` belongs to; NaN before the first lookup. */
  minute: number;
  /** Local wall-clock time minus UTC, in ms. */
  offset: number;
}

const clocks = new Map<string, ZoneClock>();

function clockFor(timeZone: string): ZoneClock {
  let clock = clocks.get(timeZone);
  if (clock === undefined) {
    clock = {
      format: new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      }),
      minute: NaN,
      offset: 0,
    };
    if (clocks.size < MAX_CACHED_ZONES) clocks.set(timeZone, clock);
  }
  return clock;
}

/**
 * Zone offset at `ms`. Offsets only change on whole minutes (modern tz data), so the answer for one
 * minute holds for all of it.
 */
function offsetAt(clock: ZoneClock, ms: number): number {
  const minute = Math.floor(ms / MINUTE);
  if (minute !== clock.minute) {
    clock.offset = computeOffset(clock.format, minute * MINUTE);
    clock.minute = minute;
  }
  return clock.offset;
}

function computeOffset(format: Intl.DateTimeFormat, ms: number): number {
  let year = 1970;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  for (const part of format.formatToParts(ms)) {
    switch (part.type) {
      case 'year':
        year = Number(part.value);
        break;
      case 'month':
        month = Number(part.value);
        break;
      case 'day':
        day = Number(part.value);
        break;
      case 'hour':
        // Some ICU builds have printed midnight as "24" of the same day.
        hour = Number(part.value) % 24;
        break;
      case 'minute':
        minute = Number(part.value);
        break;
      case 'second':
        second = Number(part.value);
        break;
      default:
        break;
    }
  }
  return Date.UTC(year, month - 1, day, hour, minute, second) - ms;
}

// ---------------------------------------------------------------------------------------------------------
// Compiled schedules

interface Compiled {
  readonly clock: ZoneClock;
  /** Flat [start, end) pairs in minutes since Monday 00:00 local, sorted, merged, none wrapping the week. */
  readonly open: Int32Array;
  /** Every minute of the week at which the weekly rules flip, sorted. */
  readonly edges: Int32Array;
  /** Closed dates as days since the epoch, in local-date terms. */
  readonly closedDays: ReadonlySet<number>;
  /** The weekly rules cover the whole week (closed dates may still apply). */
  readonly weeklyAlwaysOpen: boolean;
  /** Open at every instant: weekly always open and no closed dates. */
  readonly aroundTheClock: boolean;
  readonly neverOpen: boolean;
}

const compiledSchedules = new WeakMap<Schedule, Compiled>();

function compiled(s: Schedule): Compiled {
  let c = compiledSchedules.get(s);
  if (c === undefined) {
    c = compile(s);
    compiledSchedules.set(s, c);
  }
  return c;
}

function compile(s: Schedule): Compiled {
  const problems = validateSchedule(s);
  if (problems.length > 0) throw new RangeError(`Invalid opening hours: ${problems.join('; ')}`);

  const spans: [number, number][] = [];
  if (s.weekly === null || s.weekly === undefined) {
    spans.push([0, WEEK_MINUTES]);
  } else {
    weekdays.forEach((day, d) => {
      for (const range of s.weekly?.[day] ?? []) {
        const from = minutesOf(range.from);
        const to = minutesOf(range.to);
        const start = d * DAY_MINUTES + from;
        const end = d * DAY_MINUTES + (to > from ? to : to + DAY_MINUTES);
        if (end <= WEEK_MINUTES) {
          spans.push([start, end]);
        } else {
          // Sunday night into Monday morning.
          spans.push([start, WEEK_MINUTES], [0, end - WEEK_MINUTES]);
        }
      }
    });
  }
  spans.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [start, end] of spans) {
    const last = merged[merged.length - 1];
    if (last !== undefined && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  const first = merged[0];
  const weeklyAlwaysOpen = merged.length === 1 && first !== undefined && first[0] === 0 && first[1] === WEEK_MINUTES;
  const edges = [...new Set(merged.flat().map((m) => m % WEEK_MINUTES))].sort((a, b) => a - b);
  const closedDays = new Set<number>();
  for (const date of s.closedDates ?? []) closedDays.add(epochDay(date)!);

  return {
    clock: clockFor(s.timeZone),
    open: Int32Array.from(merged.flat()),
    edges: weeklyAlwaysOpen ? new Int32Array(0) : Int32Array.from(edges),
    closedDays,
    weeklyAlwaysOpen,
    aroundTheClock: weeklyAlwaysOpen && closedDays.size === 0,
    neverOpen: merged.length === 0,
  };
}

function minutesOf(time: string): number {
  return Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5));
}

function openAt(c: Compiled, ms: number): boolean {
  if (c.aroundTheClock) return true;
  const local = ms + offsetAt(c.clock, ms);
  const day = Math.floor(local / DAY);
  if (c.closedDays.has(day)) return false;
  if (c.weeklyAlwaysOpen) return true;
  const minute = weekMinute(day, Math.floor((local - day * DAY) / MINUTE));
  const open = c.open;
  for (let i = 0; i < open.length; i += 2) {
    if (minute < open[i]!) return false;
    if (minute < open[i + 1]!) return true;
  }
  return false;
}

function weekMinute(epochDay: number, minuteOfDay: number): number {
  return ((((epochDay + EPOCH_WEEKDAY) % 7) + 7) % 7) * DAY_MINUTES + minuteOfDay;
}

/**
 * The next local minute (as minutes since the epoch in wall-clock terms) after `localMinute` at which the
 * rules could flip. Never more than a day ahead, which also keeps each step short enough that it cannot
 * hide two zone transitions.
 */
function nextBoundary(c: Compiled, localMinute: number): number {
  const day = Math.floor(localMinute / DAY_MINUTES);
  const midnight = (day + 1) * DAY_MINUTES;
  const edges = c.edges;
  if (edges.length === 0) return midnight;
  const now = weekMinute(day, localMinute - day * DAY_MINUTES);
  let edge = edges[0]! + WEEK_MINUTES;
  for (let i = 0; i < edges.length; i++) {
    if (edges[i]! > now) {
      edge = edges[i]!;
      break;
    }
  }
  return Math.min(midnight, localMinute + (edge - now));
}

/** First whole UTC minute in (lo, hi] whose offset differs from `offset`, the offset at `lo`. */
function transitionIn(clock: ZoneClock, lo: number, hi: number, offset: number): number {
  let a = Math.floor(lo / MINUTE);
  let b = Math.ceil(hi / MINUTE);
  while (b - a > 1) {
    const mid = Math.floor((a + b) / 2);
    if (offsetAt(clock, mid * MINUTE) === offset) a = mid;
    else b = mid;
  }
  return b * MINUTE;
}

/**
 * Walks forward in real time, one stretch of constant offset at a time, so that the wall clock jumping
 * forward (a gap: the first instant after it) or back (a repeated hour: the earlier instant first) is
 * followed exactly as a clock on the wall would.
 */
function nextFlip(c: Compiled, from: number, wantOpen: boolean): number | null {
  if (openAt(c, from) === wantOpen) return from;
  if (wantOpen ? c.neverOpen : c.aroundTheClock) return null;
  const limit = from + HORIZON;
  let t = from;
  for (;;) {
    const offset = offsetAt(c.clock, t);
    let next = nextBoundary(c, Math.floor((t + offset) / MINUTE)) * MINUTE - offset;
    if (offsetAt(c.clock, next) !== offset) next = transitionIn(c.clock, t, next, offset);
    if (next > limit) return null;
    if (openAt(c, next) === wantOpen) return next;
    t = next;
  }
}

function timeOf(date: Date, name: string): number {
  const ms = date.getTime();
  if (Number.isNaN(ms)) throw new RangeError(`${name} is an invalid Date`);
  return ms;
}

// ---------------------------------------------------------------------------------------------------------
// API

/** Whether the queue is open at `at`. Throws a RangeError listing the problems if the schedule is invalid. */
export function isOpenAt(s: Schedule, at: Date): boolean {
  return openAt(compiled(s), timeOf(at, 'at'));
}

/** `from` itself if open then; otherwise the first instant it opens; null if not within 366 days. */
export function nextOpenAt(s: Schedule, from: Date): Date | null {
  const ms = nextFlip(compiled(s), timeOf(from, 'from'), true);
  return ms === null ? null : new Date(ms);
}

/** `from` itself if closed then; otherwise the first instant it closes; null if not within 366 days. */
export function nextClosedAt(s: Schedule, from: Date): Date | null {
  const ms = nextFlip(compiled(s), timeOf(from, 'from'), false);
  return ms === null ? null : new Date(ms);
}
