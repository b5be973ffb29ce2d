import { describe, it, expect } from 'vitest';
import { isOpenAt, nextClosedAt, nextOpenAt, validateSchedule, type Schedule, type WeeklyHours } from '../../src/routing/opening-hours.js';

// Instants are written with the zone's offset at that moment, so the local wall time is readable.
const at = (iso: string): Date => new Date(iso);
const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

const weekdaysNineToFive: WeeklyHours = {
  mon: [{ from: '09:00', to: '17:00' }],
  tue: [{ from: '09:00', to: '17:00' }],
  wed: [{ from: '09:00', to: '17:00' }],
  thu: [{ from: '09:00', to: '17:00' }],
  fri: [{ from: '09:00', to: '17:00' }],
};

describe('isOpenAt inside and at the edges of a range', () => {
  // 2025-06-02 is a Monday; Oslo is on CEST (+02:00).
  const s: Schedule = { timeZone: 'Europe/Oslo', weekly: { mon: [{ from: '09:00', to: '17:00' }] } };

  it('is closed the minute before `from` and open at `from` (inclusive)', () => {
    expect(isOpenAt(s, at('2025-06-02T08:59:59.999+02:00'))).toBe(false);
    expect(isOpenAt(s, at('2025-06-02T09:00:00+02:00'))).toBe(true);
  });

  it('is open inside the range and up to the last millisecond before `to`', () => {
    expect(isOpenAt(s, at('2025-06-02T12:34+02:00'))).toBe(true);
    expect(isOpenAt(s, at('2025-06-02T16:59:59.999+02:00'))).toBe(true);
  });

  it('is closed at `to` (exclusive)', () => {
    expect(isOpenAt(s, at('2025-06-02T17:00+02:00'))).toBe(false);
  });

  it('reads the time in the queue zone, not UTC', () => {
    // 08:30 UTC is 10:30 in Oslo (open), but 09:00 in Oslo is 07:00 UTC.
    expect(isOpenAt(s, at('2025-06-02T07:30Z'))).toBe(true);
    expect(isOpenAt(s, at('2025-06-02T06:59Z'))).toBe(false);
    expect(isOpenAt(s, at('2025-06-02T15:00Z'))).toBe(false);
  });

  it('is closed on days that are absent or []', () => {
    const t: Schedule = { timeZone: 'Europe/Oslo', weekly: { mon: [{ from: '09:00', to: '17:00' }], tue: [] } };
    expect(isOpenAt(t, at('2025-06-03T12:00+02:00'))).toBe(false); // Tuesday, []
    expect(isOpenAt(t, at('2025-06-04T12:00+02:00'))).toBe(false); // Wednesday, absent
  });

  it('handles several ranges on one day, including ones that touch', () => {
    const t: Schedule = {
      timeZone: 'Europe/Oslo',
      weekly: {
        mon: [
          { from: '13:00', to: '17:00' },
          { from: '08:00', to: '11:30' },
          { from: '17:00', to: '18:00' },
        ],
      },
    };
    expect(isOpenAt(t, at('2025-06-02T11:29+02:00'))).toBe(true);
    expect(isOpenAt(t, at('2025-06-02T11:30+02:00'))).toBe(false);
    expect(isOpenAt(t, at('2025-06-02T12:59+02:00'))).toBe(false);
    expect(isOpenAt(t, at('2025-06-02T13:00+02:00'))).toBe(true);
    expect(isOpenAt(t, at('2025-06-02T17:00+02:00'))).toBe(true);
    expect(isOpenAt(t, at('2025-06-02T18:00+02:00'))).toBe(false);
    expect(nextClosedAt(t, at('2025-06-02T16:00+02:00'))?.toISOString()).toBe('2025-06-02T16:00:00.000Z');
  });
});

describe('ranges past midnight and "24:00"', () => {
  // 2025-06-06 is a Friday.
  const friNight: Schedule = { timeZone: 'Europe/Oslo', weekly: { fri: [{ from: '22:00', to: '02:00' }] } };

  it('Friday 22:00–02:00 is open late Friday and Saturday 01:00, closed at Saturday 02:00', () => {
    expect(isOpenAt(friNight, at('2025-06-06T21:59+02:00'))).toBe(false);
    expect(isOpenAt(friNight, at('2025-06-06T22:00+02:00'))).toBe(true);
    expect(isOpenAt(friNight, at('2025-06-07T00:00+02:00'))).toBe(true);
    expect(isOpenAt(friNight, at('2025-06-07T01:00+02:00'))).toBe(true);
    expect(isOpenAt(friNight, at('2025-06-07T02:00+02:00'))).toBe(false);
    // Saturday 22:00 has no range of its own.
    expect(isOpenAt(friNight, at('2025-06-07T23:00+02:00'))).toBe(false);
  });

  it('Sunday 22:00–02:00 runs into Monday morning across the week boundary', () => {
    const s: Schedule = { timeZone: 'Europe/Oslo', weekly: { sun: [{ from: '22:00', to: '02:00' }] } };
    expect(isOpenAt(s, at('2025-06-08T23:30+02:00'))).toBe(true);
    expect(isOpenAt(s, at('2025-06-09T01:59+02:00'))).toBe(true);
    expect(isOpenAt(s, at('2025-06-09T02:00+02:00'))).toBe(false);
    expect(iso(nextClosedAt(s, at('2025-06-08T23:30+02:00')))).toBe('2025-06-09T00:00:00.000Z');
  });

  it('"to" equal to "from" is a full 24 hours', () => {
    const s: Schedule = { timeZone: 'Europe/Oslo', weekly: { mon: [{ from: '09:00', to: '09:00' }] } };
    expect(isOpenAt(s, at('2025-06-02T08:59+02:00'))).toBe(false);
    expect(isOpenAt(s, at('2025-06-03T08:59+02:00'))).toBe(true);
    expect(isOpenAt(s, at('2025-06-03T09:00+02:00'))).toBe(false);
  });

  it('"24:00" ends the day: open at 23:59, closed at the next midnight', () => {
    const s: Schedule = { timeZone: 'Europe/Oslo', weekly: { mon: [{ from: '18:00', to: '24:00' }] } };
    expect(isOpenAt(s, at('2025-06-02T23:59:59+02:00'))).toBe(true);
    expect(isOpenAt(s, at('2025-06-03T00:00+02:00'))).toBe(false);
    expect(iso(nextClosedAt(s, at('2025-06-02T20:00+02:00')))).toBe('2025-06-02T22:00:00.000Z');
  });

  it('"00:00" to "24:00" on consecutive days is open straight through midnight', () => {
    const s: Schedule = {
      timeZone: 'Europe/Oslo',
      weekly: { mon: [{ from: '08:00', to: '24:00' }], tue: [{ from: '00:00', to: '06:00' }] },
    };
    expect(iso(nextClosedAt(s, at('2025-06-02T12:00+02:00')))).toBe(iso(at('2025-06-03T06:00+02:00')));
  });
});

describe('closed dates', () => {
  it('always open (weekly null) is closed exactly for the local closed date', () => {
    const s: Schedule = { timeZone: 'Europe/Oslo', weekly: null, closedDates: ['2025-12-25'] };
    expect(isOpenAt(s, at('2025-12-24T23:59+01:00'))).toBe(true);
    expect(isOpenAt(s, at('2025-12-25T00:00+01:00'))).toBe(false);
    expect(isOpenAt(s, at('2025-12-25T23:59+01:00'))).toBe(false);
    expect(isOpenAt(s, at('2025-12-26T00:00+01:00'))).toBe(true);
    expect(iso(nextClosedAt(s, at('2025-12-20T10:00+01:00')))).toBe(iso(at('2025-12-25T00:00+01:00')));
    expect(iso(nextOpenAt(s, at('2025-12-25T12:00+01:00')))).toBe(iso(at('2025-12-26T00:00+01:00')));
  });

  it('weekly omitted means always open too', () => {
    const s: Schedule = { timeZone: 'Asia/Tokyo' };
    expect(isOpenAt(s, at('2025-01-01T03:00+09:00'))).toBe(true);
    expect(nextClosedAt(s, at('2025-01-01T03:00+09:00'))).toBeNull();
  });

  it('uses the local date in Pacific/Auckland, which is ahead of UTC', () => {
    const s: Schedule = { timeZone: 'Pacific/Auckland', closedDates: ['2025-03-10'] };
    // UTC says 9 March, Auckland (+13:00) says 10 March 01:00: closed.
    expect(isOpenAt(s, at('2025-03-09T12:00Z'))).toBe(false);
    // UTC says 10 March, Auckland says 11 March 01:00: open.
    expect(isOpenAt(s, at('2025-03-10T12:00Z'))).toBe(true);
    expect(iso(nextOpenAt(s, at('2025-03-09T12:00Z')))).toBe('2025-03-10T11:00:00.000Z');
  });

  it('uses the local date in America/Los_Angeles, which is behind UTC', () => {
    const s: Schedule = { timeZone: 'America/Los_Angeles', closedDates: ['2025-07-04'] };
    // UTC says 5 July, Los Angeles (-07:00) says 4 July 20:00: closed.
    expect(isOpenAt(s, at('2025-07-05T03:00Z'))).toBe(false);
    // UTC says 4 July, Los Angeles says 3 July 22:00: open.
    expect(isOpenAt(s, at('2025-07-04T05:00Z'))).toBe(true);
    expect(iso(nextClosedAt(s, at('2025-07-04T05:00Z')))).toBe('2025-07-04T07:00:00.000Z');
  });

  it('a range running past midnight into a closed date stops at that midnight', () => {
    // Friday 2025-06-06 22:00–02:00, Saturday 2025-06-07 closed.
    const s: Schedule = {
      timeZone: 'Europe/Oslo',
      weekly: { fri: [{ from: '22:00', to: '02:00' }] },
      closedDates: ['2025-06-07'],
    };
    expect(isOpenAt(s, at('2025-06-06T23:59+02:00'))).toBe(true);
    expect(isOpenAt(s, at('2025-06-07T00:30+02:00'))).toBe(false);
    expect(iso(nextClosedAt(s, at('2025-06-06T23:00+02:00')))).toBe(iso(at('2025-06-07T00:00+02:00')));
  });

  it('a range running past midnight out of a closed date opens at that midnight', () => {
    // Friday 2025-06-06 is closed; Saturday is not, so the tail of Friday night's range is open.
    const s: Schedule = {
      timeZone: 'Europe/Oslo',
      weekly: { fri: [{ from: '22:00', to: '02:00' }] },
      closedDates: ['2025-06-06'],
    };
    expect(isOpenAt(s, at('2025-06-06T23:00+02:00'))).toBe(false);
    expect(isOpenAt(s, at('2025-06-07T01:00+02:00'))).toBe(true);
    expect(iso(nextOpenAt(s, at('2025-06-06T21:00+02:00')))).toBe(iso(at('2025-06-07T00:00+02:00')));
  });
});

describe('DST in Europe/Oslo', () => {
  // 2025-03-30 (Sunday): 02:00 CET → 03:00 CEST, at 01:00 UTC. 2025-10-26 (Sunday): 03:00 CEST → 02:00 CET.
  const sundayOneToThree: Schedule = { timeZone: 'Europe/Oslo', weekly: { sun: [{ from: '01:00', to: '03:00' }] } };

  it('spring forward: 01:00–03:00 is open for one real hour', () => {
    expect(isOpenAt(sundayOneToThree, at('2025-03-30T00:59+01:00'))).toBe(false);
    expect(isOpenAt(sundayOneToThree, at('2025-03-30T01:00+01:00'))).toBe(true);
    expect(isOpenAt(sundayOneToThree, at('2025-03-30T01:59+01:00'))).toBe(true);
    expect(isOpenAt(sundayOneToThree, at('2025-03-30T03:00+02:00'))).toBe(false);
    expect(iso(nextOpenAt(sundayOneToThree, at('2025-03-29T12:00+01:00')))).toBe('2025-03-30T00:00:00.000Z');
    expect(iso(nextClosedAt(sundayOneToThree, at('2025-03-30T01:30+01:00')))).toBe('2025-03-30T01:00:00.000Z');
  });

  it('fall back: 01:00–03:00 is open for three real hours, through both 02:00s', () => {
    expect(isOpenAt(sundayOneToThree, at('2025-10-26T00:59+02:00'))).toBe(false);
    expect(isOpenAt(sundayOneToThree, at('2025-10-26T01:00+02:00'))).toBe(true);
    expect(isOpenAt(sundayOneToThree, at('2025-10-26T02:30+02:00'))).toBe(true);
    expect(isOpenAt(sundayOneToThree, at('2025-10-26T02:30+01:00'))).toBe(true);
    expect(isOpenAt(sundayOneToThree, at('2025-10-26T03:00+01:00'))).toBe(false);
    expect(iso(nextClosedAt(sundayOneToThree, at('2025-10-26T01:00+02:00')))).toBe('2025-10-26T02:00:00.000Z');
  });

  it('nextOpenAt for a time inside the gap lands on the first instant after it', () => {
    const s: Schedule = { timeZone: 'Europe/Oslo', weekly: { sun: [{ from: '02:30', to: '04:00' }] } };
    const opens = nextOpenAt(s, at('2025-03-29T12:00+01:00'));
    expect(iso(opens)).toBe(iso(at('2025-03-30T03:00+02:00')));
    expect(isOpenAt(s, opens!)).toBe(true);
    // One minute earlier is still 01:59 CET, before the range.
    expect(isOpenAt(s, new Date(opens!.getTime() - 60_000))).toBe(false);
  });

  it('a range wholly inside the gap never happens that day', () => {
    const s: Schedule = { timeZone: 'Europe/Oslo', weekly: { sun: [{ from: '02:00', to: '02:45' }] } };
    expect(isOpenAt(s, at('2025-03-30T03:00+02:00'))).toBe(false);
    expect(iso(nextOpenAt(s, at('2025-03-29T12:00+01:00')))).toBe(iso(at('2025-04-06T02:00+02:00')));
  });

  it('an ambiguous opening time resolves to the earlier instant, and reopens on the repeat', () => {
    const s: Schedule = { timeZone: 'Europe/Oslo', weekly: { sun: [{ from: '02:30', to: '04:00' }] } };
    expect(iso(nextOpenAt(s, at('2025-10-25T12:00+02:00')))).toBe(iso(at('2025-10-26T02:30+02:00')));
    // At 03:00 CEST the clock goes back to 02:00: closed until 02:30 comes round again.
    expect(iso(nextClosedAt(s, at('2025-10-26T02:30+02:00')))).toBe(iso(at('2025-10-26T02:00+01:00')));
    expect(iso(nextOpenAt(s, at('2025-10-26T02:00+01:00')))).toBe(iso(at('2025-10-26T02:30+01:00')));
    expect(iso(nextClosedAt(s, at('2025-10-26T02:30+01:00')))).toBe(iso(at('2025-10-26T04:00+01:00')));
  });
});

describe('DST in America/New_York', () => {
  // 2025-03-09: 02:00 EST → 03:00 EDT, at 07:00 UTC. 2025-11-02: 02:00 EDT → 01:00 EST, at 06:00 UTC.
  const sundayOneToThree: Schedule = {
    timeZone: 'America/New_York',
    weekly: { sun: [{ from: '01:00', to: '03:00' }] },
  };

  it('spring forward: open 01:00 EST, closed from 03:00 EDT', () => {
    expect(isOpenAt(sundayOneToThree, at('2025-03-09T01:59-05:00'))).toBe(true);
    expect(isOpenAt(sundayOneToThree, at('2025-03-09T03:00-04:00'))).toBe(false);
    expect(iso(nextOpenAt(sundayOneToThree, at('2025-03-08T12:00-05:00')))).toBe('2025-03-09T06:00:00.000Z');
    expect(iso(nextClosedAt(sundayOneToThree, at('2025-03-09T01:00-05:00')))).toBe('2025-03-09T07:00:00.000Z');
  });

  it('fall back: open from 01:00 EDT to 03:00 EST, three real hours', () => {
    expect(iso(nextOpenAt(sundayOneToThree, at('2025-11-01T12:00-04:00')))).toBe('2025-11-02T05:00:00.000Z');
    expect(isOpenAt(sundayOneToThree, at('2025-11-02T01:30-05:00'))).toBe(true);
    expect(isOpenAt(sundayOneToThree, at('2025-11-02T02:59-05:00'))).toBe(true);
    expect(iso(nextClosedAt(sundayOneToThree, at('2025-11-02T01:00-04:00')))).toBe('2025-11-02T08:00:00.000Z');
  });

  it('nextOpenAt for 02:15 on the spring-forward day lands on 03:00 EDT', () => {
    const s: Schedule = { timeZone: 'America/New_York', weekly: { sun: [{ from: '02:15', to: '05:00' }] } };
    expect(iso(nextOpenAt(s, at('2025-03-08T20:00-05:00')))).toBe('2025-03-09T07:00:00.000Z');
  });

  it('a range inside the repeated hour opens on both passes', () => {
    const s: Schedule = { timeZone: 'America/New_York', weekly: { sun: [{ from: '01:30', to: '01:45' }] } };
    expect(iso(nextOpenAt(s, at('2025-11-02T00:00-04:00')))).toBe(iso(at('2025-11-02T01:30-04:00')));
    // After the first pass closes, the clock returns to 01:00 and 01:30 comes again an hour later.
    expect(iso(nextOpenAt(s, at('2025-11-02T01:50-04:00')))).toBe(iso(at('2025-11-02T01:30-05:00')));
  });
});

describe('DST that does not fall on a UTC hour (Australia/Lord_Howe, +10:30 → +11:00)', () => {
  it('opening inside the half-hour gap lands on the end of the gap', () => {
    // 2025-10-05 (Sunday): 02:00 +10:30 → 02:30 +11:00, at 15:30 UTC on the 4th.
    const s: Schedule = { timeZone: 'Australia/Lord_Howe', weekly: { sun: [{ from: '02:10', to: '03:00' }] } };
    expect(iso(nextOpenAt(s, at('2025-10-04T12:00+10:30')))).toBe('2025-10-04T15:30:00.000Z');
    expect(isOpenAt(s, at('2025-10-04T15:29Z'))).toBe(false);
  });
});

describe('nextOpenAt and nextClosedAt', () => {
  const officeHours: Schedule = { timeZone: 'Europe/Oslo', weekly: weekdaysNineToFive };

  it('returns `from` itself, to the millisecond, when already open (nextOpenAt) or closed (nextClosedAt)', () => {
    const open = at('2025-06-02T10:15:42.123+02:00');
    const closed = at('2025-06-02T18:15:42.123+02:00');
    expect(nextOpenAt(officeHours, open)?.getTime()).toBe(open.getTime());
    expect(nextClosedAt(officeHours, closed)?.getTime()).toBe(closed.getTime());
  });

  it('finds the closing time from a mid-minute instant', () => {
    expect(iso(nextClosedAt(officeHours, at('2025-06-02T16:59:30.5+02:00')))).toBe(iso(at('2025-06-02T17:00+02:00')));
  });

  it('skips the weekend: Friday evening → Monday 09:00', () => {
    expect(iso(nextOpenAt(officeHours, at('2025-12-19T17:00+01:00')))).toBe(iso(at('2025-12-22T09:00+01:00')));
  });

  it('skips a weekend and then holidays', () => {
    const s: Schedule = { ...officeHours, closedDates: ['2025-12-24', '2025-12-25', '2025-12-26'] };
    // Tuesday 23 December after closing: Wednesday to Friday are holidays, then the weekend.
    expect(iso(nextOpenAt(s, at('2025-12-23T17:30+01:00')))).toBe(iso(at('2025-12-29T09:00+01:00')));
    // Early on the 23rd it still opens that day.
    expect(iso(nextOpenAt(s, at('2025-12-23T07:00+01:00')))).toBe(iso(at('2025-12-23T09:00+01:00')));
  });

  it('is null when the queue never opens', () => {
    for (const weekly of [{}, { mon: [] }] satisfies WeeklyHours[]) {
      const s: Schedule = { timeZone: 'Europe/Oslo', weekly };
      expect(nextOpenAt(s, at('2025-06-02T12:00+02:00'))).toBeNull();
      expect(isOpenAt(s, at('2025-06-02T12:00+02:00'))).toBe(false);
      expect(nextClosedAt(s, at('2025-06-02T12:00+02:00'))?.toISOString()).toBe('2025-06-02T10:00:00.000Z');
    }
  });

  it('nextClosedAt is null when open around the clock', () => {
    const allWeek = Object.fromEntries((['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const).map((d) => [d, [{ from: '00:00', to: '24:00' }]]));
    expect(nextClosedAt({ timeZone: 'UTC', weekly: allWeek }, at('2025-06-02T12:00Z'))).toBeNull();
    expect(nextClosedAt({ timeZone: 'UTC', weekly: null }, at('2025-06-02T12:00Z'))).toBeNull();
  });

  it('looks 366 days ahead and no further', () => {
    // Always open, but every date from 2025-01-01 on is closed for `days` days.
    const closedFor = (days: number): Schedule => ({
      timeZone: 'UTC',
      closedDates: Array.from({ length: days }, (_, i) => new Date(Date.UTC(2025, 0, 1 + i)).toISOString().slice(0, 10)),
    });
    const from = at('2025-01-01T00:00Z');
    // Opens exactly 366 days after `from`: still found.
    expect(iso(nextOpenAt(closedFor(366), from))).toBe('2026-01-02T00:00:00.000Z');
    expect(nextOpenAt(closedFor(367), from)).toBeNull();
  });

  it('agrees minute by minute with isOpenAt across DST weeks', () => {
    const schedules: Schedule[] = [
      {
        timeZone: 'America/New_York',
        weekly: {
          sun: [
            { from: '01:30', to: '01:45' },
            { from: '23:00', to: '02:30' },
          ],
          sat: [{ from: '02:10', to: '02:20' }],
        },
      },
      {
        timeZone: 'Europe/Oslo',
        weekly: {
          sun: [
            { from: '02:10', to: '02:50' },
            { from: '02:55', to: '03:05' },
          ],
          sat: [{ from: '22:00', to: '02:05' }],
        },
        closedDates: ['2025-03-31'],
      },
    ];
    const windows = ['2025-11-01T00:00Z', '2025-03-29T00:00Z'];
    for (const s of schedules) {
      for (const start of windows) {
        const t0 = Date.parse(start);
        const minutes = 4 * 1440;
        const open = Array.from({ length: minutes }, (_, i) => isOpenAt(s, new Date(t0 + i * 60_000)));
        let nextOpen: number | null = null;
        let nextClosed: number | null = null;
        for (let i = minutes - 1; i >= 0; i--) {
          const t = t0 + i * 60_000;
          if (open[i]) nextOpen = t;
          else nextClosed = t;
          if (nextOpen !== null) expect(nextOpenAt(s, new Date(t))?.getTime(), `${s.timeZone} ${new Date(t).toISOString()}`).toBe(nextOpen);
          if (nextClosed !== null) expect(nextClosedAt(s, new Date(t))?.getTime(), `${s.timeZone} ${new Date(t).toISOString()}`).toBe(nextClosed);
        }
      }
    }
  });
});

describe('validateSchedule', () => {
  it('accepts a valid schedule', () => {
    expect(
      validateSchedule({
        timeZone: 'Europe/Oslo',
        weekly: {
          ...weekdaysNineToFive,
          fri: [
            { from: '09:00', to: '17:00' },
            { from: '22:00', to: '02:00' },
          ],
          sat: [{ from: '02:00', to: '24:00' }],
        },
        closedDates: ['2024-02-29', '2025-12-25'],
      }),
    ).toEqual([]);
    expect(validateSchedule({ timeZone: 'UTC', weekly: null })).toEqual([]);
    expect(validateSchedule({ timeZone: 'America/New_York' })).toEqual([]);
  });

  it('lists every problem at once, each naming its field', () => {
    const bad = {
      timeZone: 'Europe/Olso',
      weekly: {
        mon: [
          { from: '09:00', to: '12:00' },
          { from: '9:00', to: '17:00' },
          { from: '11:00', to: '13:00' },
        ],
        monday: [{ from: '09:00', to: '17:00' }],
        tue: [{ from: '24:00', to: '25:00' }],
        wed: 'closed',
        thu: [{ from: '08:00' }],
        fri: [{ from: '22:00', to: '03:00' }],
        sat: [{ from: '02:00', to: '06:00' }],
      },
      closedDates: ['2025-12-25', '25.12.2025', '2025-02-30', 20251226],
    } as unknown as Schedule;
    expect(validateSchedule(bad)).toEqual([
      'timeZone: "Europe/Olso" is not a known IANA time zone (for example "Europe/Oslo")',
      'weekly.monday: "monday" is not a weekday; use mon, tue, wed, thu, fri, sat, sun',
      'weekly.mon[1].from: "9:00" is not HH:MM (24-hour, 00:00 to 23:59, e.g. "09:00")',
      'weekly.tue[0].from: "24:00" is only allowed as "to" (end of day); use "00:00"',
      'weekly.tue[0].to: "25:00" is not HH:MM (24-hour, 00:00 to 24:00, e.g. "09:00")',
      'weekly.wed: must be a list of {"from": "HH:MM", "to": "HH:MM"} ranges ([] for closed)',
      'weekly.thu[0].to: must be a time "HH:MM", got nothing',
      'weekly.mon[0] (09:00 to 12:00) and weekly.mon[2] (11:00 to 13:00) overlap',
      'weekly.fri[0] (22:00 to 03:00) runs past midnight into weekly.sat[0] (02:00 to 06:00)',
      'closedDates[1]: "25.12.2025" is not YYYY-MM-DD',
      'closedDates[2]: "2025-02-30" is not a real calendar date',
      'closedDates[3]: must be a date "YYYY-MM-DD", got 20251226',
    ]);
  });

  it('knows which dates exist, leap years included', () => {
    const dates = ['2024-02-29', '2000-02-29', '2025-02-29', '2100-02-29', '2025-04-31', '2025-00-10', '2025-12-31'];
    expect(validateSchedule({ timeZone: 'UTC', closedDates: dates })).toEqual([
      'closedDates[2]: "2025-02-29" is not a real calendar date',
      'closedDates[3]: "2100-02-29" is not a real calendar date',
      'closedDates[4]: "2025-04-31" is not a real calendar date',
      'closedDates[5]: "2025-00-10" is not a real calendar date',
    ]);
    // And the valid ones close the right UTC day.
    const s: Schedule = { timeZone: 'UTC', closedDates: ['2024-02-29'] };
    expect(isOpenAt(s, at('2024-02-28T23:59Z'))).toBe(true);
    expect(isOpenAt(s, at('2024-02-29T00:00Z'))).toBe(false);
    expect(isOpenAt(s, at('2024-03-01T00:00Z'))).toBe(true);
  });

  it('reports overlap from Sunday night into Monday', () => {
    expect(
      validateSchedule({
        timeZone: 'UTC',
        weekly: { sun: [{ from: '20:00', to: '08:00' }], mon: [{ from: '07:00', to: '09:00' }] },
      }),
    ).toEqual(['weekly.sun[0] (20:00 to 08:00) runs past midnight into weekly.mon[0] (07:00 to 09:00)']);
  });

  it('rejects unknown and missing time zones', () => {
    expect(validateSchedule({ timeZone: 'Mars/Olympus_Mons' })).toEqual([
      'timeZone: "Mars/Olympus_Mons" is not a known IANA time zone (for example "Europe/Oslo")',
    ]);
    expect(validateSchedule({} as Schedule)).toEqual(['timeZone: must be an IANA time zone name such as "Europe/Oslo", got nothing']);
  });

  it('rejects shapes that are not objects or lists', () => {
    expect(validateSchedule(null as unknown as Schedule)).toHaveLength(1);
    expect(validateSchedule({ timeZone: 'UTC', weekly: [] as unknown as WeeklyHours, closedDates: '2025-12-25' as unknown as string[] })).toEqual([
      'weekly: must be an object keyed by weekday (mon, tue, wed, thu, fri, sat, sun), or null for open around the clock',
      'closedDates: must be a list of "YYYY-MM-DD" dates, got "2025-12-25"',
    ]);
  });

  it('isOpenAt refuses an invalid schedule with the same sentences', () => {
    expect(() => isOpenAt({ timeZone: 'Europe/Olso' }, new Date())).toThrow(/timeZone: "Europe\/Olso" is not a known IANA time zone/);
    expect(() => nextOpenAt({ timeZone: 'UTC', weekly: { mon: [{ from: '9', to: '17' }] } }, new Date())).toThrow(RangeError);
  });
});
