import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_RETAIN_DAYS,
  parseRetainDays,
  parseTierCounts,
  retentionRuleFor,
} from '../../../lib/domain/retentionPolicy.ts';
import {
  DEFAULT_SCHEDULES,
  parseScheduleCatalog,
  resolveSchedule,
  type ScheduleDefinition,
} from '../../../lib/domain/schedules.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';

const keys = tagKeys();
const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
const daily = resolveSchedule(catalog, 'daily'); // retain 7
const weekly = resolveSchedule(catalog, 'weekly'); // retain 4
const monthly = resolveSchedule(catalog, 'monthly'); // retain 12
/** A schedule that sets every retention default. */
const nightly: ScheduleDefinition = {
  name: 'nightly',
  cron: 'cron(0 3 * * ? *)',
  timezone: 'Europe/Paris',
  retain: 7,
  retainDays: 14,
  retainTiers: 'weekly=4,monthly=12',
};
const withNightly = parseScheduleCatalog([nightly, ...DEFAULT_SCHEDULES], 'nightly');
const PROPERTY_RUNS = { numRuns: 200 };

describe('Function: parseRetainDays', () => {
  it.each([
    ['14', 14],
    ['0', 0],
    [' 30 ', 30],
    ['007', 7],
    [String(MAX_RETAIN_DAYS), 36_500],
  ])('reads %j as %i days', (value, days) => {
    // Prepare
    const key = keys.retainDays;

    // Act
    const result = parseRetainDays('i-1', key, value);

    // Assess
    expect(result).toEqual({ days, problems: [] });
  });

  it('reads an absent tag as no minimum age, without a problem', () => {
    // Prepare
    const value = undefined;

    // Act
    const result = parseRetainDays('i-1', keys.retainDays, value);

    // Assess
    expect(result).toEqual({ problems: [] });
  });

  it.each(['', '  ', 'abc', '-1', '1.5', '14d', '1e3', '36501', '+3', '1 4'])(
    'reports %j by resource, key and value, and gives no days',
    (value) => {
      // Prepare
      const key = keys.retainDays;

      // Act
      const result = parseRetainDays('i-0abc', key, value);

      // Assess
      expect(result).toEqual({
        problems: [
          {
            resourceId: 'i-0abc',
            key: 'snapkeeper:retain-days',
            value,
            message: `snapkeeper:retain-days=${JSON.stringify(value)} is not a whole number of days from 0 to 36500`,
          },
        ],
      });
    },
  );
});

describe('Function: parseTierCounts', () => {
  it.each([
    ['daily=7,weekly=4,monthly=12,yearly=3', { daily: 7, weekly: 4, monthly: 12, yearly: 3 }],
    ['weekly=4,monthly=12', { weekly: 4, monthly: 12 }],
    ['yearly=3,daily=7', { yearly: 3, daily: 7 }],
    [' Daily = 7 , WEEKLY=4 ', { daily: 7, weekly: 4 }],
    ['MONTHLY=12', { monthly: 12 }],
    ['daily=1', { daily: 1 }],
    ['yearly=1000', { yearly: 1000 }],
  ])('reads %j as %j', (value, tiers) => {
    // Prepare
    const key = keys.retainTiers;

    // Act
    const result = parseTierCounts('i-1', key, value);

    // Assess
    expect(result).toEqual({ tiers, problems: [] });
  });

  it('reads an absent tag as no tiers, without a problem', () => {
    // Prepare
    const value = undefined;

    // Act
    const result = parseTierCounts('i-1', keys.retainTiers, value);

    // Assess
    expect(result).toEqual({ problems: [] });
  });

  it.each([
    ['', 'is empty; expected tiers such as daily=7,weekly=4'],
    ['   ', 'is empty; expected tiers such as daily=7,weekly=4'],
    ['hourly=24', '"hourly" is not a tier; tiers: daily, weekly, monthly, yearly'],
    ['daily=7,Fortnightly=2', '"fortnightly" is not a tier; tiers: daily, weekly, monthly, yearly'],
    ['daily=0', 'daily: "0" is not a whole number from 1 to 1000'],
    ['weekly=1001', 'weekly: "1001" is not a whole number from 1 to 1000'],
    ['daily=-1', 'daily: "-1" is not a whole number from 1 to 1000'],
    ['daily=seven', 'daily: "seven" is not a whole number from 1 to 1000'],
    ['daily=', 'daily: "" is not a whole number from 1 to 1000'],
    ['daily=7,daily=7', 'daily is given twice'],
    ['daily=7, DAILY=3', 'daily is given twice'],
    ['daily', 'entry "daily" is not tier=count'],
    ['daily=7=8', 'entry "daily=7=8" is not tier=count'],
    ['daily=7,', 'entry "" is not tier=count'],
    ['daily=7,,weekly=4', 'entry "" is not tier=count'],
  ])('reports %j: %s', (value, reason) => {
    // Prepare
    const key = keys.retainTiers;

    // Act
    const result = parseTierCounts('i-0abc', key, value);

    // Assess
    expect(result).toEqual({
      problems: [
        {
          resourceId: 'i-0abc',
          key: 'snapkeeper:retain-tiers',
          value,
          message: `snapkeeper:retain-tiers=${JSON.stringify(value)} ${reason}`,
        },
      ],
    });
  });

  it('either reads tiers of 1 to 1000 or reports exactly one problem, never both', () => {
    // Prepare
    const entry = fc
      .tuple(
        fc.oneof(fc.constantFrom('daily', 'weekly', 'monthly', 'yearly', 'Daily'), fc.string()),
        fc.oneof(fc.integer({ min: -2, max: 1002 }).map(String), fc.string({ maxLength: 3 })),
      )
      .map(([name, count]) => `${name}=${count}`);
    const value = fc.oneof(
      fc.string(),
      fc.array(entry, { maxLength: 5 }).map((entries) => entries.join(',')),
    );

    // Act & Assess
    fc.assert(
      fc.property(value, (text) => {
        const result = parseTierCounts('i-1', keys.retainTiers, text);
        if (result.tiers === undefined) {
          expect(result.problems).toHaveLength(1);
          expect(result.problems[0]?.value).toBe(text);
        } else {
          expect(result.problems).toEqual([]);
          for (const [name, count] of Object.entries(result.tiers)) {
            expect(['daily', 'weekly', 'monthly', 'yearly']).toContain(name);
            expect(count).toBeGreaterThanOrEqual(1);
            expect(count).toBeLessThanOrEqual(1000);
          }
        }
      }),
      PROPERTY_RUNS,
    );
  });
});

describe('Function: retentionRuleFor', () => {
  it.each([
    ['daily', daily, { count: 7 }],
    ['weekly', weekly, { count: 4 }],
    ['monthly', monthly, { count: 12 }],
  ])("uses the %s schedule's count when the instance sets none", (_name, schedule, rule) => {
    // Prepare
    const tags = { 'snapkeeper:backup': 'daily,weekly,monthly' };

    // Act
    const result = retentionRuleFor(schedule, tags, 'i-1', keys, catalog);

    // Assess
    expect(result).toEqual({ rule, problems: [] });
  });

  it("uses the schedule's defaults for count, age and tiers when there are no tags at all", () => {
    // Prepare
    const tags = undefined;

    // Act
    const result = retentionRuleFor(nightly, tags, 'vol-1', keys, withNightly);

    // Assess
    expect(result).toEqual({
      rule: { count: 7, minAgeDays: 14, tiers: { weekly: 4, monthly: 12 } },
      problems: [],
    });
  });

  it.each([
    ['daily', daily, 14],
    ['weekly', weekly, 8],
    ['monthly', monthly, 12],
  ])('reads retain=daily=14,weekly=8 per schedule: %s keeps %i', (_name, schedule, count) => {
    // Prepare
    const tags = { 'snapkeeper:retain': 'daily=14,weekly=8' };

    // Act
    const result = retentionRuleFor(schedule, tags, 'i-1', keys, catalog);

    // Assess
    expect(result).toEqual({ rule: { count }, problems: [] });
  });

  it.each([
    ['daily', daily],
    ['weekly', weekly],
    ['monthly', monthly],
  ])('reads retain=7 as 7 for every schedule: %s', (_name, schedule) => {
    // Prepare
    const tags = { 'snapkeeper:retain': '7' };

    // Act
    const result = retentionRuleFor(schedule, tags, 'i-1', keys, catalog);

    // Assess
    expect(result).toEqual({ rule: { count: 7 }, problems: [] });
  });

  it("lets every instance tag override the schedule's defaults", () => {
    // Prepare
    const tags = {
      'snapkeeper:retain': '30',
      'snapkeeper:retain-days': '0',
      'snapkeeper:retain-tiers': 'yearly=3',
    };

    // Act
    const result = retentionRuleFor(nightly, tags, 'i-1', keys, withNightly);

    // Assess: the tiers tag replaces the default tiers as a whole
    expect(result).toEqual({
      rule: { count: 30, minAgeDays: 0, tiers: { yearly: 3 } },
      problems: [],
    });
  });

  it('reads the retention tags of a deployment with its own prefix', () => {
    // Prepare
    const acme = tagKeys('acme:');
    const tags = {
      'acme:retain': 'daily=3',
      'acme:retain-days': '5',
      'acme:retain-tiers': 'monthly=2',
      'snapkeeper:retain': 'daily=99',
    };

    // Act
    const result = retentionRuleFor(daily, tags, 'i-1', acme, catalog);

    // Assess
    expect(result).toEqual({
      rule: { count: 3, minAgeDays: 5, tiers: { monthly: 2 } },
      problems: [],
    });
  });

  it('reads the count from another key when asked, such as one for images', () => {
    // Prepare
    const tags = { 'snapkeeper:retain': '7', 'snapkeeper:retain-images': '2' };

    // Act
    const result = retentionRuleFor(daily, tags, 'i-1', keys, catalog, 'snapkeeper:retain-images');

    // Assess
    expect(result).toEqual({ rule: { count: 2 }, problems: [] });
  });

  it.each([
    ['snapkeeper:retain', 'seven'],
    ['snapkeeper:retain', '0'],
    ['snapkeeper:retain', '1001'],
    ['snapkeeper:retain', ''],
    ['snapkeeper:retain', 'daily=7,dialy=3'],
    ['snapkeeper:retain', 'hourly=24'],
    ['snapkeeper:retain-days', 'two weeks'],
    ['snapkeeper:retain-days', '-1'],
    ['snapkeeper:retain-tiers', 'daily=7,hourly=24'],
    ['snapkeeper:retain-tiers', 'weekly=0'],
    ['snapkeeper:retain-tiers', ''],
  ])('gives no rule when %s=%j is malformed, only a problem naming key and value', (key, value) => {
    // Prepare
    const tags = { 'snapkeeper:retain': '7', 'snapkeeper:retain-days': '14', [key]: value };

    // Act
    const result = retentionRuleFor(daily, tags, 'i-0abc', keys, catalog);

    // Assess
    expect(result.rule).toBeUndefined();
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toMatchObject({ resourceId: 'i-0abc', key, value });
    expect(result.problems[0]?.message.startsWith(`${key}=${JSON.stringify(value)} `)).toBe(true);
  });

  it('reports every malformed retention tag at once', () => {
    // Prepare
    const tags = {
      'snapkeeper:retain': 'seven',
      'snapkeeper:retain-days': 'abc',
      'snapkeeper:retain-tiers': 'hourly=24',
    };

    // Act
    const result = retentionRuleFor(daily, tags, 'i-0abc', keys, catalog);

    // Assess
    expect(result.rule).toBeUndefined();
    expect(result.problems.map((problem) => [problem.key, problem.value])).toEqual([
      ['snapkeeper:retain', 'seven'],
      ['snapkeeper:retain-days', 'abc'],
      ['snapkeeper:retain-tiers', 'hourly=24'],
    ]);
  });

  it("gives no rule when the schedule's own default tiers are malformed, naming the schedule", () => {
    // Prepare
    const broken: ScheduleDefinition = { ...nightly, retainTiers: 'weekly=four' };

    // Act
    const result = retentionRuleFor(broken, {}, 'vol-1', keys, withNightly);

    // Assess
    expect(result).toEqual({
      problems: [
        {
          resourceId: 'schedule nightly',
          key: 'retainTiers',
          value: 'weekly=four',
          message: 'retainTiers="weekly=four" weekly: "four" is not a whole number from 1 to 1000',
        },
      ],
    });
  });

  it('never undercuts a count of 1 and never returns both a rule and problems', () => {
    // Prepare
    const value = fc.option(
      fc.oneof(fc.string({ maxLength: 12 }), fc.integer({ min: -5, max: 1200 }).map(String)),
      { nil: undefined },
    );
    const tags = fc
      .record({ retain: value, days: value, tiers: value })
      .map(({ retain, days, tiers }) => ({
        ...(retain !== undefined ? { 'snapkeeper:retain': retain } : {}),
        ...(days !== undefined ? { 'snapkeeper:retain-days': days } : {}),
        ...(tiers !== undefined ? { 'snapkeeper:retain-tiers': tiers } : {}),
      }));

    // Act & Assess
    fc.assert(
      fc.property(tags, fc.constantFrom(daily, weekly, monthly), (instanceTags, schedule) => {
        const result = retentionRuleFor(schedule, instanceTags, 'i-1', keys, catalog);
        if (result.rule === undefined) {
          expect(result.problems.length).toBeGreaterThan(0);
        } else {
          expect(result.problems).toEqual([]);
          expect(result.rule.count).toBeGreaterThanOrEqual(1);
          expect(result.rule.count).toBeLessThanOrEqual(1000);
        }
      }),
      PROPERTY_RUNS,
    );
  });
});
