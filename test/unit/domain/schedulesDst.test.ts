import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  nextFireTime,
  previousFireTime,
  type ScheduleDefinition,
  scheduleIntervalMs,
  toWallClock,
} from '../../../lib/domain/schedules.ts';

/**
 * Named schedules with a time zone fire as EventBridge Scheduler fires them: a wall time
 * that summer time skips does not fire, and a wall time repeated when it ends fires
 * once, at its first occurrence.
 */

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const PROPERTY_RUNS = { numRuns: 150 };

/** Zones with summer time (northern and southern, Lord Howe's half hour) and one without. */
const ZONES = [
  'Europe/Paris',
  'America/New_York',
  'Australia/Sydney',
  'Australia/Lord_Howe',
  'Asia/Kolkata',
] as const;

/** Days on which one of the zones above changes its clocks (2026-2028). */
const CLOCK_CHANGE_DAYS = [
  // Europe/Paris: forward at 02:00, back at 03:00 (last Sundays of March and October).
  '2026-03-29',
  '2026-10-25',
  '2027-03-28',
  '2027-10-31',
  '2028-03-26',
  '2028-10-29',
  // America/New_York: forward at 02:00 (second Sunday of March), back at 02:00 (first of November).
  '2026-03-08',
  '2026-11-01',
  '2027-03-14',
  '2027-11-07',
  '2028-03-12',
  '2028-11-05',
  // Australia/Sydney: back at 03:00 (first Sunday of April), forward at 02:00 (first of
  // October); Australia/Lord_Howe on the same days, by half an hour at 02:00.
  '2026-04-05',
  '2026-10-04',
  '2027-04-04',
  '2027-10-03',
  '2028-04-02',
  '2028-10-01',
].map((day) => Date.parse(`${day}T00:00:00Z`));

/** Any instant (to the millisecond) within a day and a half of a change of clocks. */
const nearAClockChange = fc
  .tuple(
    fc.constantFrom(...CLOCK_CHANGE_DAYS),
    fc.integer({ min: -36 * HOUR_MS, max: 60 * HOUR_MS }),
  )
  .map(([day, offset]) => new Date(day + offset));

/** Daily crons at a wall time: some inside the hours that are skipped or repeated. */
const dailyWallTimes = fc.record({
  minute: fc.constantFrom(0, 15, 30, 45),
  hours: fc.constantFrom([0], [1], [2], [3], [1, 2], [2, 3], [1, 2, 3], [0, 2, 14]),
});

function zoned(cron: string, timezone: string): ScheduleDefinition {
  return { name: 'zoned', cron, timezone, retain: 7 };
}

/**
 * The fires of a daily cron at `minute` past `hours` in a window around `at`, by brute
 * force: every quarter hour's wall time, a fire when it matches the cron and has not
 * shown before (a repeated wall time fires at its first occurrence only).
 */
function firesAround(
  minute: number,
  hours: readonly number[],
  timezone: string,
  at: Date,
): number[] {
  const quarter = 15 * MINUTE_MS;
  const start = Math.floor((at.getTime() - 52 * HOUR_MS) / quarter) * quarter;
  const end = at.getTime() + 52 * HOUR_MS;
  const shown = new Set<number>();
  const fires: number[] = [];
  for (let instant = start; instant <= end; instant += quarter) {
    const wall = toWallClock(new Date(instant), timezone);
    const firstShowing = !shown.has(wall.getTime());
    shown.add(wall.getTime());
    const matches = wall.getUTCMinutes() === minute && hours.includes(wall.getUTCHours());
    if (matches && firstShowing && instant >= start + 2 * HOUR_MS) fires.push(instant);
  }
  return fires;
}

describe('Named schedules with a time zone, around a change of clocks', () => {
  it('property: previousFireTime(t) <= t < nextFireTime(t), with no fire between them', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.constantFrom(
          'cron(30 2 * * ? *)',
          'cron(0 2 * * ? *)',
          'cron(15 1 * * ? *)',
          'cron(0 3 * * ? *)',
          'cron(0 * * * ? *)',
          'cron(0/30 1-3 * * ? *)',
          'cron(45 2 ? * SUN *)',
        ),
        nearAClockChange,
        (timezone, cron, at) => {
          const definition = zoned(cron, timezone);
          const previous = previousFireTime(definition, at);
          const next = nextFireTime(definition, at);
          expect(previous.getTime()).toBeLessThanOrEqual(at.getTime());
          expect(next.getTime()).toBeGreaterThan(at.getTime());
          // No fire strictly between: each is the other's neighbour.
          expect(nextFireTime(definition, previous).getTime()).toBe(next.getTime());
          expect(previousFireTime(definition, new Date(next.getTime() - 1)).getTime()).toBe(
            previous.getTime(),
          );
          // A fire time is its own previous fire time.
          expect(previousFireTime(definition, previous).getTime()).toBe(previous.getTime());
        },
      ),
      PROPERTY_RUNS,
    );
  });

  it('property: fire times are strictly increasing, each at a whole minute', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.constantFrom('cron(30 2 * * ? *)', 'cron(0 * * * ? *)', 'cron(0/30 1-3 * * ? *)'),
        nearAClockChange,
        (timezone, cron, at) => {
          const definition = zoned(cron, timezone);
          let fire = previousFireTime(definition, at);
          for (let i = 0; i < 6; i += 1) {
            const following = nextFireTime(definition, fire);
            expect(following.getTime()).toBeGreaterThan(fire.getTime());
            expect(following.getTime() % MINUTE_MS).toBe(0);
            fire = following;
          }
        },
      ),
      PROPERTY_RUNS,
    );
  });

  it('property: a repeated wall time fires once, at its first occurrence; a skipped one never', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        dailyWallTimes,
        nearAClockChange,
        (timezone, { minute, hours }, at) => {
          const definition = zoned(`cron(${minute} ${hours.join(',')} * * ? *)`, timezone);
          const fires = firesAround(minute, hours, timezone, at);
          const expectedPrevious = Math.max(...fires.filter((f) => f <= at.getTime()));
          const expectedNext = Math.min(...fires.filter((f) => f > at.getTime()));
          expect(new Date(previousFireTime(definition, at).getTime()).toISOString()).toBe(
            new Date(expectedPrevious).toISOString(),
          );
          expect(new Date(nextFireTime(definition, at).getTime()).toISOString()).toBe(
            new Date(expectedNext).toISOString(),
          );
        },
      ),
      PROPERTY_RUNS,
    );
  }, 30_000);

  it.each([
    // 2026-10-25, Paris: 02:30 shows at 00:30Z (CEST) and again at 01:30Z (CET).
    ['in the second pass of the repeated hour', '2026-10-25T01:45:00Z', '2026-10-25T00:30:00.000Z'],
    ['at the second occurrence itself', '2026-10-25T01:30:00Z', '2026-10-25T00:30:00.000Z'],
    // 2026-03-29, Paris: 02:30 never shows; the day before's slot stands.
    ['on the day 02:30 is skipped', '2026-03-29T12:00:00Z', '2026-03-28T01:30:00.000Z'],
  ])('previousFireTime of 02:30 Europe/Paris %s', (_label, at, expected) => {
    // Prepare
    const halfPastTwo = zoned('cron(30 2 * * ? *)', 'Europe/Paris');

    // Act
    const previous = previousFireTime(halfPastTwo, new Date(at));

    // Assess
    expect(previous.toISOString()).toBe(expected);
  });

  it.each([
    ['before the first occurrence', '2026-10-25T00:15:00Z', '2026-10-25T00:30:00.000Z'],
    ['between the two occurrences', '2026-10-25T00:45:00Z', '2026-10-26T01:30:00.000Z'],
    ['the day before 02:30 is skipped', '2026-03-28T12:00:00Z', '2026-03-30T00:30:00.000Z'],
  ])('nextFireTime of 02:30 Europe/Paris %s', (_label, after, expected) => {
    // Prepare
    const halfPastTwo = zoned('cron(30 2 * * ? *)', 'Europe/Paris');

    // Act
    const next = nextFireTime(halfPastTwo, new Date(after));

    // Assess
    expect(next.toISOString()).toBe(expected);
  });

  it.each([
    ['an hour after the repeated 02:00', '2026-10-25T01:30:00Z', 2 * HOUR_MS],
    ['across the skipped 02:00', '2026-03-29T01:30:00Z', HOUR_MS],
  ])('scheduleIntervalMs of an hourly Paris cron is the time between fires: %s', (_l, at, ms) => {
    // Prepare: 02:00 shows twice on 2026-10-25 (00:00Z, 01:00Z) and fires once.
    const hourly = zoned('cron(0 * * * ? *)', 'Europe/Paris');

    // Act
    const interval = scheduleIntervalMs(hourly, new Date(at));

    // Assess
    expect(interval).toBe(ms);
  });
});
