import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import { parseRetainCounts, readInstancePolicy } from '../../../lib/domain/tagPolicy.ts';
import {
  DEFAULT_TAG_SCHEDULE_LIMITS,
  dueSlot,
  type ExpressionDemand,
  parseTagExpression,
  planDispatch,
  readBackupTagEntries,
  splitScheduleList,
  type TagExpression,
  tagFireAfter,
  tagFireAtOrBefore,
  tagScheduleDefinition,
} from '../../../lib/domain/tagSchedules.ts';

const HOUR_MS = 3_600_000;
const NOW = new Date('2026-11-23T10:00:00Z');
const limits = DEFAULT_TAG_SCHEDULE_LIMITS;
const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
const keys = tagKeys();

function expression(text: string): TagExpression {
  const parsed = parseTagExpression(text, limits, NOW);
  if (typeof parsed === 'string') throw new Error(`${text}: ${parsed}`);
  return parsed;
}

describe('Module: tagSchedules', () => {
  describe('Function: splitScheduleList', () => {
    it('splits at commas outside parentheses, so a cron keeps its own commas', () => {
      expect(splitScheduleList('daily, cron(0 3,15 * * ? *)@Europe/Paris,rate(6 hours)')).toEqual([
        'daily',
        'cron(0 3,15 * * ? *)@Europe/Paris',
        'rate(6 hours)',
      ]);
    });

    it('reads a plain list of names as the comma split always did', () => {
      expect(splitScheduleList('daily,weekly, ,monthly')).toEqual([
        'daily',
        'weekly',
        '',
        'monthly',
      ]);
    });

    it('keeps an unclosed parenthesis and the rest as one entry, to be reported', () => {
      expect(splitScheduleList('cron(0 3,15 * * ? *, daily')).toEqual([
        'cron(0 3,15 * * ? *, daily',
      ]);
    });
  });

  describe('Function: parseTagExpression', () => {
    it.each([
      ['rate(6 hours)', 'rate(6 hours)', 6 * HOUR_MS],
      ['RATE( 1 day )', 'rate(1 day)', 24 * HOUR_MS],
      ['rate(90 minutes)', 'rate(90 minutes)', 90 * 60_000],
    ])('reads %s as %s', (text, canonical, everyMs) => {
      expect(expression(text)).toMatchObject({ expression: canonical, kind: 'rate', everyMs });
    });

    it('writes a cron canonically: upper case, single spaces, the zone as IANA names it, no @UTC', () => {
      expect(expression('cron(0  3 ? * mon-fri *)@europe/paris')).toMatchObject({
        expression: 'cron(0 3 ? * MON-FRI *)@Europe/Paris',
        cron: 'cron(0 3 ? * MON-FRI *)',
        timezone: 'Europe/Paris',
      });
      expect(expression('cron(0 3 * * ? *)@UTC').expression).toBe('cron(0 3 * * ? *)');
    });

    it.each([
      ['rate(5 minutes)', /fires every 5 min, more often than the minimum interval of 60 min/],
      ['cron(0,30 3 * * ? *)', /fires every 30 min/],
      ['cron(0/10 * * * ? *)', /fires every 10 min/],
      ['rate(1 hours)', /write rate\(1 hour\)/],
      ['rate(2 hour)', /write rate\(2 hours\)/],
      ['rate(6 weeks)', /unit is minute\(s\), hour\(s\) or day\(s\)/],
      ['rate(0 hours)', /whole number from 1 to 3650/],
      ['rate(six hours)', /not a rate expression/],
      ['rate(6 hours)@Europe/Paris', /takes none/],
      ['cron(0 3 * * * *)', /"\?" in exactly one of day-of-month and day-of-week/],
      ['cron(0 3 ? * ? *)', /"\?" in exactly one/],
      ['cron(0 3 * * ?)', /has 5 cron fields; AWS cron has 6/],
      ['cron(0 25 * * ? *)', /not a valid cron/],
      ['cron(0 3 * * ? 2020)', /never fires after 2026-11-23/],
      ['cron(0 3 * * ? *)@Mars/Base', /not an IANA time zone/],
      ['cron(0 3 * * ? *)@', /not an IANA time zone/],
      ['cron 0 3 * * ? *', /not a cron expression/],
    ])('refuses %s with the reason and the fix', (text, reason) => {
      const parsed = parseTagExpression(text, limits, NOW);
      expect(typeof parsed).toBe('string');
      expect(parsed).toMatch(reason);
    });

    it('holds expressions to a minimum interval the deployment sets', () => {
      const sixHours = { minIntervalMs: 6 * HOUR_MS };
      expect(typeof parseTagExpression('rate(6 hours)', sixHours, NOW)).toBe('object');
      expect(parseTagExpression('rate(5 hours)', sixHours, NOW)).toMatch(
        /minimum interval of 360 min/,
      );
      expect(parseTagExpression('cron(0 0/4 * * ? *)', sixHours, NOW)).toMatch(/every 240 min/);
    });
  });

  describe('Function: dueSlot', () => {
    const rate6h = tagScheduleDefinition(expression('rate(6 hours)'), 7);

    it('serves the newest fire at or before the dispatch: a rate is anchored at 00:00 UTC', () => {
      expect(dueSlot(rate6h, new Date('2026-11-23T13:15:00Z'))).toBe('2026-11-23T12:00:00Z');
      expect(dueSlot(rate6h, new Date('2026-11-23T12:00:00Z'))).toBe('2026-11-23T12:00:00Z');
    });

    it('gives a late or repeated dispatch the same slot, and missed dispatches the newest only', () => {
      const slots = ['12:00', '12:15', '13:30', '17:45'].map((t) =>
        dueSlot(rate6h, new Date(`2026-11-23T${t}:00Z`)),
      );
      expect(new Set(slots)).toEqual(new Set(['2026-11-23T12:00:00Z']));
      expect(dueSlot(rate6h, new Date('2026-11-24T05:59:00Z'))).toBe('2026-11-24T00:00:00Z');
    });

    it('reads a cron in its own time zone', () => {
      const paris = tagScheduleDefinition(expression('cron(0 3 * * ? *)@Europe/Paris'), 7);
      expect(dueSlot(paris, new Date('2026-07-01T12:00:00Z'))).toBe('2026-07-01T01:00:00Z');
      expect(dueSlot(paris, new Date('2026-12-01T12:00:00Z'))).toBe('2026-12-01T02:00:00Z');
    });

    it('skips a wall time that summer time skips, and fires a repeated one once, as EventBridge Scheduler does', () => {
      const night = tagScheduleDefinition(expression('cron(30 2 * * ? *)@Europe/Paris'), 7);
      // 2027-03-28: 02:30 never shows in Paris; the slot stays the day before's.
      expect(dueSlot(night, new Date('2027-03-28T12:00:00Z'))).toBe('2027-03-27T01:30:00Z');
      expect(tagFireAfter(night, new Date('2027-03-27T01:30:00Z')).toISOString()).toBe(
        '2027-03-29T00:30:00.000Z',
      );
      // 2027-10-31: 02:30 shows twice (00:30Z and 01:30Z); only the first is a slot.
      for (const at of ['00:30', '01:00', '01:30', '02:45']) {
        expect(dueSlot(night, new Date(`2027-10-31T${at}:00Z`))).toBe('2027-10-31T00:30:00Z');
      }
      expect(tagFireAfter(night, new Date('2027-10-30T00:30:00Z')).toISOString()).toBe(
        '2027-10-31T00:30:00.000Z',
      );
      expect(tagFireAfter(night, new Date('2027-10-31T00:30:00Z')).toISOString()).toBe(
        '2027-11-01T01:30:00.000Z',
      );
    });

    const dispatchTimes = fc
      .integer({ min: Date.UTC(2026, 0, 1) / 900_000, max: Date.UTC(2030, 0, 1) / 900_000 })
      .map((quarter) => new Date(quarter * 900_000));
    const texts = fc.constantFrom(
      'rate(6 hours)',
      'rate(1 hour)',
      'rate(7 hours)',
      'rate(2 days)',
      'cron(0 3 * * ? *)@Europe/Paris',
      'cron(30 2 * * ? *)@Europe/Paris',
      'cron(0 0/2 * * ? *)@Europe/Paris',
      'cron(15 1 ? * SUN *)@America/New_York',
      'cron(0 4 L * ? *)',
    );

    it('property: the next fire is after the slot, and no slot is served twice over a day of dispatches', () => {
      fc.assert(
        fc.property(texts, dispatchTimes, (text, start) => {
          const definition = tagScheduleDefinition(expression(text), 7);
          let previous: string | undefined;
          const served: string[] = [];
          for (let i = 0; i < 96; i += 1) {
            const at = new Date(start.getTime() + i * 900_000);
            const slot = dueSlot(definition, at);
            expect(Date.parse(slot)).toBeLessThanOrEqual(at.getTime());
            expect(tagFireAfter(definition, new Date(slot)).getTime()).toBeGreaterThan(
              Date.parse(slot),
            );
            expect(tagFireAfter(definition, new Date(slot)).getTime()).toBeGreaterThan(
              at.getTime(),
            );
            if (slot !== previous) {
              expect(served).not.toContain(slot);
              if (previous) expect(Date.parse(slot)).toBeGreaterThan(Date.parse(previous));
              served.push(slot);
            }
            previous = slot;
          }
        }),
        { numRuns: 60 },
      );
    }, 30_000);

    it('property: fires of a zoned cron across the DST transitions of Europe/Paris are strictly increasing and at the written wall time', () => {
      const nightly = tagScheduleDefinition(expression('cron(0 3 * * ? *)@Europe/Paris'), 7);
      const around = fc.constantFrom(
        Date.UTC(2026, 2, 27),
        Date.UTC(2026, 9, 23),
        Date.UTC(2027, 2, 26),
        Date.UTC(2027, 9, 29),
      );
      fc.assert(
        fc.property(around, fc.integer({ min: 0, max: 3 * 24 * 4 }), (day, quarter) => {
          const at = new Date(day + quarter * 900_000);
          const previous = tagFireAtOrBefore(nightly, at);
          const next = tagFireAfter(nightly, previous);
          expect(next.getTime()).toBeGreaterThan(previous.getTime());
          // 03:00 in Paris: 01:00Z in summer, 02:00Z in winter; never a doubled slot.
          expect([1, 2]).toContain(previous.getUTCHours());
          expect(next.getTime() - previous.getTime()).toBeGreaterThanOrEqual(23 * HOUR_MS);
          expect(next.getTime() - previous.getTime()).toBeLessThanOrEqual(25 * HOUR_MS);
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('Function: planDispatch', () => {
    const demand = (instanceId: string, text: string): ExpressionDemand => ({
      instanceId,
      expression: expression(text),
    });

    it('groups instances by expression, each with its due slot', () => {
      const plan = planDispatch(
        [
          demand('i-1', 'rate(6 hours)'),
          demand('i-2', 'rate(6 hours)'),
          demand('i-3', 'cron(0 3 * * ? *)'),
        ],
        new Date('2026-11-23T12:15:00Z'),
        limits,
      );
      expect(plan.groups.map((g) => [g.definition.name, g.slot, g.instanceIds])).toEqual([
        ['rate(6 hours)', '2026-11-23T12:00:00Z', ['i-1', 'i-2']],
        ['cron(0 3 * * ? *)', '2026-11-23T03:00:00Z', ['i-3']],
      ]);
      expect(plan.overCap).toEqual([]);
    });

    it('serves at most maxExpressions distinct expressions, the most used first, and returns the rest', () => {
      const plan = planDispatch(
        [
          demand('i-1', 'rate(7 hours)'),
          demand('i-2', 'rate(6 hours)'),
          demand('i-3', 'rate(6 hours)'),
        ],
        NOW,
        { ...limits, maxExpressions: 1 },
      );
      expect(plan.groups.map((g) => g.definition.name)).toEqual(['rate(6 hours)']);
      expect(plan.overCap).toEqual([{ expression: 'rate(7 hours)', instanceIds: ['i-1'] }]);
    });

    it('gives each group the retention default of the limits, marked as from a tag', () => {
      const [group] = planDispatch([demand('i-1', 'rate(6 hours)')], NOW, {
        ...limits,
        retain: 3,
      }).groups;
      expect(group?.definition).toMatchObject({ retain: 3, fromTag: true, everyMs: 6 * HOUR_MS });
    });
  });

  describe('Function: readBackupTagEntries and the opt-in tag', () => {
    it('keeps named schedules and expressions apart, and reports a bad expression without losing the rest', () => {
      const entries = readBackupTagEntries(
        'i-1',
        'snapkeeper:backup',
        'daily, rate(5 minutes), cron(0 3,15 * * ? *)',
        limits,
        NOW,
      );
      expect(entries.names).toBe('daily');
      expect(entries.expressions.map((e) => e.expression)).toEqual(['cron(0 3,15 * * ? *)']);
      expect(entries.problems).toHaveLength(1);
      expect(entries.problems[0]?.message).toBe(
        'snapkeeper:backup="daily, rate(5 minutes), cron(0 3,15 * * ? *)": "rate(5 minutes)" is a schedule expression that fires every 5 min, more often than the minimum interval of 60 min (TAG_SCHEDULE_MIN_INTERVAL_MINUTES); write a longer interval, such as rate(1 hour)',
      );
    });

    it('reads the policy of an instance with a named schedule and an expression', () => {
      const policy = readInstancePolicy(
        'i-1',
        { 'snapkeeper:backup': 'weekly,rate(6 hours),rate(6 hours)' },
        keys,
        catalog,
      );
      expect(policy.schedules).toEqual(['weekly']);
      expect(policy.expressions).toEqual(['rate(6 hours)']);
      expect(policy.problems).toEqual([]);
    });

    it('reads a value without an expression exactly as before', () => {
      const policy = readInstancePolicy(
        'i-1',
        { 'snapkeeper:backup': 'Daily, dialy' },
        keys,
        catalog,
      );
      expect(policy.schedules).toEqual(['daily']);
      expect(policy.expressions).toBeUndefined();
      expect(policy.problems[0]?.message).toMatch(/"dialy" is not a known schedule/);
    });

    it('uses the minimum interval the catalog carries', () => {
      const strict = { ...catalog, tagSchedules: { ...limits, minIntervalMs: 12 * HOUR_MS } };
      const policy = readInstancePolicy(
        'i-1',
        { 'snapkeeper:backup': 'rate(6 hours)' },
        keys,
        strict,
      );
      expect(policy.expressions).toBeUndefined();
      expect(policy.problems[0]?.message).toMatch(/minimum interval of 720 min/);
    });

    it("accepts tag=N in snapkeeper:retain as the count of the instance's expressions", () => {
      expect(
        parseRetainCounts('i-1', 'snapkeeper:retain', 'daily=7,tag=12', catalog).retain,
      ).toEqual({
        bySchedule: { daily: 7, tag: 12 },
      });
    });
  });
});
