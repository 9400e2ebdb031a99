import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import {
  MAX_RETAIN_COUNT,
  parseBooleanTag,
  parseRetainCounts,
  parseScheduleList,
  quoteShort,
  readInstancePolicy,
} from '../../../lib/domain/tagPolicy.ts';

const keys = tagKeys();
const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
const withHourly = parseScheduleCatalog(
  [
    { name: 'hourly', cron: 'cron(0 * * * ? *)', timezone: 'UTC', retain: 24 },
    ...DEFAULT_SCHEDULES,
  ],
  'daily',
);
const KNOWN_DEFAULT = 'known: daily, weekly, monthly';
const PROPERTY_RUNS = { numRuns: 200 };

describe('Function: parseScheduleList', () => {
  it.each([
    ['true', ['daily']],
    ['TRUE', ['daily']],
    ['  True ', ['daily']],
    ['daily', ['daily']],
    ['WEEKLY', ['weekly']],
    [' Monthly ', ['monthly']],
    ['daily,weekly', ['daily', 'weekly']],
    ['Daily, weekly,daily', ['daily', 'weekly']],
    [' monthly , DAILY ', ['monthly', 'daily']],
    ['weekly,WEEKLY, Weekly ', ['weekly']],
  ])('opts %j into %j, lower case, deduplicated, in tag order', (value, expected) => {
    // Prepare
    const key = keys.backup;

    // Act
    const result = parseScheduleList('i-1', key, value, catalog);

    // Assess
    expect(result.schedules).toEqual(expected);
    expect(result.problems).toEqual([]);
  });

  it.each([
    ['absent', undefined],
    ['empty', ''],
    ['blank', '   '],
    ['false', 'false'],
    ['FALSE', 'FALSE'],
    ['padded False', ' False '],
  ])('does not opt in when the value is %s, without a problem', (_label, value) => {
    // Prepare
    const key = keys.backup;

    // Act
    const result = parseScheduleList('i-1', key, value, catalog);

    // Assess
    expect(result.schedules).toEqual([]);
    expect(result.problems).toEqual([]);
  });

  it('reads true as the configured default schedule', () => {
    // Prepare
    const weeklyByDefault = parseScheduleCatalog(DEFAULT_SCHEDULES, 'weekly');

    // Act
    const result = parseScheduleList('i-1', keys.backup, 'true', weeklyByDefault);

    // Assess
    expect(result.schedules).toEqual(['weekly']);
    expect(result.problems).toEqual([]);
  });

  it('accepts every schedule the deployment defines, such as hourly,weekly', () => {
    // Prepare
    const value = 'hourly,weekly';

    // Act
    const result = parseScheduleList('i-1', keys.backup, value, withHourly);

    // Assess
    expect(result.schedules).toEqual(['hourly', 'weekly']);
    expect(result.problems).toEqual([]);
  });

  it('rejects a schedule the deployment does not define', () => {
    // Prepare
    const value = 'hourly';

    // Act
    const result = parseScheduleList('i-1', keys.backup, value, catalog);

    // Assess
    expect(result.schedules).toEqual([]);
    expect(result.problems).toHaveLength(1);
  });

  it('reports a misspelt name by key and value with the known schedules', () => {
    // Prepare
    const value = 'dialy';

    // Act
    const result = parseScheduleList('i-0abc', keys.backup, value, catalog);

    // Assess
    expect(result.schedules).toEqual([]);
    expect(result.problems).toEqual([
      {
        resourceId: 'i-0abc',
        key: 'snapkeeper:backup',
        value: 'dialy',
        message: 'snapkeeper:backup="dialy" is not a known schedule; known: daily, weekly, monthly',
      },
    ]);
  });

  it('honours the known names of a list when another entry is bad', () => {
    // Prepare
    const value = 'daily,dialy,weekly';

    // Act
    const result = parseScheduleList('i-1', keys.backup, value, catalog);

    // Assess
    expect(result.schedules).toEqual(['daily', 'weekly']);
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]?.message).toBe(
      `snapkeeper:backup="daily,dialy,weekly": "dialy" is not a known schedule; ${KNOWN_DEFAULT}`,
    );
  });

  it('reports an empty entry in a list and keeps the other names', () => {
    // Prepare
    const value = 'daily,,weekly';

    // Act
    const result = parseScheduleList('i-1', keys.backup, value, catalog);

    // Assess
    expect(result.schedules).toEqual(['daily', 'weekly']);
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]?.message).toContain('empty schedule name');
  });

  it('names the key it was given, so a custom prefix shows in the message', () => {
    // Prepare
    const key = tagKeys('acme:').backup;

    // Act
    const result = parseScheduleList('i-1', key, 'dialy', catalog);

    // Assess
    expect(result.problems[0]?.key).toBe('acme:backup');
    expect(result.problems[0]?.message).toBe(
      `acme:backup="dialy" is not a known schedule; ${KNOWN_DEFAULT}`,
    );
  });

  it('never throws and only returns known, lower-case, unique schedules', () => {
    // Prepare
    const known = [...catalog.schedules.keys()];
    const mangled = fc
      .tuple(
        fc.constantFrom(...known),
        fc.boolean(),
        fc.string({ maxLength: 2, unit: fc.constant(' ') }),
      )
      .map(([name, upper, pad]) => `${pad}${upper ? name.toUpperCase() : name}${pad}`);
    const entry = fc.oneof(mangled, fc.string({ maxLength: 12 }));
    const value = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.array(entry, { maxLength: 6 }).map((entries) => entries.join(',')),
    );

    // Act & Assess
    fc.assert(
      fc.property(value, (text) => {
        const result = parseScheduleList('i-1', keys.backup, text, catalog);
        for (const schedule of result.schedules) {
          expect(catalog.schedules.has(schedule)).toBe(true);
          expect(schedule).toBe(schedule.toLowerCase());
        }
        expect(new Set(result.schedules).size).toBe(result.schedules.length);
        for (const problem of result.problems) {
          expect(problem.key).toBe(keys.backup);
          expect(problem.value).toBe(text);
          expect(problem.message.startsWith(`${keys.backup}=`)).toBe(true);
        }
      }),
      PROPERTY_RUNS,
    );
  });

  it('keeps every correctly written known name of any list', () => {
    // Prepare
    const known = [...catalog.schedules.keys()];
    const list = fc.array(fc.oneof(fc.constantFrom(...known), fc.string({ maxLength: 8 })), {
      maxLength: 6,
    });

    // Act & Assess
    fc.assert(
      fc.property(list, (entries) => {
        const result = parseScheduleList('i-1', keys.backup, entries.join(','), catalog);
        for (const name of entries.filter((entry) => known.includes(entry))) {
          expect(result.schedules).toContain(name);
        }
      }),
      PROPERTY_RUNS,
    );
  });
});

describe('Function: parseBooleanTag', () => {
  it.each([
    ['true', false, true],
    ['TRUE', false, true],
    [' True ', false, true],
    ['false', true, false],
    ['FALSE', true, false],
    [' false ', true, false],
  ])('reads %j as %s whatever the fallback', (value, fallback, expected) => {
    // Prepare
    const key = keys.excludeBoot;

    // Act
    const result = parseBooleanTag('i-1', key, value, fallback);

    // Assess
    expect(result.value).toBe(expected);
    expect(result.problems).toEqual([]);
  });

  it.each([false, true])(
    'uses the fallback %s without a problem when the tag is absent',
    (fallback) => {
      // Prepare
      const key = keys.skip;

      // Act
      const result = parseBooleanTag('vol-1', key, undefined, fallback);

      // Assess
      expect(result.value).toBe(fallback);
      expect(result.problems).toEqual([]);
    },
  );

  it.each(['yes', 'no', '1', '0', 'on', 'truee'])(
    'reports %j as a problem and falls back to the safe side',
    (value) => {
      // Prepare
      const key = keys.excludeBoot;

      // Act
      const result = parseBooleanTag('i-1', key, value, false);

      // Assess
      expect(result.value).toBe(false);
      expect(result.problems).toEqual([
        {
          resourceId: 'i-1',
          key: 'snapkeeper:exclude-boot',
          value,
          message: `snapkeeper:exclude-boot=${JSON.stringify(value)} must be true or false; using false`,
        },
      ]);
    },
  );

  it('never throws and returns the fallback exactly when it reports a problem', () => {
    // Prepare
    const value = fc.option(fc.oneof(fc.string(), fc.constantFrom('true', 'FALSE', ' true ')), {
      nil: undefined,
    });

    // Act & Assess
    fc.assert(
      fc.property(value, fc.boolean(), (text, fallback) => {
        const result = parseBooleanTag('vol-1', keys.skip, text, fallback);
        if (result.problems.length > 0) expect(result.value).toBe(fallback);
        const normalised = text?.trim().toLowerCase();
        if (normalised === 'true' || normalised === 'false') {
          expect(result.value).toBe(normalised === 'true');
          expect(result.problems).toEqual([]);
        }
      }),
      PROPERTY_RUNS,
    );
  });
});

describe('Function: parseRetainCounts', () => {
  it.each([
    ['7', 7],
    [' 12 ', 12],
    ['1', 1],
    ['1000', 1000],
    ['007', 7],
  ])('reads %j as one count for every listed schedule', (value, count) => {
    // Prepare
    const key = keys.retain;

    // Act
    const result = parseRetainCounts('i-1', key, value, catalog);

    // Assess
    expect(result.retain).toEqual({ all: count, bySchedule: {} });
    expect(result.problems).toEqual([]);
  });

  it.each([
    ['daily=7,weekly=4', { daily: 7, weekly: 4 }],
    ['monthly=12', { monthly: 12 }],
    [' Daily = 7 , WEEKLY=4 ', { daily: 7, weekly: 4 }],
    ['daily=1,weekly=1000', { daily: 1, weekly: 1000 }],
  ])('reads %j as counts per schedule', (value, bySchedule) => {
    // Prepare
    const key = keys.retain;

    // Act
    const result = parseRetainCounts('i-1', key, value, catalog);

    // Assess
    expect(result.retain).toEqual({ bySchedule });
    expect(result.problems).toEqual([]);
  });

  it('asks for nothing and reports nothing when the tag is absent', () => {
    // Prepare
    const key = keys.retain;

    // Act
    const result = parseRetainCounts('i-1', key, undefined, catalog);

    // Assess
    expect(result.retain).toBeUndefined();
    expect(result.problems).toEqual([]);
  });

  it.each([
    ['empty', ''],
    ['zero', '0'],
    ['above the maximum', '1001'],
    ['negative', '-1'],
    ['a fraction', '7.5'],
    ['a word', 'seven'],
    ['a per-schedule zero', 'daily=0'],
    ['a per-schedule count above the maximum', 'daily=1001'],
    ['a per-schedule word', 'daily=x'],
    ['an unknown schedule', 'dialy=7'],
    ['an entry without a count', 'daily=7,weekly'],
    ['a trailing comma', 'daily=7,'],
    ['an entry without a name', '=7'],
    ['an entry with two counts', 'daily=7=8'],
    ['one schedule with two different counts', 'daily=7,daily=8'],
  ])('yields no counts and a problem when the value is %s (%j)', (_label, value) => {
    // Prepare
    const key = keys.retain;

    // Act
    const result = parseRetainCounts('i-9', key, value, catalog);

    // Assess
    expect(result.retain).toBeUndefined();
    expect(result.problems.length).toBeGreaterThan(0);
    for (const problem of result.problems) {
      expect(problem).toMatchObject({ resourceId: 'i-9', key: 'snapkeeper:retain', value });
      expect(problem.message.startsWith(`snapkeeper:retain=${JSON.stringify(value)}`)).toBe(true);
    }
  });

  it('drops every count, not only the bad entry, when one entry is malformed', () => {
    // Prepare
    const value = 'daily=7,weekly=x,monthly=12';

    // Act
    const result = parseRetainCounts('i-1', keys.retain, value, catalog);

    // Assess
    expect(result.retain).toBeUndefined();
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]?.message).toContain('weekly');
  });

  it('names an unknown schedule and lists the known ones', () => {
    // Prepare
    const value = 'dialy=7';

    // Act
    const result = parseRetainCounts('i-1', keys.retain, value, catalog);

    // Assess
    expect(result.problems[0]?.message).toBe(
      `snapkeeper:retain="dialy=7" "dialy" is not a known schedule; ${KNOWN_DEFAULT}`,
    );
  });

  it('states the allowed range for an out-of-range count', () => {
    // Prepare
    const value = String(MAX_RETAIN_COUNT + 1);

    // Act
    const result = parseRetainCounts('i-1', keys.retain, value, catalog);

    // Assess
    expect(result.problems[0]?.message).toContain(`1 to ${MAX_RETAIN_COUNT}`);
  });

  it('never throws, and yields either valid counts or problems, never both', () => {
    // Prepare
    const known = [...catalog.schedules.keys()];
    const pair = fc
      .tuple(
        fc.oneof(fc.constantFrom(...known), fc.string({ maxLength: 6 })),
        fc.oneof(fc.integer({ min: -5, max: 1200 }).map(String), fc.string({ maxLength: 4 })),
      )
      .map(([name, count]) => `${name}=${count}`);
    const value = fc.oneof(
      fc.string(),
      fc.integer({ min: -10, max: 2000 }).map(String),
      fc.array(pair, { maxLength: 5 }).map((pairs) => pairs.join(',')),
    );

    // Act & Assess
    fc.assert(
      fc.property(value, (text) => {
        const result = parseRetainCounts('i-1', keys.retain, text, catalog);
        if (result.retain === undefined) {
          expect(result.problems.length).toBeGreaterThan(0);
          return;
        }
        expect(result.problems).toEqual([]);
        const counts = [
          ...(result.retain.all === undefined ? [] : [result.retain.all]),
          ...Object.values(result.retain.bySchedule),
        ];
        expect(counts.length).toBeGreaterThan(0);
        for (const count of counts) {
          expect(Number.isInteger(count)).toBe(true);
          expect(count).toBeGreaterThanOrEqual(1);
          expect(count).toBeLessThanOrEqual(MAX_RETAIN_COUNT);
        }
        for (const name of Object.keys(result.retain.bySchedule)) {
          expect(catalog.schedules.has(name)).toBe(true);
        }
      }),
      PROPERTY_RUNS,
    );
  });
});

describe('Function: readInstancePolicy', () => {
  it('reads opt-in, boot exclusion and retention from the instance tags', () => {
    // Prepare
    const tags = {
      'snapkeeper:backup': 'daily,weekly',
      'snapkeeper:exclude-boot': 'true',
      'snapkeeper:retain': 'daily=3,weekly=2',
      Name: 'web-1',
    };

    // Act
    const policy = readInstancePolicy('i-1', tags, keys, catalog);

    // Assess
    expect(policy).toEqual({
      schedules: ['daily', 'weekly'],
      excludeBoot: true,
      retain: { bySchedule: { daily: 3, weekly: 2 } },
      problems: [],
    });
  });

  it('asks for nothing from an instance without our tags', () => {
    // Prepare
    const tags = { Name: 'web-1', Environment: 'prod' };

    // Act
    const policy = readInstancePolicy('i-1', tags, keys, catalog);

    // Assess
    expect(policy).toEqual({ schedules: [], excludeBoot: false, problems: [] });
    expect('retain' in policy).toBe(false);
  });

  it('collects a problem for every unreadable tag and falls back to the safe side', () => {
    // Prepare
    const tags = {
      'snapkeeper:backup': 'daily,dialy',
      'snapkeeper:exclude-boot': 'maybe',
      'snapkeeper:retain': 'lots',
    };

    // Act
    const policy = readInstancePolicy('i-7', tags, keys, catalog);

    // Assess
    expect(policy.schedules).toEqual(['daily']);
    expect(policy.excludeBoot).toBe(false);
    expect(policy.retain).toBeUndefined();
    expect(policy.problems.map((p) => p.key)).toEqual([
      'snapkeeper:backup',
      'snapkeeper:exclude-boot',
      'snapkeeper:retain',
    ]);
    expect(policy.problems.every((p) => p.resourceId === 'i-7')).toBe(true);
  });

  it('reads the keys under the configured prefix only', () => {
    // Prepare
    const acme = tagKeys('acme:');
    const tags = {
      'acme:backup': 'weekly',
      'snapkeeper:backup': 'daily',
      'snapkeeper:exclude-boot': 'true',
      'acme:retain': '5',
    };

    // Act
    const policy = readInstancePolicy('i-1', tags, acme, catalog);

    // Assess
    expect(policy.schedules).toEqual(['weekly']);
    expect(policy.excludeBoot).toBe(false);
    expect(policy.retain).toEqual({ all: 5, bySchedule: {} });
  });

  it('never throws on arbitrary tag values', () => {
    // Prepare
    const value = fc.option(fc.string({ unit: 'binary' }), { nil: undefined });
    const tags = fc
      .record({ backup: value, excludeBoot: value, retain: value, other: value })
      .map((v) => {
        const map: Record<string, string> = {};
        if (v.backup !== undefined) map[keys.backup] = v.backup;
        if (v.excludeBoot !== undefined) map[keys.excludeBoot] = v.excludeBoot;
        if (v.retain !== undefined) map[keys.retain] = v.retain;
        if (v.other !== undefined) map.Name = v.other;
        return map;
      });

    // Act & Assess
    fc.assert(
      fc.property(tags, (map) => {
        const policy = readInstancePolicy('i-1', map, keys, catalog);
        expect(policy.schedules.every((s) => catalog.schedules.has(s))).toBe(true);
        expect(typeof policy.excludeBoot).toBe('boolean');
      }),
      PROPERTY_RUNS,
    );
  });
});

describe('Function: quoteShort', () => {
  it('quotes a short value as JSON', () => {
    // Prepare
    const value = 'say "hi"';

    // Act
    const quoted = quoteShort(value);

    // Assess
    expect(quoted).toBe('"say \\"hi\\""');
  });

  it('cuts a long value so that a huge tag never floods a log line', () => {
    // Prepare
    const value = 'x'.repeat(300);

    // Act
    const quoted = quoteShort(value);

    // Assess
    expect(quoted).toBe(`"${'x'.repeat(64)}…"`);
  });

  it('keeps problem messages short whatever the tag value', () => {
    // Prepare
    const value = `${'dialy'.repeat(100)}`;

    // Act
    const result = parseScheduleList('i-1', keys.backup, value, catalog);

    // Assess
    expect(result.problems[0]?.value).toBe(value);
    expect(result.problems[0]?.message.length).toBeLessThan(200);
  });
});
