import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  InvalidEventError,
  InvalidScheduleDefinitionError,
  SnapkeeperError,
  UnknownScheduleError,
} from '../../../lib/domain/errors.ts';
import {
  DEFAULT_SCHEDULES,
  deliveredSlot,
  fromWallClock,
  jobTimetable,
  nextFireTime,
  parseScheduleCatalog,
  previousFireTime,
  RESERVED_SCHEDULE_NAMES,
  resolveSchedule,
  SCHEDULED_TIME_SKEW_MS,
  type ScheduleDefinition,
  scheduleIntervalMs,
  toWallClock,
} from '../../../lib/domain/schedules.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const PROPERTY_RUNS = { numRuns: 200 };

const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
const daily = resolveSchedule(catalog, 'daily');
const weekly = resolveSchedule(catalog, 'weekly');
const monthly = resolveSchedule(catalog, 'monthly');
const parisNightly: ScheduleDefinition = {
  name: 'nightly',
  cron: 'cron(0 3 * * ? *)',
  timezone: 'Europe/Paris',
  retain: 7,
};

function schedule(overrides: Record<string, unknown>): Record<string, unknown> {
  return { name: 'nightly', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 7, ...overrides };
}

function iso(text: string): Date {
  return new Date(text);
}

function definitionError(input: unknown, defaultSchedule?: string): Error {
  try {
    parseScheduleCatalog(input, defaultSchedule);
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected parseScheduleCatalog to throw');
}

describe('Constant: DEFAULT_SCHEDULES', () => {
  it.each([
    ['daily', 'cron(0 3 * * ? *)', 7],
    ['weekly', 'cron(0 4 ? * SUN *)', 4],
    ['monthly', 'cron(0 5 1 * ? *)', 12],
  ])('ships %s as %s in UTC keeping %i', (name, cron, retain) => {
    // Prepare
    const shipped = DEFAULT_SCHEDULES;

    // Act
    const definition = shipped.find((s) => s.name === name);

    // Assess
    expect(definition).toEqual({ name, cron, timezone: 'UTC', retain });
  });

  it.each([
    ['daily at 03:00 UTC', daily, '2026-11-24T03:00:00.000Z'],
    ['weekly on Sunday at 04:00 UTC', weekly, '2026-11-29T04:00:00.000Z'],
    ['monthly on the 1st at 05:00 UTC', monthly, '2026-12-01T05:00:00.000Z'],
  ])('fires %s', (_label, definition, expected) => {
    // Prepare
    const mondayMorning = iso('2026-11-23T10:00:00Z');

    // Act
    const next = nextFireTime(definition, mondayMorning);

    // Assess
    expect(next.toISOString()).toBe(expected);
  });

  it('fires the weekly schedule on a Sunday', () => {
    // Prepare
    const from = iso('2026-01-01T00:00:00Z');

    // Act
    const next = nextFireTime(weekly, from);

    // Assess
    expect(next.getUTCDay()).toBe(0);
    expect(next.getUTCHours()).toBe(4);
  });
});

describe('Function: parseScheduleCatalog', () => {
  it('builds the catalog of the default schedules with daily as the default', () => {
    // Prepare
    const input = DEFAULT_SCHEDULES;

    // Act
    const result = parseScheduleCatalog(input, 'daily');

    // Assess
    expect([...result.schedules.keys()]).toEqual(['daily', 'weekly', 'monthly']);
    expect(result.defaultSchedule).toBe('daily');
    expect(result.schedules.get('weekly')?.retain).toBe(4);
  });

  it('uses daily as the default schedule when none is given', () => {
    // Prepare
    const input = DEFAULT_SCHEDULES;

    // Act
    const result = parseScheduleCatalog(input);

    // Assess
    expect(result.defaultSchedule).toBe('daily');
  });

  it('normalises schedule names and the default name to trimmed lower case', () => {
    // Prepare
    const input = [schedule({ name: ' Hourly ', cron: 'cron(0 * * * ? *)' })];

    // Act
    const result = parseScheduleCatalog(input, ' HOURLY ');

    // Assess
    expect([...result.schedules.keys()]).toEqual(['hourly']);
    expect(result.schedules.get('hourly')?.name).toBe('hourly');
    expect(result.defaultSchedule).toBe('hourly');
  });

  it('evaluates a schedule in UTC when it names no time zone', () => {
    // Prepare
    const input = [{ name: 'nightly', cron: 'cron(0 3 * * ? *)', retain: 7 }];

    // Act
    const result = parseScheduleCatalog(input, 'nightly');

    // Assess
    expect(result.schedules.get('nightly')?.timezone).toBe('UTC');
  });

  it('keeps the optional retention settings and leaves absent ones out', () => {
    // Prepare
    const input = [
      schedule({ retainDays: 30, retainTiers: 'daily=7,weekly=4', expireOrphansAfterDays: 90 }),
      schedule({ name: 'plain' }),
    ];

    // Act
    const result = parseScheduleCatalog(input, 'nightly');

    // Assess
    expect(result.schedules.get('nightly')).toEqual({
      name: 'nightly',
      cron: 'cron(0 3 * * ? *)',
      timezone: 'UTC',
      retain: 7,
      retainDays: 30,
      retainTiers: 'daily=7,weekly=4',
      expireOrphansAfterDays: 90,
    });
    expect(Object.keys(result.schedules.get('plain') ?? {})).toEqual([
      'name',
      'cron',
      'timezone',
      'retain',
    ]);
  });

  it.each([
    ['weekdays', 'cron(0 3 ? * MON-FRI *)'],
    ['the last day of the month', 'cron(0 4 L * ? *)'],
    ['every 15 minutes', 'cron(0/15 * * * ? *)'],
    ['the first Monday of the month', 'cron(0 5 ? * 2#1 *)'],
    ['a list of hours', 'cron(0 6,18 * * ? *)'],
    ['a bounded year range', 'cron(0 3 * * ? 2020-2199)'],
  ])('accepts an AWS cron for %s', (_label, cron) => {
    // Prepare
    const input = [schedule({ cron })];

    // Act
    const result = parseScheduleCatalog(input, 'nightly');

    // Assess
    expect(result.schedules.get('nightly')?.cron).toBe(cron);
  });

  it.each([
    ['an empty list', [], 'schedule definition schedules'],
    ['something that is not a list', { name: 'daily' }, 'schedule definition schedules'],
    ['a name with a space', [schedule({ name: 'night ly' })], 'schedule definition 0.name'],
    ['a name starting with a digit', [schedule({ name: '1st' })], 'schedule definition 0.name'],
    ['a name of 33 characters', [schedule({ name: `n${'x'.repeat(32)}` })], '0.name'],
    ['no cron', [{ name: 'nightly', retain: 7 }], 'schedule definition 0.cron'],
    ['a retention of 0', [schedule({ retain: 0 })], 'schedule definition 0.retain'],
    ['a retention of 1001', [schedule({ retain: 1001 })], 'schedule definition 0.retain'],
    ['a fractional retention', [schedule({ retain: 1.5 })], 'schedule definition 0.retain'],
    ['a retention given as text', [schedule({ retain: '7' })], 'schedule definition 0.retain'],
    ['an unknown field', [schedule({ retention: 7 })], 'schedule definition 0'],
    [
      'a bad second schedule',
      [schedule({}), schedule({ name: 'other', timezone: 7 })],
      'schedule definition 1.timezone',
    ],
  ])('rejects %s, naming where', (_label, input, fragment) => {
    // Prepare
    const defaultSchedule = 'nightly';

    // Act
    const error = definitionError(input, defaultSchedule);

    // Assess
    expect(error).toBeInstanceOf(InvalidScheduleDefinitionError);
    expect(error.message).toContain(fragment);
  });

  it.each(RESERVED_SCHEDULE_NAMES.map((name) => [name]))('rejects the reserved name %s', (name) => {
    // Prepare
    const input = [schedule({ name })];

    // Act
    const error = definitionError(input, name);

    // Assess
    expect(error).toBeInstanceOf(InvalidScheduleDefinitionError);
    expect(error.message).toContain('0.name');
    expect(error.message).toContain('reserved');
  });

  it('rejects a schedule defined twice, whatever the case of its name', () => {
    // Prepare
    const input = [schedule({ name: 'nightly' }), schedule({ name: 'Nightly' })];

    // Act
    const error = definitionError(input, 'nightly');

    // Assess
    expect(error).toBeInstanceOf(InvalidScheduleDefinitionError);
    expect(error.message).toBe('schedule "nightly" is defined twice');
  });

  it.each([
    ['a rate expression', 'rate(1 day)', 'is not an AWS cron expression'],
    ['a bare cron body', '0 3 * * ? *', 'is not an AWS cron expression'],
    ['an empty cron()', 'cron()', 'is not an AWS cron expression'],
    ['five fields', 'cron(0 3 * * ?)', 'has 5 fields; AWS cron has 6'],
    ['seven fields', 'cron(0 0 3 * * ? *)', 'has 7 fields; AWS cron has 6'],
    ['"?" in both day fields', 'cron(0 3 ? * ? *)', 'exactly one of day-of-month and day-of-week'],
    [
      '"?" in neither day field',
      'cron(0 3 * * * *)',
      'exactly one of day-of-month and day-of-week',
    ],
    ['both day fields set', 'cron(0 3 1 * MON *)', 'exactly one of day-of-month and day-of-week'],
    ['minute 70', 'cron(70 3 * * ? *)', 'is not valid'],
    ['hour 24', 'cron(0 24 * * ? *)', 'is not valid'],
    ['a year that is past', 'cron(0 3 * * ? 1999)', 'is not valid'],
  ])('rejects a cron with %s, naming the schedule', (_label, cron, fragment) => {
    // Prepare
    const input = [schedule({ cron })];

    // Act
    const error = definitionError(input, 'nightly');

    // Assess
    expect(error).toBeInstanceOf(InvalidScheduleDefinitionError);
    expect(error.message).toContain(fragment);
    if (cron.startsWith('cron(') && cron !== 'cron()') {
      expect(error.message).toContain('schedule "nightly"');
    }
  });

  it('rejects a time zone that is not an IANA time zone', () => {
    // Prepare
    const input = [schedule({ timezone: 'Mars/Olympus_Mons' })];

    // Act
    const error = definitionError(input, 'nightly');

    // Assess
    expect(error).toBeInstanceOf(InvalidScheduleDefinitionError);
    expect(error.message).toBe('schedule "nightly": "Mars/Olympus_Mons" is not an IANA time zone');
  });

  it('rejects a default schedule that is not defined, listing the defined ones', () => {
    // Prepare
    const input = DEFAULT_SCHEDULES;

    // Act
    const error = definitionError(input, 'yearly');

    // Assess
    expect(error).toBeInstanceOf(InvalidScheduleDefinitionError);
    expect(error).toBeInstanceOf(SnapkeeperError);
    expect(error.message).toBe(
      'default schedule "yearly" is not defined; defined: daily, weekly, monthly',
    );
  });
});

describe('Function: resolveSchedule', () => {
  it.each([
    ['daily', 'daily'],
    ['Daily', 'daily'],
    [' WEEKLY ', 'weekly'],
    ['monthly', 'monthly'],
  ])('finds %j as %s', (name, expected) => {
    // Prepare
    const lookup = name;

    // Act
    const found = resolveSchedule(catalog, lookup);

    // Assess
    expect(found.name).toBe(expected);
    expect(found).toBe(catalog.schedules.get(expected));
  });

  it('rejects an unknown name, listing the known schedules', () => {
    // Prepare
    const lookup = 'yearly';

    // Act
    const act = (): ScheduleDefinition => resolveSchedule(catalog, lookup);

    // Assess
    expect(act).toThrow(UnknownScheduleError);
    expect(act).toThrow('"yearly" is not a known schedule; known: daily, weekly, monthly');
  });

  it('carries the unknown name and the known names on the error', () => {
    // Prepare
    let caught: unknown;

    // Act
    try {
      resolveSchedule(catalog, 'Dialy');
    } catch (error) {
      caught = error;
    }

    // Assess
    expect(caught).toBeInstanceOf(UnknownScheduleError);
    expect(caught).toMatchObject({ schedule: 'Dialy', known: ['daily', 'weekly', 'monthly'] });
  });
});

describe('Function: previousFireTime', () => {
  it.each([
    ['later the same day', daily, '2026-11-23T10:00:00Z', '2026-11-23T03:00:00.000Z'],
    [
      'exactly at the fire time (inclusive)',
      daily,
      '2026-11-23T03:00:00Z',
      '2026-11-23T03:00:00.000Z',
    ],
    ['within the fire minute', daily, '2026-11-23T03:00:59.999Z', '2026-11-23T03:00:00.000Z'],
    ['one second before the fire time', daily, '2026-11-23T02:59:59Z', '2026-11-22T03:00:00.000Z'],
    ['one minute before the fire time', daily, '2026-11-23T02:59:00Z', '2026-11-22T03:00:00.000Z'],
    ['a Monday, for weekly', weekly, '2026-11-23T10:00:00Z', '2026-11-22T04:00:00.000Z'],
    ['a Sunday at 04:00, for weekly', weekly, '2026-11-22T04:00:00Z', '2026-11-22T04:00:00.000Z'],
    ['late in the month, for monthly', monthly, '2026-11-23T10:00:00Z', '2026-11-01T05:00:00.000Z'],
    ['New Year, for monthly', monthly, '2027-01-01T04:59:00Z', '2026-12-01T05:00:00.000Z'],
  ])('finds the slot served %s', (_label, definition, at, expected) => {
    // Prepare
    const when = iso(at);

    // Act
    const previous = previousFireTime(definition, when);

    // Assess
    expect(previous.toISOString()).toBe(expected);
  });

  it('never returns a time after `at`, even within the second before a fire time', () => {
    // Prepare
    const halfASecondEarly = iso('2026-11-23T02:59:59.500Z');

    // Act
    const previous = previousFireTime(daily, halfASecondEarly);

    // Assess
    expect(previous.getTime()).toBeLessThanOrEqual(halfASecondEarly.getTime());
    expect(previous.toISOString()).toBe('2026-11-22T03:00:00.000Z');
  });

  it.each([
    ['in winter (CET)', '2026-11-23T10:00:00Z', '2026-11-23T02:00:00.000Z'],
    ['in summer (CEST)', '2026-07-15T10:00:00Z', '2026-07-15T01:00:00.000Z'],
    ['on the day before summer time', '2026-03-28T12:00:00Z', '2026-03-28T02:00:00.000Z'],
    ['on the day summer time starts', '2026-03-29T12:00:00Z', '2026-03-29T01:00:00.000Z'],
    ['on the day summer time ends', '2026-10-25T12:00:00Z', '2026-10-25T02:00:00.000Z'],
  ])('evaluates 03:00 Europe/Paris in local time %s', (_label, at, expected) => {
    // Prepare
    const when = iso(at);

    // Act
    const previous = previousFireTime(parisNightly, when);

    // Assess
    expect(previous.toISOString()).toBe(expected);
  });

  it('never returns a time after `at` in the hour repeated when summer time ends', () => {
    // Prepare: 02:30 Paris happens at 00:30Z (CEST) and again at 01:30Z (CET) on 2026-10-25.
    const parisHalfPastTwo: ScheduleDefinition = { ...parisNightly, cron: 'cron(30 2 * * ? *)' };
    const betweenTheTwo = iso('2026-10-25T00:45:00Z');

    // Act
    const previous = previousFireTime(parisHalfPastTwo, betweenTheTwo);

    // Assess
    expect(previous.getTime()).toBeLessThanOrEqual(betweenTheTwo.getTime());
    expect(previous.toISOString()).toBe('2026-10-25T00:30:00.000Z');
  });

  it('brackets any whole-second instant between the previous and the next fire time', () => {
    // Prepare: fire times outside the hours that daylight saving time skips or repeats.
    const zones = ['UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata', 'Australia/Sydney'];
    const crons = [
      'cron(0 3 * * ? *)',
      'cron(0 4 ? * SUN *)',
      'cron(0 5 1 * ? *)',
      'cron(0/20 9-17 ? * MON-FRI *)',
    ];
    const start = Date.UTC(2020, 0, 1) / 1000;
    const end = Date.UTC(2035, 0, 1) / 1000;

    // Act & Assess
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.constantFrom(...crons),
        fc.integer({ min: start, max: end }),
        (timezone, cron, seconds) => {
          const definition: ScheduleDefinition = { name: 'p', cron, timezone, retain: 1 };
          const at = new Date(seconds * 1000);
          const previous = previousFireTime(definition, at);
          const next = nextFireTime(definition, at);
          expect(previous.getTime()).toBeLessThanOrEqual(at.getTime());
          expect(next.getTime()).toBeGreaterThan(at.getTime());
          expect(nextFireTime(definition, previous).getTime()).toBe(next.getTime());
          expect(previousFireTime(definition, previous).getTime()).toBe(previous.getTime());
        },
      ),
      PROPERTY_RUNS,
    );
  });

  it('fires at the cron wall-clock time in the schedule time zone', () => {
    // Prepare
    const zones = ['UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata', 'Australia/Sydney'];
    const start = Date.UTC(2020, 0, 1);
    const end = Date.UTC(2035, 0, 1);

    // Act & Assess
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.integer({ min: start, max: end }),
        (timezone, ms) => {
          const definition: ScheduleDefinition = { ...parisNightly, timezone };
          const next = nextFireTime(definition, new Date(ms));
          const wall = toWallClock(next, timezone);
          expect([wall.getUTCHours(), wall.getUTCMinutes(), wall.getUTCSeconds()]).toEqual([
            3, 0, 0,
          ]);
        },
      ),
      PROPERTY_RUNS,
    );
  });
});

describe('Function: nextFireTime', () => {
  it.each([
    ['later the same day', daily, '2026-11-23T10:00:00Z', '2026-11-24T03:00:00.000Z'],
    [
      'exactly at a fire time (strictly after)',
      daily,
      '2026-11-23T03:00:00Z',
      '2026-11-24T03:00:00.000Z',
    ],
    ['just before a fire time', daily, '2026-11-23T02:59:59.999Z', '2026-11-23T03:00:00.000Z'],
    ['a Sunday at 04:00, for weekly', weekly, '2026-11-22T04:00:00Z', '2026-11-29T04:00:00.000Z'],
    [
      'the end of the year, for monthly',
      monthly,
      '2026-12-31T23:00:00Z',
      '2027-01-01T05:00:00.000Z',
    ],
    ['the 1st at 05:00, for monthly', monthly, '2026-11-01T05:00:00Z', '2026-12-01T05:00:00.000Z'],
  ])('finds the next fire time from %s', (_label, definition, after, expected) => {
    // Prepare
    const when = iso(after);

    // Act
    const next = nextFireTime(definition, when);

    // Assess
    expect(next.toISOString()).toBe(expected);
  });

  it.each([
    ['into the day summer time starts', '2026-03-28T12:00:00Z', '2026-03-29T01:00:00.000Z'],
    ['into the day summer time ends', '2026-10-24T12:00:00Z', '2026-10-25T02:00:00.000Z'],
    ['in winter', '2026-11-23T10:00:00Z', '2026-11-24T02:00:00.000Z'],
  ])('evaluates 03:00 Europe/Paris in local time %s', (_label, after, expected) => {
    // Prepare
    const when = iso(after);

    // Act
    const next = nextFireTime(parisNightly, when);

    // Assess
    expect(next.toISOString()).toBe(expected);
  });
});

describe('Function: scheduleIntervalMs', () => {
  it.each([
    ['a day for daily', daily, DAY_MS],
    ['a week for weekly', weekly, 7 * DAY_MS],
    ['30 days for monthly in November', monthly, 30 * DAY_MS],
  ])('is %s', (_label, definition, expected) => {
    // Prepare
    const at = iso('2026-11-23T10:00:00Z');

    // Act
    const interval = scheduleIntervalMs(definition, at);

    // Assess
    expect(interval).toBe(expected);
  });

  it.each([
    ['23 hours when summer time starts', '2026-03-28T12:00:00Z', 23 * HOUR_MS],
    ['25 hours when summer time ends', '2026-10-24T12:00:00Z', 25 * HOUR_MS],
    ['24 hours on an ordinary day', '2026-07-15T12:00:00Z', DAY_MS],
  ])('follows local time in Europe/Paris: %s', (_label, at, expected) => {
    // Prepare
    const when = iso(at);

    // Act
    const interval = scheduleIntervalMs(parisNightly, when);

    // Assess
    expect(interval).toBe(expected);
  });
});

describe('Function: toWallClock', () => {
  it.each([
    ['UTC', '2026-07-15T01:00:00.000Z', '2026-07-15T01:00:00.000Z'],
    ['Europe/Paris', '2026-07-15T01:00:00.000Z', '2026-07-15T03:00:00.000Z'],
    ['Europe/Paris', '2026-11-23T02:00:00.000Z', '2026-11-23T03:00:00.000Z'],
    ['America/New_York', '2026-11-23T02:00:00.250Z', '2026-11-22T21:00:00.250Z'],
    ['Asia/Kolkata', '2026-11-23T00:00:00.000Z', '2026-11-23T05:30:00.000Z'],
  ])('shows the wall-clock time in %s of %s as UTC fields', (timezone, instant, expected) => {
    // Prepare
    const when = iso(instant);

    // Act
    const wall = toWallClock(when, timezone);

    // Assess
    expect(wall.toISOString()).toBe(expected);
  });
});

describe('Function: fromWallClock', () => {
  it.each([
    ['UTC', '2026-07-15T03:00:00.000Z', '2026-07-15T03:00:00.000Z'],
    ['Europe/Paris', '2026-07-15T03:00:00.000Z', '2026-07-15T01:00:00.000Z'],
    ['Europe/Paris', '2026-03-29T03:00:00.000Z', '2026-03-29T01:00:00.000Z'],
    ['Asia/Kolkata', '2026-11-23T05:30:00.000Z', '2026-11-23T00:00:00.000Z'],
  ])('finds the instant at which %s shows %s', (timezone, wall, expected) => {
    // Prepare
    const shown = iso(wall);

    // Act
    const instant = fromWallClock(shown, timezone);

    // Assess
    expect(instant.toISOString()).toBe(expected);
  });

  it('inverts toWallClock outside the hours that daylight saving time skips or repeats', () => {
    // Prepare
    const zones = ['UTC', 'Asia/Kolkata', 'Asia/Tokyo', 'America/Sao_Paulo'];

    // Act & Assess
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2035, 0, 1) }),
        (timezone, ms) => {
          const instant = new Date(ms);
          expect(fromWallClock(toWallClock(instant, timezone), timezone).getTime()).toBe(ms);
        },
      ),
      PROPERTY_RUNS,
    );
  });
});

describe('Function: deliveredSlot', () => {
  const MINUTE_MS = 60_000;
  const slotText = (date: Date) => `${date.toISOString().slice(0, 19)}Z`;
  const rejection = (act: () => unknown): InvalidEventError => {
    try {
      act();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidEventError);
      return error as InvalidEventError;
    }
    throw new Error('expected deliveredSlot to throw');
  };

  describe('given the time Scheduler sends', () => {
    it('serves the fire time itself, and Lambda retries of it at +1 and +3 minutes', () => {
      // Prepare
      const fire = iso('2026-11-23T03:00:00Z');

      // Act & Assess
      for (const delay of [0, 7_000, 1 * MINUTE_MS, 3 * MINUTE_MS, 6 * HOUR_MS]) {
        expect(deliveredSlot(daily, fire, new Date(fire.getTime() + delay))).toBe(
          '2026-11-23T03:00:00Z',
        );
      }
    });

    it('serves the latest fire time when the event carries no scheduledTime (constant input)', () => {
      // Act & Assess
      expect(deliveredSlot(daily, undefined, iso('2026-11-23T10:00:00Z'))).toBe(
        '2026-11-23T03:00:00Z',
      );
    });
  });

  describe('given an off-schedule time', () => {
    it('maps 03:05 for the 03:00 daily to the 03:00 slot, never to a new one', () => {
      // Act & Assess
      expect(deliveredSlot(daily, iso('2026-11-23T03:05:00Z'), iso('2026-11-23T03:06:00Z'))).toBe(
        '2026-11-23T03:00:00Z',
      );
      expect(deliveredSlot(daily, iso('2026-11-23T21:30:00Z'), iso('2026-11-23T21:31:00Z'))).toBe(
        '2026-11-23T03:00:00Z',
      );
    });

    it('maps a time within the clock allowance before a fire time to that fire time', () => {
      // Act & Assess
      expect(deliveredSlot(daily, iso('2026-11-23T02:59:30Z'), iso('2026-11-23T02:59:40Z'))).toBe(
        '2026-11-23T03:00:00Z',
      );
      expect(deliveredSlot(daily, iso('2026-11-23T02:58:00Z'), iso('2026-11-23T02:58:10Z'))).toBe(
        '2026-11-22T03:00:00Z',
      );
    });
  });

  describe('given a time in the future', () => {
    it("rejects tomorrow's slot sent today, naming scheduledTime, how far ahead and the clock", () => {
      // Act
      const error = rejection(() =>
        deliveredSlot(daily, iso('2026-11-24T03:00:00Z'), iso('2026-11-23T06:00:00Z')),
      );

      // Assess
      expect(error.message).toBe(
        'field "scheduledTime": 2026-11-24T03:00:00Z is 21 h ahead of the clock (the clock reads 2026-11-23T06:00:00Z); a slot is served when it comes, at most 60 s early',
      );
    });

    it('accepts a time up to the clock allowance ahead, and rejects one beyond it', () => {
      // Prepare
      const fire = iso('2026-11-23T03:00:00Z');

      // Act & Assess
      expect(deliveredSlot(daily, fire, new Date(fire.getTime() - SCHEDULED_TIME_SKEW_MS))).toBe(
        '2026-11-23T03:00:00Z',
      );
      rejection(() =>
        deliveredSlot(daily, fire, new Date(fire.getTime() - SCHEDULED_TIME_SKEW_MS - 1)),
      );
    });

    it.each([
      ['9999-12-31T23:59:59Z'],
      ['0000-01-01T00:00:00Z'],
      ['1969-12-31T23:59:59Z'],
      ['2200-01-01T00:00:00Z'],
    ])('rejects %s by name: no schedule fires then', (text) => {
      // Act
      const error = rejection(() => deliveredSlot(daily, iso(text), iso('2026-11-23T06:00:00Z')));

      // Assess
      expect(error.message).toMatch(/^field "scheduledTime": /);
      expect(error.message).toContain('1970-2199');
    });
  });

  describe('given a late delivery', () => {
    it('rejects a slot whose next fire time has passed, naming scheduledTime and when the window closed', () => {
      // Act
      const error = rejection(() =>
        deliveredSlot(daily, iso('2026-11-23T03:00:00Z'), iso('2026-11-24T03:00:01Z')),
      );

      // Assess
      expect(error.message).toBe(
        'field "scheduledTime": 2026-11-23T03:00:00Z (slot 2026-11-23T03:00:00Z) is older than its catch-up window, which closed at 2026-11-24T03:00:00Z (the clock reads 2026-11-24T03:00:01Z); a later slot of "daily" has served it',
      );
    });

    it('serves it up to the next fire time of its schedule (one interval: a week for weekly)', () => {
      // Act & Assess
      expect(deliveredSlot(daily, iso('2026-11-23T03:00:00Z'), iso('2026-11-24T03:00:00Z'))).toBe(
        '2026-11-23T03:00:00Z',
      );
      expect(deliveredSlot(weekly, iso('2026-11-22T04:00:00Z'), iso('2026-11-29T03:59:00Z'))).toBe(
        '2026-11-22T04:00:00Z',
      );
    });

    it('serves it longer when the catch-up window is set longer than one interval', () => {
      // Act & Assess
      expect(
        deliveredSlot(daily, iso('2026-11-23T03:00:00Z'), iso('2026-11-25T03:00:00Z'), {
          catchUpMs: 2 * DAY_MS,
        }),
      ).toBe('2026-11-23T03:00:00Z');
      rejection(() =>
        deliveredSlot(daily, iso('2026-11-23T03:00:00Z'), iso('2026-11-25T03:00:01Z'), {
          catchUpMs: 2 * DAY_MS,
        }),
      );
    });

    it('never shortens the window below one interval', () => {
      // Act & Assess
      expect(
        deliveredSlot(daily, iso('2026-11-23T03:00:00Z'), iso('2026-11-23T20:00:00Z'), {
          catchUpMs: HOUR_MS,
        }),
      ).toBe('2026-11-23T03:00:00Z');
    });
  });

  describe('properties', () => {
    const schedules = fc.constantFrom(daily, weekly, monthly, parisNightly);
    const clock = fc.date({
      min: new Date('2001-01-01T00:00:00Z'),
      max: new Date('2098-12-31T00:00:00Z'),
      noInvalidDate: true,
    });

    it('answers a fire time at most the clock allowance ahead, the one the time belongs to, or rejects by name', () => {
      fc.assert(
        fc.property(
          schedules,
          clock,
          fc.integer({ min: -40 * DAY_MS, max: 2 * DAY_MS }),
          (schedule, now, offset) => {
            // Prepare
            const scheduledTime = new Date(now.getTime() + offset);
            let slot: string;

            // Act
            try {
              slot = deliveredSlot(schedule, scheduledTime, now);
            } catch (error) {
              // Assess: a rejection names the field
              expect(error).toBeInstanceOf(InvalidEventError);
              expect((error as Error).message).toMatch(/^field "scheduledTime": /);
              return;
            }

            // Assess: a fire time, not in the future beyond the allowance
            const at = new Date(slot);
            expect(slotText(previousFireTime(schedule, at))).toBe(slot);
            expect(at.getTime() - now.getTime()).toBeLessThanOrEqual(SCHEDULED_TIME_SKEW_MS);
            // the fire time the delivery belongs to: none between it and the time (+ allowance)
            expect(at.getTime()).toBeLessThanOrEqual(
              scheduledTime.getTime() + SCHEDULED_TIME_SKEW_MS,
            );
            expect(nextFireTime(schedule, at).getTime()).toBeGreaterThan(
              scheduledTime.getTime() + SCHEDULED_TIME_SKEW_MS,
            );
            // within its catch-up window
            expect(now.getTime()).toBeLessThanOrEqual(nextFireTime(schedule, at).getTime());
          },
        ),
        PROPERTY_RUNS,
      );
    });

    it('rejects every time more than the clock allowance ahead', () => {
      fc.assert(
        fc.property(
          schedules,
          clock,
          fc.integer({ min: 1, max: 400 * DAY_MS }),
          (schedule, now, ahead) => {
            // Prepare
            const scheduledTime = new Date(now.getTime() + SCHEDULED_TIME_SKEW_MS + ahead);

            // Act & Assess
            expect(() => deliveredSlot(schedule, scheduledTime, now)).toThrow(
              /field "scheduledTime"/,
            );
          },
        ),
        PROPERTY_RUNS,
      );
    });

    it('serves every fire time from its own moment until its next fire time, and nothing after', () => {
      fc.assert(
        fc.property(
          schedules,
          clock,
          fc.double({ min: 0, max: 1, noNaN: true }),
          (schedule, at, share) => {
            // Prepare
            const fire = previousFireTime(schedule, at);
            const next = nextFireTime(schedule, fire);
            const delay = Math.floor((next.getTime() - fire.getTime()) * share);

            // Act & Assess
            expect(deliveredSlot(schedule, fire, new Date(fire.getTime() + delay))).toBe(
              slotText(fire),
            );
            expect(() => deliveredSlot(schedule, fire, new Date(next.getTime() + 1))).toThrow(
              /catch-up window/,
            );
          },
        ),
        PROPERTY_RUNS,
      );
    });

    it('maps every off-schedule time of an interval to the same slot: one set per slot', () => {
      fc.assert(
        fc.property(
          schedules,
          clock,
          fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
          (schedule, at, share) => {
            // Prepare: a time from a fire time up to (not including) the clock allowance before the next one
            const fire = previousFireTime(schedule, at);
            const next = nextFireTime(schedule, fire);
            const span = next.getTime() - fire.getTime() - SCHEDULED_TIME_SKEW_MS;
            const offSchedule = new Date(fire.getTime() + Math.floor(span * share));

            // Act
            const slot = deliveredSlot(
              schedule,
              offSchedule,
              new Date(offSchedule.getTime() + 1_000),
            );

            // Assess
            expect(slot).toBe(slotText(fire));
          },
        ),
        PROPERTY_RUNS,
      );
    });
  });
});

describe('Function: jobTimetable', () => {
  it('runs backups and AMIs on the schedule itself', () => {
    // Act & Assess
    expect(jobTimetable(daily, 'backup')).toBe(daily);
    expect(jobTimetable(daily, 'amis')).toBe(daily);
  });

  it('runs retention an hour after the backup, as the packaged retention schedules do', () => {
    // Act & Assess
    expect(jobTimetable(daily, 'retention').cron).toBe('cron(0 4 * * ? *)');
    expect(jobTimetable(weekly, 'retention').cron).toBe('cron(0 5 ? * SUN *)');
  });

  it('runs retention on retentionCron when the schedule sets one', () => {
    // Act & Assess
    expect(jobTimetable({ ...daily, retentionCron: 'cron(30 1 * * ? *)' }, 'retention').cron).toBe(
      'cron(30 1 * * ? *)',
    );
  });

  it('keeps the schedule itself when its cron cannot be shifted by an hour', () => {
    // Prepare
    const late: ScheduleDefinition = { ...daily, cron: 'cron(0 23 * * ? *)' };

    // Act & Assess
    expect(jobTimetable(late, 'retention').cron).toBe('cron(0 23 * * ? *)');
  });
});
