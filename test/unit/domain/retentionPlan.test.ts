import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  keepAll,
  type LineageContext,
  type PointState,
  periodKey,
  planRetention,
  type RecoveryPoint,
  type RetentionDecision,
  type RetentionPlan,
  type RetentionRule,
} from '../../../lib/domain/retentionPlan.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const WEEK_MS = 7 * DAY_MS;
/** A Monday, in ISO week 2026-W48: every plan below is made at this instant. */
const NOW = new Date('2026-11-23T12:00:00Z');
const PROPERTY_RUNS = { numRuns: 300 };

type PointOptions = Partial<Pick<RecoveryPoint, 'state' | 'managed' | 'heldBy'>>;
type Row = [id: string, action: RetentionDecision['action'], reason: string];

/** A completed point managed by this deployment unless told otherwise. */
function point(id: string, createdAt: string | Date, options: PointOptions = {}): RecoveryPoint {
  return { id, state: 'completed', managed: true, createdAt: new Date(createdAt), ...options };
}

function ago(ms: number): Date {
  return new Date(NOW.getTime() - ms);
}

/**
 * Completed daily points at 03:00 UTC, newest first: `snap-01` on the newest day,
 * `snap-02` a day before, and so on.
 */
function dailyHistory(length: number, newest = '2026-11-23T03:00:00Z'): RecoveryPoint[] {
  const start = Date.parse(newest);
  return Array.from({ length }, (_, index) =>
    point(`snap-${String(index + 1).padStart(2, '0')}`, new Date(start - index * DAY_MS)),
  );
}

/** A daily schedule in UTC, the source still opted in. */
function lineage(overrides: Partial<LineageContext> = {}): LineageContext {
  return { now: NOW, timezone: 'UTC', orphan: false, intervalMs: DAY_MS, ...overrides };
}

/** The plan as an operator reads it: one row per point, in input order. */
function rows(plan: RetentionPlan): Row[] {
  return plan.decisions.map((decision) => [decision.id, decision.action, decision.reason]);
}

function kept(id: string, reason: string): Row {
  return [id, 'keep', reason];
}

function deleted(id: string, reason: string): Row {
  return [id, 'delete', reason];
}

function idsOf(plan: RetentionPlan, action: RetentionDecision['action']): string[] {
  return plan.decisions.filter((decision) => decision.action === action).map((d) => d.id);
}

describe('Function: planRetention', () => {
  describe('count: the newest N completed points stay', () => {
    it('keeps the newest 7 completed points and deletes the rest as beyond count 7', () => {
      // Prepare
      const points = dailyHistory(9);

      // Act
      const plan = planRetention(points, { count: 7 }, lineage());

      // Assess
      expect(rows(plan)).toEqual([
        kept('snap-01', 'kept: newest 1 of 7'),
        kept('snap-02', 'kept: newest 2 of 7'),
        kept('snap-03', 'kept: newest 3 of 7'),
        kept('snap-04', 'kept: newest 4 of 7'),
        kept('snap-05', 'kept: newest 5 of 7'),
        kept('snap-06', 'kept: newest 6 of 7'),
        kept('snap-07', 'kept: newest 7 of 7'),
        deleted('snap-08', 'beyond count 7'),
        deleted('snap-09', 'beyond count 7'),
      ]);
      expect(plan.failing).toBeUndefined();
      expect('failing' in plan).toBe(false);
    });

    it('keeps every point while there are no more completed points than the count', () => {
      // Prepare
      const points = dailyHistory(5);

      // Act
      const plan = planRetention(points, { count: 7 }, lineage());

      // Assess
      expect(idsOf(plan, 'delete')).toEqual([]);
      expect(idsOf(plan, 'keep')).toEqual(['snap-01', 'snap-02', 'snap-03', 'snap-04', 'snap-05']);
    });

    it('decides by creation time, whatever the input order, and answers in input order', () => {
      // Prepare
      const points = dailyHistory(9).reverse();

      // Act
      const plan = planRetention(points, { count: 7 }, lineage());

      // Assess
      expect(plan.decisions.map((d) => d.id)).toEqual(points.map((p) => p.id));
      expect(idsOf(plan, 'delete')).toEqual(['snap-09', 'snap-08']);
      expect(plan.decisions.find((d) => d.id === 'snap-01')?.reason).toBe('kept: newest 1 of 7');
    });

    it('keeps at least the newest point even when the rule asks for none', () => {
      // Prepare
      const points = dailyHistory(3);

      // Act
      const plan = planRetention(points, { count: 0 }, lineage());

      // Assess
      expect(rows(plan)).toEqual([
        kept('snap-01', 'kept: newest 1 of 1'),
        deleted('snap-02', 'beyond count 1'),
        deleted('snap-03', 'beyond count 1'),
      ]);
    });

    it.each([-3, 0.5, Number.NaN])(
      'never deletes the newest completed point, even for a count of %s',
      (count) => {
        // Prepare
        const points = dailyHistory(3);

        // Act
        const plan = planRetention(points, { count }, lineage());

        // Assess
        expect(plan.decisions[0]).toMatchObject({ id: 'snap-01', action: 'keep' });
      },
    );

    it('plans nothing for an empty history', () => {
      // Prepare
      const points: RecoveryPoint[] = [];

      // Act
      const plan = planRetention(points, { count: 7 }, lineage());

      // Assess
      expect(plan).toEqual({ decisions: [] });
    });
  });

  describe('age (minAgeDays): a point goes only when beyond the count and older', () => {
    it('deletes points beyond count 7 only once older than 14 days', () => {
      // Prepare: snap-N is N-1 days and 9 hours old
      const points = dailyHistory(18);

      // Act
      const plan = planRetention(points, { count: 7, minAgeDays: 14 }, lineage());

      // Assess
      const young = 'kept: beyond count 7 but not older than 14 days';
      const old = 'beyond count 7 and older than 14 days';
      expect(rows(plan)).toEqual([
        kept('snap-01', 'kept: newest 1 of 7'),
        kept('snap-02', 'kept: newest 2 of 7'),
        kept('snap-03', 'kept: newest 3 of 7'),
        kept('snap-04', 'kept: newest 4 of 7'),
        kept('snap-05', 'kept: newest 5 of 7'),
        kept('snap-06', 'kept: newest 6 of 7'),
        kept('snap-07', 'kept: newest 7 of 7'),
        kept('snap-08', young),
        kept('snap-09', young),
        kept('snap-10', young),
        kept('snap-11', young),
        kept('snap-12', young),
        kept('snap-13', young),
        kept('snap-14', young),
        deleted('snap-15', old),
        deleted('snap-16', old),
        deleted('snap-17', old),
        deleted('snap-18', old),
      ]);
    });

    it('never undercuts the count: points within it stay however old they are', () => {
      // Prepare
      const points = [
        point('fresh', ago(2 * HOUR_MS)),
        ...[200, 201, 202, 203, 204, 205, 206].map((days) =>
          point(`old-${days}`, ago(days * DAY_MS)),
        ),
      ];

      // Act
      const plan = planRetention(points, { count: 7, minAgeDays: 14 }, lineage());

      // Assess
      expect(idsOf(plan, 'keep')).toEqual([
        'fresh',
        'old-200',
        'old-201',
        'old-202',
        'old-203',
        'old-204',
        'old-205',
      ]);
      expect(rows(plan).at(-1)).toEqual(
        deleted('old-206', 'beyond count 7 and older than 14 days'),
      );
      expect(rows(plan).at(-2)).toEqual(kept('old-205', 'kept: newest 7 of 7'));
    });

    it.each([
      [
        'exactly 14 days old',
        14 * DAY_MS,
        kept('probe', 'kept: beyond count 1 but not older than 14 days'),
      ],
      [
        '14 days and 1 ms old',
        14 * DAY_MS + 1,
        deleted('probe', 'beyond count 1 and older than 14 days'),
      ],
    ])('treats a point %s as "older than 14 days" only when strictly older', (_label, age, row) => {
      // Prepare
      const points = [point('newest', ago(HOUR_MS)), point('probe', ago(age))];

      // Act
      const plan = planRetention(points, { count: 1, minAgeDays: 14 }, lineage());

      // Assess
      expect(rows(plan)).toEqual([kept('newest', 'kept: newest 1 of 1'), row]);
    });

    it('deletes every point beyond the count with minAgeDays 0', () => {
      // Prepare
      const points = dailyHistory(3);

      // Act
      const plan = planRetention(points, { count: 2, minAgeDays: 0 }, lineage());

      // Assess
      expect(rows(plan)).toEqual([
        kept('snap-01', 'kept: newest 1 of 2'),
        kept('snap-02', 'kept: newest 2 of 2'),
        deleted('snap-03', 'beyond count 2 and older than 0 days'),
      ]);
    });
  });

  describe('tiers: the newest completed point of each of the newest N periods stays', () => {
    it('keeps the newest point of each of the 3 newest days with daily=3', () => {
      // Prepare: four points a day
      const points = [
        point('mon-09', '2026-11-23T09:00:00Z'),
        point('mon-03', '2026-11-23T03:00:00Z'),
        point('sun-21', '2026-11-22T21:00:00Z'),
        point('sun-15', '2026-11-22T15:00:00Z'),
        point('sun-09', '2026-11-22T09:00:00Z'),
        point('sat-21', '2026-11-21T21:00:00Z'),
        point('sat-15', '2026-11-21T15:00:00Z'),
        point('fri-21', '2026-11-20T21:00:00Z'),
      ];

      // Act
      const plan = planRetention(points, { count: 1, tiers: { daily: 3 } }, lineage());

      // Assess: the count's point also stands for its day
      expect(rows(plan)).toEqual([
        kept('mon-09', 'kept: newest 1 of 1'),
        deleted('mon-03', 'beyond count 1'),
        kept('sun-21', 'kept: daily tier 2026-11-22'),
        deleted('sun-15', 'beyond count 1'),
        deleted('sun-09', 'beyond count 1'),
        kept('sat-21', 'kept: daily tier 2026-11-21'),
        deleted('sat-15', 'beyond count 1'),
        deleted('fri-21', 'beyond count 1'),
      ]);
    });

    it('keeps, for each ISO week (Monday to Sunday), its newest completed point: the Sunday one', () => {
      // Prepare: one point a day from Monday 2026-10-26 (W44) to Monday 2026-11-23 (W48)
      const points = dailyHistory(29);

      // Act
      const plan = planRetention(points, { count: 1, tiers: { weekly: 4 } }, lineage());

      // Assess
      const keptRows = plan.decisions
        .filter((d) => d.action === 'keep')
        .map((d) => [d.id, d.reason]);
      expect(keptRows).toEqual([
        ['snap-01', 'kept: newest 1 of 1'], // Monday 2026-11-23 stands for 2026-W48
        ['snap-02', 'kept: weekly tier 2026-W47'], // Sunday 2026-11-22
        ['snap-09', 'kept: weekly tier 2026-W46'], // Sunday 2026-11-15
        ['snap-16', 'kept: weekly tier 2026-W45'], // Sunday 2026-11-08
      ]);
      const deletions = plan.decisions.filter((d) => d.action === 'delete');
      expect(deletions).toHaveLength(25);
      expect(new Set(deletions.map((d) => d.reason))).toEqual(new Set(['beyond count 1']));
    });

    it('lets a week be represented by its newest completed managed point, not a newer pending, error or foreign one', () => {
      // Prepare
      const points = [
        point('mon', '2026-11-23T03:00:00Z'),
        point('sun-pending', '2026-11-22T03:00:00Z', { state: 'pending' }),
        point('sat-by-hand', '2026-11-21T12:00:00Z', { managed: false }),
        point('sat-error', '2026-11-21T03:00:00Z', { state: 'error' }),
        point('fri', '2026-11-20T03:00:00Z'),
        point('thu', '2026-11-19T03:00:00Z'),
      ];

      // Act
      const plan = planRetention(points, { count: 1, tiers: { weekly: 2 } }, lineage());

      // Assess
      expect(rows(plan)).toEqual([
        kept('mon', 'kept: newest 1 of 1'),
        kept('sun-pending', 'kept: pending (not counted, never deleted)'),
        kept('sat-by-hand', 'kept: not created by this deployment'),
        deleted('sat-error', 'in error (holds no data) for over a day'),
        kept('fri', 'kept: weekly tier 2026-W47'),
        deleted('thu', 'beyond count 1'),
      ]);
    });

    it.each([
      {
        timezone: 'UTC',
        expected: [
          kept('mon-10h', 'kept: newest 1 of 1'),
          kept('sun-23h30', 'kept: weekly tier 2026-W47'),
          deleted('sun-20h', 'beyond count 1'),
        ],
      },
      {
        timezone: 'Europe/Paris', // 2026-11-22T23:30Z is Monday 00:30 in Paris: week 48
        expected: [
          kept('mon-10h', 'kept: newest 1 of 1'),
          deleted('sun-23h30', 'beyond count 1'),
          kept('sun-20h', 'kept: weekly tier 2026-W47'),
        ],
      },
    ])('cuts weeks in the schedule time zone ($timezone)', ({ timezone, expected }) => {
      // Prepare
      const points = [
        point('mon-10h', '2026-11-23T10:00:00Z'),
        point('sun-23h30', '2026-11-22T23:30:00Z'),
        point('sun-20h', '2026-11-22T20:00:00Z'),
      ];

      // Act
      const plan = planRetention(points, { count: 1, tiers: { weekly: 2 } }, lineage({ timezone }));

      // Assess
      expect(rows(plan)).toEqual(expected);
    });

    it.each([
      {
        timezone: 'UTC',
        expected: [
          kept('p1', 'kept: newest 1 of 1'),
          deleted('p2', 'beyond count 1'),
          kept('p3', 'kept: daily tier 2026-11-22'),
        ],
      },
      {
        timezone: 'America/New_York', // 2026-11-23T03:00Z is 22:00 on the 22nd in New York
        expected: [
          kept('p1', 'kept: newest 1 of 1'),
          kept('p2', 'kept: daily tier 2026-11-22'),
          deleted('p3', 'beyond count 1'),
        ],
      },
    ])('cuts days in the schedule time zone ($timezone)', ({ timezone, expected }) => {
      // Prepare
      const points = [
        point('p1', '2026-11-23T10:00:00Z'),
        point('p2', '2026-11-23T03:00:00Z'),
        point('p3', '2026-11-22T15:00:00Z'),
      ];

      // Act
      const plan = planRetention(points, { count: 1, tiers: { daily: 2 } }, lineage({ timezone }));

      // Assess
      expect(rows(plan)).toEqual(expected);
    });

    it('combines count, weekly, monthly and yearly tiers (grandfather-father-son)', () => {
      // Prepare
      const points = [
        point('a', '2026-11-23T03:00:00Z'), // W48, 2026-11, 2026
        point('b', '2026-11-22T03:00:00Z'), // W47
        point('c', '2026-11-21T03:00:00Z'), // W47
        point('d', '2026-11-15T03:00:00Z'), // W46: beyond weekly=2
        point('e', '2026-10-31T03:00:00Z'), // newest of 2026-10
        point('f', '2026-10-01T03:00:00Z'),
        point('g', '2026-09-30T03:00:00Z'), // 2026-09: beyond monthly=2
        point('h', '2025-12-31T03:00:00Z'), // newest of 2025
        point('i', '2025-06-01T03:00:00Z'),
        point('j', '2024-12-31T03:00:00Z'), // 2024: beyond yearly=2
      ];
      const rule: RetentionRule = { count: 2, tiers: { weekly: 2, monthly: 2, yearly: 2 } };

      // Act
      const plan = planRetention(points, rule, lineage());

      // Assess
      expect(rows(plan)).toEqual([
        kept('a', 'kept: newest 1 of 2'),
        kept('b', 'kept: newest 2 of 2'),
        deleted('c', 'beyond count 2'),
        deleted('d', 'beyond count 2'),
        kept('e', 'kept: monthly tier 2026-10'),
        deleted('f', 'beyond count 2'),
        deleted('g', 'beyond count 2'),
        kept('h', 'kept: yearly tier 2025'),
        deleted('i', 'beyond count 2'),
        deleted('j', 'beyond count 2'),
      ]);
    });

    it('names the first tier that keeps a point, in the order daily, weekly, monthly, yearly', () => {
      // Prepare: 'sun' is the newest point of its day and of its week, 2026-W44
      const points = [point('mon', '2026-11-23T03:00:00Z'), point('sun', '2026-11-01T03:00:00Z')];
      const rule: RetentionRule = {
        count: 1,
        tiers: { yearly: 5, monthly: 5, weekly: 5, daily: 5 },
      };

      // Act
      const plan = planRetention(points, rule, lineage());

      // Assess
      expect(rows(plan)).toEqual([
        kept('mon', 'kept: newest 1 of 1'),
        kept('sun', 'kept: daily tier 2026-11-01'),
      ]);
    });

    it('lets tiers keep points that minAgeDays alone would delete', () => {
      // Prepare
      const points = dailyHistory(40);

      // Act
      const plan = planRetention(
        points,
        { count: 2, minAgeDays: 7, tiers: { monthly: 2 } },
        lineage(),
      );

      // Assess: snap-24 is 2026-10-31, the newest point of October
      expect(plan.decisions.find((d) => d.id === 'snap-24')?.reason).toBe(
        'kept: monthly tier 2026-10',
      );
      expect(idsOf(plan, 'keep')).toEqual([
        'snap-01',
        'snap-02',
        'snap-03',
        'snap-04',
        'snap-05',
        'snap-06',
        'snap-07',
        'snap-24',
      ]);
    });
  });

  describe('pending points: never deleted, never counted', () => {
    it('keeps all 7 completed points with count 7 when the 2 newest are pending', () => {
      // Prepare
      const points = [
        point('pending-1', '2026-11-23T11:30:00Z', { state: 'pending' }),
        point('pending-2', '2026-11-23T11:00:00Z', { state: 'pending' }),
        ...dailyHistory(7),
      ];

      // Act
      const plan = planRetention(points, { count: 7 }, lineage());

      // Assess
      expect(rows(plan)).toEqual([
        kept('pending-1', 'kept: pending (not counted, never deleted)'),
        kept('pending-2', 'kept: pending (not counted, never deleted)'),
        kept('snap-01', 'kept: newest 1 of 7'),
        kept('snap-02', 'kept: newest 2 of 7'),
        kept('snap-03', 'kept: newest 3 of 7'),
        kept('snap-04', 'kept: newest 4 of 7'),
        kept('snap-05', 'kept: newest 5 of 7'),
        kept('snap-06', 'kept: newest 6 of 7'),
        kept('snap-07', 'kept: newest 7 of 7'),
      ]);
    });

    it('deletes the eighth completed point but never an old pending one beyond count and age', () => {
      // Prepare
      const points = [...dailyHistory(8), point('stuck', ago(300 * DAY_MS), { state: 'pending' })];

      // Act
      const plan = planRetention(points, { count: 7, minAgeDays: 0 }, lineage());

      // Assess
      expect(idsOf(plan, 'delete')).toEqual(['snap-08']);
      expect(rows(plan).at(-1)).toEqual(
        kept('stuck', 'kept: pending (not counted, never deleted)'),
      );
    });
  });

  describe('error points: never counted, reported, deleted after a day', () => {
    it('does not count a recent error point among the 7 kept', () => {
      // Prepare
      const points = [
        ...dailyHistory(8),
        point('failed', '2026-11-22T15:00:00Z', { state: 'error' }),
      ];

      // Act
      const plan = planRetention(points, { count: 7 }, lineage());

      // Assess
      expect(idsOf(plan, 'delete')).toEqual(['snap-08']);
      expect(rows(plan).at(-2)).toEqual(deleted('snap-08', 'beyond count 7'));
      expect(rows(plan).at(-3)).toEqual(kept('snap-07', 'kept: newest 7 of 7'));
      expect(rows(plan).at(-1)).toEqual(
        kept('failed', 'kept: in error, not a recovery point; deleted after a day'),
      );
    });

    it.each([
      [
        '23 hours',
        23 * HOUR_MS,
        'keep',
        'kept: in error, not a recovery point; deleted after a day',
      ],
      [
        'exactly a day',
        DAY_MS,
        'keep',
        'kept: in error, not a recovery point; deleted after a day',
      ],
      ['a day and 1 ms', DAY_MS + 1, 'delete', 'in error (holds no data) for over a day'],
      ['30 days', 30 * DAY_MS, 'delete', 'in error (holds no data) for over a day'],
    ] as const)('decides an error point %s old: %s', (_label, age, action, reason) => {
      // Prepare
      const points = [point('newest', ago(HOUR_MS)), point('failed', ago(age), { state: 'error' })];

      // Act
      const plan = planRetention(points, { count: 7 }, lineage());

      // Assess
      expect(rows(plan)).toEqual([
        kept('newest', 'kept: newest 1 of 7'),
        ['failed', action, reason],
      ]);
    });

    it('blocks, rather than deletes, an old error point an AMI refers to', () => {
      // Prepare
      const points = [
        point('newest', ago(HOUR_MS)),
        point('failed', ago(3 * DAY_MS), { state: 'error', heldBy: ['ami-0abc'] }),
      ];

      // Act
      const plan = planRetention(points, { count: 7 }, lineage());

      // Assess
      expect(plan.decisions[1]).toEqual({
        id: 'failed',
        action: 'blocked',
        reason: 'in error (holds no data) for over a day, but held by ami-0abc',
        heldBy: ['ami-0abc'],
      });
    });
  });

  describe('held points: a point a registered AMI uses is blocked, never deleted', () => {
    it('blocks a point beyond the count and names the AMI', () => {
      // Prepare
      const points = [
        ...dailyHistory(7),
        point('snap-08', '2026-11-16T03:00:00Z', { heldBy: ['ami-0abc'] }),
      ];

      // Act
      const plan = planRetention(points, { count: 7, minAgeDays: 5 }, lineage());

      // Assess
      expect(plan.decisions.at(-1)).toEqual({
        id: 'snap-08',
        action: 'blocked',
        reason: 'beyond count 7 and older than 5 days, but held by ami-0abc',
        heldBy: ['ami-0abc'],
      });
      expect(idsOf(plan, 'delete')).toEqual([]);
    });

    it('names every AMI that holds the point', () => {
      // Prepare
      const points = [
        point('newest', ago(HOUR_MS)),
        point('held', ago(2 * DAY_MS), { heldBy: ['ami-0aaa', 'ami-0bbb'] }),
      ];

      // Act
      const plan = planRetention(points, { count: 1 }, lineage());

      // Assess
      expect(plan.decisions[1]).toEqual({
        id: 'held',
        action: 'blocked',
        reason: 'beyond count 1, but held by ami-0aaa, ami-0bbb',
        heldBy: ['ami-0aaa', 'ami-0bbb'],
      });
    });

    it('keeps a held point within the count for the count, and deletes one held by nothing', () => {
      // Prepare
      const points = [
        point('newest', ago(HOUR_MS), { heldBy: ['ami-0abc'] }),
        point('free', ago(2 * DAY_MS), { heldBy: [] }),
      ];

      // Act
      const plan = planRetention(points, { count: 1 }, lineage());

      // Assess
      expect(rows(plan)).toEqual([
        kept('newest', 'kept: newest 1 of 1'),
        deleted('free', 'beyond count 1'),
      ]);
    });
  });

  describe('points this deployment did not create', () => {
    it('keeps them, whatever their state or age, and never counts them', () => {
      // Prepare
      const points = [
        point('by-hand-today', ago(HOUR_MS), { managed: false }),
        point('aws-backup-today', ago(2 * HOUR_MS), { managed: false }),
        ...dailyHistory(8),
        point('dlm-old', ago(900 * DAY_MS), { managed: false }),
        point('other-stage-error', ago(9 * DAY_MS), { managed: false, state: 'error' }),
        point('shared-pending', ago(9 * DAY_MS), { managed: false, state: 'pending' }),
      ];

      // Act
      const plan = planRetention(points, { count: 7, minAgeDays: 0 }, lineage());

      // Assess
      const foreign = 'kept: not created by this deployment';
      expect(rows(plan)).toEqual([
        kept('by-hand-today', foreign),
        kept('aws-backup-today', foreign),
        kept('snap-01', 'kept: newest 1 of 7'),
        kept('snap-02', 'kept: newest 2 of 7'),
        kept('snap-03', 'kept: newest 3 of 7'),
        kept('snap-04', 'kept: newest 4 of 7'),
        kept('snap-05', 'kept: newest 5 of 7'),
        kept('snap-06', 'kept: newest 6 of 7'),
        kept('snap-07', 'kept: newest 7 of 7'),
        deleted('snap-08', 'beyond count 7 and older than 0 days'),
        kept('dlm-old', foreign),
        kept('other-stage-error', foreign),
        kept('shared-pending', foreign),
      ]);
    });

    it('does not let a snapshot made by hand hide failing backups', () => {
      // Prepare
      const points = [
        point('by-hand', ago(HOUR_MS), { managed: false }),
        ...dailyHistory(9, '2026-11-20T03:00:00Z'),
      ];

      // Act
      const plan = planRetention(points, { count: 7 }, lineage());

      // Assess
      expect(plan.failing).toBe(
        "no backup started for 3 days (over twice the schedule's interval of 24 hours)",
      );
      expect(idsOf(plan, 'delete')).toEqual([]);
    });
  });

  describe('failing backups: while a source still opted in gets no new point, nothing of it is deleted', () => {
    it('deletes nothing and reports it when the newest managed point is in error', () => {
      // Prepare
      const points = [
        point('snap-err', ago(HOUR_MS), { state: 'error' }),
        ...dailyHistory(9),
        point('old-err', ago(5 * DAY_MS), { state: 'error' }),
        point('pending', ago(2 * DAY_MS), { state: 'pending' }),
        point('by-hand', ago(40 * DAY_MS), { managed: false }),
      ];

      // Act
      const plan = planRetention(points, { count: 7 }, lineage());

      // Assess
      const failing = 'kept: backups failing, newest backup snap-err is in error';
      expect(plan.failing).toBe('newest backup snap-err is in error');
      expect(rows(plan)).toEqual([
        kept('snap-err', failing),
        ...dailyHistory(9).map((p) => kept(p.id, failing)),
        kept('old-err', failing),
        kept('pending', 'kept: pending (not counted, never deleted)'),
        kept('by-hand', 'kept: not created by this deployment'),
      ]);
    });

    it('deletes nothing and reports it when no point started within twice the interval', () => {
      // Prepare: the newest point is 3 days and 9 hours old, the schedule daily
      const points = dailyHistory(9, '2026-11-20T03:00:00Z');

      // Act
      const plan = planRetention(points, { count: 7 }, lineage());

      // Assess
      const failing =
        "no backup started for 3 days (over twice the schedule's interval of 24 hours)";
      expect(plan.failing).toBe(failing);
      expect(rows(plan)).toEqual(
        points.map((p) => kept(p.id, `kept: backups failing, ${failing}`)),
      );
    });

    it.each([
      ['exactly twice the interval', 2 * DAY_MS, false],
      ['twice the interval and 1 ms', 2 * DAY_MS + 1, true],
    ])('judges a newest point %s old as failing: %s', (_label, silence, failing) => {
      // Prepare
      const points = [point('newest', ago(silence)), point('older', ago(silence + DAY_MS))];

      // Act
      const plan = planRetention(points, { count: 1 }, lineage());

      // Assess
      expect(plan.failing !== undefined).toBe(failing);
      expect(idsOf(plan, 'delete')).toEqual(failing ? [] : ['older']);
    });

    it('treats a pending newest point as normal: it blocks nothing', () => {
      // Prepare
      const points = [
        point('running', ago(HOUR_MS), { state: 'pending' }),
        point('done-3d', ago(3 * DAY_MS)),
        point('done-4d', ago(4 * DAY_MS)),
      ];

      // Act
      const plan = planRetention(points, { count: 1 }, lineage());

      // Assess
      expect(plan.failing).toBeUndefined();
      expect(rows(plan)).toEqual([
        kept('running', 'kept: pending (not counted, never deleted)'),
        kept('done-3d', 'kept: newest 1 of 1'),
        deleted('done-4d', 'beyond count 1'),
      ]);
    });

    it('reports a pending point that started over twice the interval ago as failing', () => {
      // Prepare
      const points = [
        point('stuck', ago(3 * DAY_MS), { state: 'pending' }),
        point('done-4d', ago(4 * DAY_MS)),
        point('done-5d', ago(5 * DAY_MS)),
      ];

      // Act
      const plan = planRetention(points, { count: 1 }, lineage());

      // Assess
      expect(plan.failing).toBe(
        "no backup started for 3 days (over twice the schedule's interval of 24 hours)",
      );
      expect(idsOf(plan, 'delete')).toEqual([]);
    });

    it('does not judge a weekly schedule failing when its newest point is 10 days old', () => {
      // Prepare
      const points = [10, 17, 24, 31, 38].map((days) => point(`w-${days}`, ago(days * DAY_MS)));

      // Act
      const plan = planRetention(points, { count: 4 }, lineage({ intervalMs: WEEK_MS }));

      // Assess
      expect(plan.failing).toBeUndefined();
      expect(idsOf(plan, 'delete')).toEqual(['w-38']);
    });

    it('is not failing when an error point is followed by a newer completed one', () => {
      // Prepare
      const points = [
        point('newest', ago(HOUR_MS)),
        point('failed', ago(3 * DAY_MS), { state: 'error' }),
      ];

      // Act
      const plan = planRetention(points, { count: 7 }, lineage());

      // Assess
      expect(plan.failing).toBeUndefined();
      expect(idsOf(plan, 'delete')).toEqual(['failed']);
    });
  });

  describe('orphans: the source is gone or no longer opts in', () => {
    it('keeps the last completed point as such and applies the count to the rest', () => {
      // Prepare
      const points = dailyHistory(5);

      // Act
      const plan = planRetention(points, { count: 3 }, lineage({ orphan: true }));

      // Assess
      expect(rows(plan)).toEqual([
        kept('snap-01', 'kept: last completed point of an orphaned source'),
        kept('snap-02', 'kept: newest 2 of 3'),
        kept('snap-03', 'kept: newest 3 of 3'),
        deleted('snap-04', 'beyond count 3'),
        deleted('snap-05', 'beyond count 3'),
      ]);
    });

    it("never calls a live instance's volume orphaned: its last point is kept as no longer backed up", () => {
      // Prepare
      const points = dailyHistory(3);

      // Act
      const plan = planRetention(points, { count: 2 }, lineage({ orphan: true, sourceLive: true }));

      // Assess
      expect(rows(plan)).toEqual([
        kept(
          'snap-01',
          'kept: last completed point of a volume no longer backed up (its instance is live)',
        ),
        kept('snap-02', 'kept: newest 2 of 2'),
        deleted('snap-03', 'beyond count 2'),
      ]);
    });

    it('does not apply the failing rule: an old history is pruned, its last point kept', () => {
      // Prepare
      const points = [
        point('error-newest', ago(59 * DAY_MS), { state: 'error' }),
        ...[60, 61, 62].map((days) => point(`d-${days}`, ago(days * DAY_MS))),
      ];

      // Act
      const plan = planRetention(points, { count: 1 }, lineage({ orphan: true }));

      // Assess
      expect(plan.failing).toBeUndefined();
      expect(rows(plan)).toEqual([
        deleted('error-newest', 'in error (holds no data) for over a day'),
        kept('d-60', 'kept: last completed point of an orphaned source'),
        deleted('d-61', 'beyond count 1'),
        deleted('d-62', 'beyond count 1'),
      ]);
    });

    it('lets even the last point go once the newest completed is older than expireOrphansAfterDays', () => {
      // Prepare
      const points = [
        point('pending', ago(40 * DAY_MS), { state: 'pending' }),
        point('last', ago(31 * DAY_MS)),
        point('held', ago(32 * DAY_MS), { heldBy: ['ami-0keep'] }),
        point('failed', ago(33 * DAY_MS), { state: 'error' }),
        point('by-hand', ago(35 * DAY_MS), { managed: false }),
      ];

      // Act
      const plan = planRetention(
        points,
        { count: 7 },
        lineage({ orphan: true, expireOrphansAfterDays: 30 }),
      );

      // Assess
      const expired = 'orphaned and newest point is over 30 days old (expireOrphansAfterDays)';
      expect(plan.decisions).toEqual([
        { id: 'pending', action: 'keep', reason: 'kept: pending (not counted, never deleted)' },
        { id: 'last', action: 'delete', reason: expired },
        {
          id: 'held',
          action: 'blocked',
          reason: `${expired}, but held by ami-0keep`,
          heldBy: ['ami-0keep'],
        },
        { id: 'failed', action: 'delete', reason: expired },
        { id: 'by-hand', action: 'keep', reason: 'kept: not created by this deployment' },
      ]);
      expect(plan.failing).toBeUndefined();
    });

    it('keeps the last point while the newest completed is exactly expireOrphansAfterDays old', () => {
      // Prepare
      const points = [point('last', ago(30 * DAY_MS)), point('older', ago(31 * DAY_MS))];

      // Act
      const plan = planRetention(
        points,
        { count: 1 },
        lineage({ orphan: true, expireOrphansAfterDays: 30 }),
      );

      // Assess
      expect(rows(plan)).toEqual([
        kept('last', 'kept: last completed point of an orphaned source'),
        deleted('older', 'beyond count 1'),
      ]);
    });

    it('ignores expireOrphansAfterDays for a source that still opts in', () => {
      // Prepare: a monthly schedule whose newest point is 10 days old
      const points = [point('last', ago(10 * DAY_MS)), point('older', ago(40 * DAY_MS))];

      // Act
      const plan = planRetention(
        points,
        { count: 1 },
        lineage({ orphan: false, expireOrphansAfterDays: 1, intervalMs: 31 * DAY_MS }),
      );

      // Assess
      expect(rows(plan)).toEqual([
        kept('last', 'kept: newest 1 of 1'),
        deleted('older', 'beyond count 1'),
      ]);
    });
  });
});

describe('Function: periodKey', () => {
  it.each([
    ['2026-11-23T03:00:00Z', 'daily', 'UTC', '2026-11-23'],
    ['2026-11-23T00:00:00Z', 'daily', 'UTC', '2026-11-23'],
    ['2026-11-23T03:00:00Z', 'daily', 'America/New_York', '2026-11-22'],
    ['2026-11-22T23:00:00Z', 'daily', 'Europe/Paris', '2026-11-23'],
    ['2026-11-22T12:00:00Z', 'daily', 'Pacific/Auckland', '2026-11-23'],
    ['2026-11-23T03:00:00Z', 'weekly', 'UTC', '2026-W48'],
    ['2026-11-22T23:30:00Z', 'weekly', 'UTC', '2026-W47'],
    ['2026-11-22T23:30:00Z', 'weekly', 'Europe/Paris', '2026-W48'],
    ['2026-11-23T03:00:00Z', 'weekly', 'America/New_York', '2026-W47'],
    ['2026-12-31T12:00:00Z', 'weekly', 'UTC', '2026-W53'],
    ['2027-01-01T12:00:00Z', 'weekly', 'UTC', '2026-W53'],
    ['2027-01-03T12:00:00Z', 'weekly', 'UTC', '2026-W53'],
    ['2027-01-03T23:30:00Z', 'weekly', 'Europe/Paris', '2027-W01'],
    ['2027-01-04T12:00:00Z', 'weekly', 'UTC', '2027-W01'],
    ['2024-12-29T12:00:00Z', 'weekly', 'UTC', '2024-W52'],
    ['2024-12-30T12:00:00Z', 'weekly', 'UTC', '2025-W01'],
    ['2025-12-29T12:00:00Z', 'weekly', 'UTC', '2026-W01'],
    ['2026-01-01T12:00:00Z', 'weekly', 'UTC', '2026-W01'],
    ['2021-01-03T12:00:00Z', 'weekly', 'UTC', '2020-W53'],
    ['2026-11-30T23:30:00Z', 'monthly', 'UTC', '2026-11'],
    ['2026-11-30T23:30:00Z', 'monthly', 'Europe/Paris', '2026-12'],
    ['2026-12-01T03:00:00Z', 'monthly', 'America/New_York', '2026-11'],
    ['2026-12-31T23:30:00Z', 'yearly', 'UTC', '2026'],
    ['2026-12-31T23:30:00Z', 'yearly', 'Europe/Paris', '2027'],
    ['2027-01-01T03:00:00Z', 'yearly', 'America/New_York', '2026'],
  ] as const)('puts %s in the %s period of %s: %s', (at, tier, timezone, expected) => {
    // Prepare
    const instant = new Date(at);

    // Act
    const key = periodKey(instant, tier, timezone);

    // Assess
    expect(key).toBe(expected);
  });

  it('gives the seven days Monday to Sunday one ISO week, and the next Monday another', () => {
    // Prepare: any Monday from 2000 to 2099, at any time of day
    const monday = fc
      .integer({ min: 0, max: 5200 })
      .map((weeks) => Date.UTC(2000, 0, 3) + weeks * WEEK_MS);
    const timeOfDay = fc.integer({ min: 0, max: DAY_MS - 1 });

    // Act & Assess
    fc.assert(
      fc.property(monday, timeOfDay, (start, offset) => {
        const week = periodKey(new Date(start + offset), 'weekly', 'UTC');
        expect(week).toMatch(/^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$/);
        for (let day = 1; day < 7; day += 1) {
          expect(periodKey(new Date(start + day * DAY_MS + offset), 'weekly', 'UTC')).toBe(week);
        }
        expect(periodKey(new Date(start + WEEK_MS + offset), 'weekly', 'UTC')).not.toBe(week);
      }),
      PROPERTY_RUNS,
    );
  });
});

describe('Function: keepAll', () => {
  it('keeps every point with the one reason given', () => {
    // Prepare
    const points = [point('a', ago(DAY_MS)), point('b', ago(900 * DAY_MS), { state: 'error' })];
    const reason = 'kept: snapkeeper:retain="seven" is not a whole number';

    // Act
    const plan = keepAll(points, reason);

    // Assess
    expect(plan).toEqual({
      decisions: [
        { id: 'a', action: 'keep', reason },
        { id: 'b', action: 'keep', reason },
      ],
    });
  });
});

// ---------------------------------------------------------------------------
// Invariants over random histories
// ---------------------------------------------------------------------------

interface History {
  readonly points: RecoveryPoint[];
  readonly rule: RetentionRule;
  readonly context: LineageContext;
}

const TWO_YEARS_MINUTES = 2 * 365 * 24 * 60;
const TIMEZONES = ['UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata', 'Pacific/Auckland'];
const AMIS = ['ami-0aaa', 'ami-0bbb', 'ami-0ccc'];

const stateArbitrary = fc.oneof(
  { arbitrary: fc.constant<PointState>('completed'), weight: 3 },
  { arbitrary: fc.constant<PointState>('pending'), weight: 1 },
  { arbitrary: fc.constant<PointState>('error'), weight: 1 },
);

/** Ages in minutes: half of them recent, so that both failing and healthy lineages occur. */
const ageArbitrary = fc.oneof(
  fc.integer({ min: 0, max: 4 * 24 * 60 }),
  fc.integer({ min: 0, max: TWO_YEARS_MINUTES }),
);

const pointSpecArbitrary = fc.record({
  state: stateArbitrary,
  ageMinutes: ageArbitrary,
  managed: fc.oneof(
    { arbitrary: fc.constant(true), weight: 4 },
    { arbitrary: fc.constant(false), weight: 1 },
  ),
  heldBy: fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 4 },
    { arbitrary: fc.uniqueArray(fc.constantFrom(...AMIS), { maxLength: 2 }), weight: 1 },
  ),
});

type PointSpec = typeof pointSpecArbitrary extends fc.Arbitrary<infer T> ? T : never;

function toPoints(specs: readonly PointSpec[]): RecoveryPoint[] {
  return specs.map((spec, index) => ({
    id: `snap-${String(index).padStart(3, '0')}`,
    state: spec.state,
    createdAt: new Date(NOW.getTime() - spec.ageMinutes * MINUTE_MS),
    managed: spec.managed,
    ...(spec.heldBy !== undefined ? { heldBy: spec.heldBy } : {}),
  }));
}

/** Points taken at distinct instants, so that "the newest" is never ambiguous. */
const pointsArbitrary = fc
  .uniqueArray(pointSpecArbitrary, { maxLength: 40, selector: (spec) => spec.ageMinutes })
  .map(toPoints);

const ruleArbitrary: fc.Arbitrary<RetentionRule> = fc.record({
  count: fc.integer({ min: 1, max: 20 }),
  minAgeDays: fc.option(fc.integer({ min: 0, max: 60 }), { nil: undefined }),
  tiers: fc.option(
    fc.record(
      {
        daily: fc.integer({ min: 1, max: 10 }),
        weekly: fc.integer({ min: 1, max: 10 }),
        monthly: fc.integer({ min: 1, max: 10 }),
        yearly: fc.integer({ min: 1, max: 5 }),
      },
      { requiredKeys: [] },
    ),
    { nil: undefined },
  ),
});

const contextArbitrary: fc.Arbitrary<LineageContext> = fc.record({
  now: fc.constant(NOW),
  timezone: fc.constantFrom(...TIMEZONES),
  orphan: fc.boolean(),
  expireOrphansAfterDays: fc.option(fc.integer({ min: 1, max: 400 }), { nil: undefined }),
  intervalMs: fc.constantFrom(HOUR_MS, DAY_MS, WEEK_MS),
});

const historyArbitrary: fc.Arbitrary<History> = fc.record({
  points: pointsArbitrary,
  rule: ruleArbitrary,
  context: contextArbitrary,
});

function newestFirst(points: readonly RecoveryPoint[]): RecoveryPoint[] {
  return [...points].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
}

function managedCompleted(points: readonly RecoveryPoint[]): RecoveryPoint[] {
  return newestFirst(points.filter((p) => p.managed && p.state === 'completed'));
}

/** An orphan whose newest completed point is older than expireOrphansAfterDays: all may go. */
function isOrphanExpired({ points, context }: History): boolean {
  const newest = managedCompleted(points)[0];
  return (
    context.orphan &&
    context.expireOrphansAfterDays !== undefined &&
    newest !== undefined &&
    NOW.getTime() - newest.createdAt.getTime() > context.expireOrphansAfterDays * DAY_MS
  );
}

/** A source still opted in whose newest managed point is in error or over 2× the interval old. */
function isFailing({ points, context }: History): boolean {
  const newest = newestFirst(points.filter((p) => p.managed))[0];
  if (context.orphan || newest === undefined) return false;
  return (
    newest.state === 'error' || NOW.getTime() - newest.createdAt.getTime() > 2 * context.intervalMs
  );
}

function pairs(history: History, plan: RetentionPlan): Array<[RecoveryPoint, RetentionDecision]> {
  return history.points.map((p, index) => [p, plan.decisions[index] as RetentionDecision]);
}

function planOf(history: History): RetentionPlan {
  return planRetention(history.points, history.rule, history.context);
}

const COUNT_REASON =
  /^kept: (newest \d+ of \d+|last completed point of an orphaned source|last completed point of a volume no longer backed up \(its instance is live\))$/;
const TIER_REASON = /^kept: (daily|weekly|monthly|yearly) tier /;

describe('Invariants: planRetention over random histories', () => {
  it('is total: exactly one decision per point, same ids, same order, each with a reason', () => {
    // Prepare
    const actions = ['keep', 'delete', 'blocked'];

    // Act & Assess
    fc.assert(
      fc.property(historyArbitrary, (history) => {
        const result = planOf(history);
        expect(result.decisions.map((d) => d.id)).toEqual(history.points.map((p) => p.id));
        for (const decision of result.decisions) {
          expect(actions).toContain(decision.action);
          expect(decision.reason.length).toBeGreaterThan(0);
        }
      }),
      PROPERTY_RUNS,
    );
  });

  it('1. deletes (or blocks) only points managed by this deployment', () => {
    // Prepare
    const touched = (decision: RetentionDecision) => decision.action !== 'keep';

    // Act & Assess
    fc.assert(
      fc.property(historyArbitrary, (history) => {
        for (const [p, decision] of pairs(history, planOf(history))) {
          if (touched(decision)) expect(p.managed).toBe(true);
          if (!p.managed) expect(decision.reason).toBe('kept: not created by this deployment');
        }
      }),
      PROPERTY_RUNS,
    );
  });

  it('2. leaves at least min(count, managed completed) completed points, unless an expired orphan', () => {
    // Prepare
    const histories = historyArbitrary.filter((history) => !isOrphanExpired(history));

    // Act & Assess
    fc.assert(
      fc.property(histories, (history) => {
        const completed = pairs(history, planOf(history)).filter(
          ([p]) => p.managed && p.state === 'completed',
        );
        const staying = completed.filter(([, decision]) => decision.action !== 'delete');
        expect(staying.length).toBeGreaterThanOrEqual(
          Math.min(history.rule.count, completed.length),
        );
      }),
      PROPERTY_RUNS,
    );
  });

  it('3. never deletes a pending point, and counts neither pending nor error points as kept', () => {
    // Prepare
    const counted = (decision: RetentionDecision) =>
      COUNT_REASON.test(decision.reason) || TIER_REASON.test(decision.reason);

    // Act & Assess
    fc.assert(
      fc.property(historyArbitrary, (history) => {
        for (const [p, decision] of pairs(history, planOf(history))) {
          if (p.state === 'pending') expect(decision.action).toBe('keep');
          if (p.state !== 'completed' || !p.managed) expect(counted(decision)).toBe(false);
        }
      }),
      PROPERTY_RUNS,
    );
  });

  it('3. deletes a managed error point only once it is over a day old, or its orphan expired', () => {
    // Prepare
    const recentError = (p: RecoveryPoint) =>
      p.managed && p.state === 'error' && NOW.getTime() - p.createdAt.getTime() <= DAY_MS;

    // Act & Assess
    fc.assert(
      fc.property(historyArbitrary, (history) => {
        if (isOrphanExpired(history)) return;
        for (const [p, decision] of pairs(history, planOf(history))) {
          if (recentError(p)) expect(decision.action).toBe('keep');
        }
      }),
      PROPERTY_RUNS,
    );
  });

  it('4. never deletes a held point: it is blocked, naming its AMIs, exactly where it would go', () => {
    // Prepare
    const unheld = (history: History): History => ({
      ...history,
      points: history.points.map(({ heldBy: _heldBy, ...rest }) => rest),
    });

    // Act & Assess
    fc.assert(
      fc.property(historyArbitrary, (history) => {
        const withHolders = planOf(history);
        const withoutHolders = planOf(unheld(history));
        history.points.forEach((p, index) => {
          const decision = withHolders.decisions[index];
          const free = withoutHolders.decisions[index] as RetentionDecision;
          const held = p.heldBy !== undefined && p.heldBy.length > 0;
          if (held && free.action === 'delete') {
            expect(decision).toEqual({
              id: p.id,
              action: 'blocked',
              reason: `${free.reason}, but held by ${p.heldBy?.join(', ')}`,
              heldBy: p.heldBy,
            });
          } else {
            expect(decision).toEqual(free);
          }
          if (held) expect(decision?.action).not.toBe('delete');
        });
      }),
      PROPERTY_RUNS,
    );
  });

  it('5. never deletes the newest managed completed point, unless an expired orphan', () => {
    // Prepare
    const histories = historyArbitrary.filter((history) => !isOrphanExpired(history));

    // Act & Assess
    fc.assert(
      fc.property(histories, (history) => {
        const newest = managedCompleted(history.points)[0];
        if (newest === undefined) return;
        const decision = planOf(history).decisions.find((d) => d.id === newest.id);
        expect(decision?.action).toBe('keep');
      }),
      PROPERTY_RUNS,
    );
  });

  it('5. deletes nothing and says why while the backups of a source still opted in are failing', () => {
    // Prepare
    const histories = historyArbitrary.filter(isFailing);

    // Act & Assess
    fc.assert(
      fc.property(histories, (history) => {
        const result = planOf(history);
        expect(result.failing).toEqual(expect.any(String));
        expect(result.decisions.every((d) => d.action === 'keep')).toBe(true);
      }),
      PROPERTY_RUNS,
    );
  });

  it('5. reports failing only for a source still opted in whose newest point is in error or overdue', () => {
    // Prepare
    const histories = historyArbitrary.filter((history) => !isFailing(history));

    // Act & Assess
    fc.assert(
      fc.property(histories, (history) => {
        expect(planOf(history).failing).toBeUndefined();
      }),
      PROPERTY_RUNS,
    );
  });

  it('decides each point the same whatever the input order, even for points taken at the same instant', () => {
    // Prepare: ages in whole hours, so that ties occur
    const tiedPoints = fc
      .array(
        pointSpecArbitrary.map((spec) => ({
          ...spec,
          ageMinutes: spec.ageMinutes - (spec.ageMinutes % 60),
        })),
        { maxLength: 30 },
      )
      .map(toPoints);
    const shuffled = fc
      .record({ points: tiedPoints, rule: ruleArbitrary, context: contextArbitrary })
      .chain((history) =>
        fc
          .shuffledSubarray(history.points, {
            minLength: history.points.length,
            maxLength: history.points.length,
          })
          .map((order) => ({ history, order })),
      );

    // Act & Assess
    fc.assert(
      fc.property(shuffled, ({ history, order }) => {
        const byId = (result: RetentionPlan) =>
          new Map(result.decisions.map((decision) => [decision.id, decision]));
        const original = byId(planOf(history));
        const reordered = byId(planRetention(order, history.rule, history.context));
        expect(reordered).toEqual(original);
      }),
      PROPERTY_RUNS,
    );
  });
});
