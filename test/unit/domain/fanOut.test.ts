import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidEventError } from '../../../lib/domain/errors.ts';
import {
  type BatchCheckpoint,
  type BatchMessage,
  type BatchStatus,
  batchCountFor,
  batchRateShare,
  FINAL_BATCH_STATUSES,
  fanOutProgress,
  MIN_SPREAD_BATCH,
  parseBatchMessage,
  planInstanceBatches,
  planTargets,
  type Target,
  targetLabel,
} from '../../../lib/domain/fanOut.ts';
import { fleet, planAsPlanner, SELF_IRELAND } from '../../support/fanOutFleet.ts';

const PROPERTY_RUNS = { numRuns: 200 };
const OTHER_ACCOUNT = '210987654321';

function checkpoint(
  batchId: string,
  status: BatchStatus,
  extra: Partial<BatchCheckpoint> = {},
): BatchCheckpoint {
  return { batchId, status, attempts: 1, ...extra };
}

function invalidEvent(act: () => unknown): InvalidEventError {
  try {
    act();
  } catch (error) {
    if (error instanceof InvalidEventError) return error;
    throw error;
  }
  throw new Error('expected an InvalidEventError');
}

describe('Function: planTargets', () => {
  it('reaches every listed account in every listed region', () => {
    // Prepare
    const accounts = ['self', OTHER_ACCOUNT];
    const regions = ['eu-west-1', 'us-east-1'];

    // Act
    const targets = planTargets(accounts, regions);

    // Assess
    expect(targets).toEqual([
      { account: 'self', region: 'eu-west-1' },
      { account: 'self', region: 'us-east-1' },
      { account: OTHER_ACCOUNT, region: 'eu-west-1' },
      { account: OTHER_ACCOUNT, region: 'us-east-1' },
    ]);
  });

  it('lists an account or region given twice only once', () => {
    // Prepare
    const accounts = ['self', 'self', OTHER_ACCOUNT];
    const regions = ['eu-west-1', 'eu-west-1'];

    // Act
    const targets = planTargets(accounts, regions);

    // Assess
    expect(targets).toEqual([
      { account: 'self', region: 'eu-west-1' },
      { account: OTHER_ACCOUNT, region: 'eu-west-1' },
    ]);
  });

  it.each(['cn-north-1', 'us-gov-west-1', 'ap-southeast-2', 'eu-central-2'])(
    'accepts the region %s',
    (region) => {
      // Prepare
      const accounts = ['self'];

      // Act
      const targets = planTargets(accounts, [region]);

      // Assess
      expect(targets).toEqual([{ account: 'self', region }]);
    },
  );

  it.each([
    ['an 11-digit account', ['21098765432'], ['eu-west-1'], '"21098765432"'],
    ['a 13-digit account', ['2109876543210'], ['eu-west-1'], '"2109876543210"'],
    ['an account alias', ['prod-account'], ['eu-west-1'], '"prod-account"'],
    ['"Self" in capitals', ['Self'], ['eu-west-1'], '"Self"'],
    ['an empty account', [''], ['eu-west-1'], '""'],
    ['a region in capitals', ['self'], ['EU-WEST-1'], '"EU-WEST-1"'],
    ['an availability zone', ['self'], ['eu-west-1a'], '"eu-west-1a"'],
    ['a region without its number', ['self'], ['eu-west'], '"eu-west"'],
  ])('rejects %s, naming it', (_case, accounts, regions, named) => {
    // Prepare
    const act = () => planTargets(accounts, regions);

    // Act
    const error = invalidEvent(act);

    // Assess
    expect(error.message).toBe(
      `${named} is not a 12-digit account id, "self", or a region name like eu-west-1`,
    );
  });

  it('names the bad account before a bad region', () => {
    // Prepare
    const act = () => planTargets(['self', 'nope'], ['moon-1']);

    // Act
    const error = invalidEvent(act);

    // Assess
    expect(error.message).toMatch(/^"nope" /);
  });
});

describe('Function: targetLabel', () => {
  it.each([
    [{ account: 'self', region: 'eu-west-1' }, 'self/eu-west-1'],
    [{ account: OTHER_ACCOUNT, region: 'us-gov-west-1' }, `${OTHER_ACCOUNT}/us-gov-west-1`],
  ])('labels %j as %s', (target, label) => {
    // Prepare
    const given: Target = target;

    // Act
    const result = targetLabel(given);

    // Assess
    expect(result).toBe(label);
  });
});

describe('Function: planInstanceBatches', () => {
  it('splits the instances in order into the given number of batches, sizes differing by one at most, numbered per target', () => {
    // Prepare
    const instances = fleet(5);

    // Act
    const batches = planInstanceBatches(SELF_IRELAND, instances, new Map(), 3);

    // Assess
    expect(batches).toEqual([
      {
        batchId: 'self/eu-west-1/0001',
        target: SELF_IRELAND,
        instanceIds: ['i-00000001', 'i-00000002'],
      },
      {
        batchId: 'self/eu-west-1/0002',
        target: SELF_IRELAND,
        instanceIds: ['i-00000003', 'i-00000004'],
      },
      { batchId: 'self/eu-west-1/0003', target: SELF_IRELAND, instanceIds: ['i-00000005'] },
    ]);
  });

  it('gives each batch the skip tags of its own volumes only, and none when it has none', () => {
    // Prepare
    const instances = [
      { instanceId: 'i-00000001', volumeIds: ['vol-a', 'vol-b'] },
      { instanceId: 'i-00000002', volumeIds: ['vol-c'] },
      { instanceId: 'i-00000003', volumeIds: ['vol-d'] },
    ];
    const volumeTags = new Map([
      ['vol-b', { 'snapkeeper:skip': 'true' }],
      ['vol-d', { 'snapkeeper:skip': 'false' }],
      ['vol-elsewhere', { 'snapkeeper:skip': 'true' }],
    ]);

    // Act
    const batches = planInstanceBatches(SELF_IRELAND, instances, volumeTags, 3);

    // Assess
    expect(batches.map((b) => b.volumeTags)).toEqual([
      { 'vol-b': { 'snapkeeper:skip': 'true' } },
      undefined,
      { 'vol-d': { 'snapkeeper:skip': 'false' } },
    ]);
    expect('volumeTags' in (batches[1] ?? {})).toBe(false);
  });

  it('plans no batch for a target with no instance due', () => {
    expect(planInstanceBatches(SELF_IRELAND, fleet(0), new Map(), 4)).toEqual([]);
  });

  it.each([0, -3, 0.5, Number.NaN])('treats a batch count of %d as one batch', (count) => {
    // Act
    const batches = planInstanceBatches(SELF_IRELAND, fleet(3), new Map(), count);

    // Assess
    expect(batches.map((b) => b.instanceIds)).toEqual([['i-00000001', 'i-00000002', 'i-00000003']]);
  });

  it('never makes more batches than instances', () => {
    // Act
    const batches = planInstanceBatches(SELF_IRELAND, fleet(2), new Map(), 10);

    // Assess
    expect(batches.map((b) => b.instanceIds?.length)).toEqual([1, 1]);
  });

  it('numbers batches past 9999 without breaking their uniqueness', () => {
    // Act
    const batches = planInstanceBatches(SELF_IRELAND, fleet(10_001), new Map(), 10_001);

    // Assess
    expect(batches.at(-1)?.batchId).toBe('self/eu-west-1/10001');
    expect(new Set(batches.map((b) => b.batchId)).size).toBe(10_001);
  });

  describe('given any fleet and batch count', () => {
    const scenario = fc
      .record({
        size: fc.nat(120),
        count: fc.integer({ min: 1, max: 40 }),
        volumesPerInstance: fc.integer({ min: 1, max: 3 }),
        tagged: fc.array(fc.boolean(), { minLength: 360, maxLength: 360 }),
        account: fc.constantFrom('self', OTHER_ACCOUNT),
      })
      .map(({ size, count, volumesPerInstance, tagged, account }) => {
        const instances = fleet(size).map(({ instanceId }) => ({
          instanceId,
          volumeIds: Array.from({ length: volumesPerInstance }, (_, v) => `${instanceId}-vol${v}`),
        }));
        const volumeTags = new Map<string, Record<string, string>>();
        let index = 0;
        for (const instance of instances) {
          for (const volumeId of instance.volumeIds) {
            if (tagged[index % tagged.length]) volumeTags.set(volumeId, { skip: volumeId });
            index += 1;
          }
        }
        volumeTags.set('vol-of-no-due-instance', { skip: 'true' });
        const target: Target = { account, region: 'eu-west-1' };
        return { target, instances, volumeTags, count };
      });

    it('puts every instance in exactly one batch, in the fleet order', () => {
      fc.assert(
        fc.property(scenario, ({ target, instances, volumeTags, count }) => {
          const batches = planInstanceBatches(target, instances, volumeTags, count);

          expect(batches.flatMap((b) => b.instanceIds ?? [])).toEqual(
            instances.map((i) => i.instanceId),
          );
        }),
        PROPERTY_RUNS,
      );
    });

    it('makes exactly the count asked (at most one per instance), none empty, sizes within one', () => {
      fc.assert(
        fc.property(scenario, ({ target, instances, volumeTags, count }) => {
          const batches = planInstanceBatches(target, instances, volumeTags, count);

          expect(batches).toHaveLength(Math.min(count, instances.length));
          const sizes = batches.map((b) => b.instanceIds?.length ?? 0);
          for (const size of sizes) expect(size).toBeGreaterThanOrEqual(1);
          if (sizes.length > 0)
            expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        }),
        PROPERTY_RUNS,
      );
    });

    it('gives every batch a unique id under its target label', () => {
      fc.assert(
        fc.property(scenario, ({ target, instances, volumeTags, count }) => {
          const batches = planInstanceBatches(target, instances, volumeTags, count);

          expect(new Set(batches.map((b) => b.batchId)).size).toBe(batches.length);
          for (const batch of batches) {
            expect(batch.batchId).toMatch(new RegExp(`^${targetLabel(target)}/\\d{4,}$`));
            expect(batch.target).toEqual(target);
          }
        }),
        PROPERTY_RUNS,
      );
    });

    it("carries exactly the skip tags of the batch's own volumes", () => {
      fc.assert(
        fc.property(scenario, ({ target, instances, volumeTags, count }) => {
          const batches = planInstanceBatches(target, instances, volumeTags, count);

          for (const batch of batches) {
            const own = instances
              .filter((i) => batch.instanceIds?.includes(i.instanceId))
              .flatMap((i) => i.volumeIds)
              .filter((volumeId) => volumeTags.has(volumeId));
            expect(Object.keys(batch.volumeTags ?? {}).sort()).toEqual(own.sort());
            for (const [volumeId, tags] of Object.entries(batch.volumeTags ?? {})) {
              expect(tags).toEqual(volumeTags.get(volumeId));
            }
          }
        }),
        PROPERTY_RUNS,
      );
    });

    it('always plans the same batches for the same fleet', () => {
      fc.assert(
        fc.property(scenario, ({ target, instances, volumeTags, count }) => {
          expect(planInstanceBatches(target, instances, volumeTags, count)).toEqual(
            planInstanceBatches(target, instances, volumeTags, count),
          );
        }),
        PROPERTY_RUNS,
      );
    });
  });
});

describe('Function: batchCountFor', () => {
  it.each([
    // due, maxBatch, workers, batches
    [2000, 200, 4, 12],
    [1000, 200, 4, 8],
    [800, 200, 4, 4],
    [1600, 200, 4, 8],
    [400, 200, 4, 4],
    [300, 200, 4, 3],
    [100, 200, 4, 1],
    [150, 200, 1, 1],
    [400, 200, 1, 2],
    [401, 200, 1, 3],
    [4, 200, 3, 1],
    [5, 2, 4, 3],
    [2401, 200, 50, 24],
    [10_000, 200, 50, 50],
  ])(
    'makes %i due instances, at most %i a batch, over %i workers into %i batches',
    (due, maxBatch, workers, batches) => {
      expect(batchCountFor(due, maxBatch, workers)).toBe(batches);
    },
  );

  it('never spreads a target into batches of fewer than 100 instances unless the limit forces it', () => {
    expect(batchCountFor(399, 200, 8)).toBe(3);
    expect(batchCountFor(399, 50, 8)).toBe(8);
  });

  it('makes no batch when nothing is due', () => {
    expect(batchCountFor(0, 200, 4)).toBe(0);
  });

  it.each([
    [0, 'no workers'],
    [-2, 'a negative number of workers'],
    [0.4, 'a fraction of a worker'],
  ])('treats %d workers (%s) as one', (workers) => {
    expect(batchCountFor(300, 200, workers)).toBe(batchCountFor(300, 200, 1));
  });

  describe('given any fleet, batch limit and number of workers', () => {
    const scenario = fc.record({
      due: fc.integer({ min: 1, max: 5000 }),
      maxBatch: fc.integer({ min: 1, max: 200 }),
      workers: fc.integer({ min: 1, max: 64 }),
    });

    it('plans whole rounds of the workers whenever batches of 100 or more can fill them', () => {
      fc.assert(
        fc.property(scenario, ({ due, maxBatch, workers }) => {
          const rounds = Math.ceil(Math.ceil(due / maxBatch) / workers);
          fc.pre(due >= rounds * workers * MIN_SPREAD_BATCH);

          expect(batchCountFor(due, maxBatch, workers)).toBe(rounds * workers);
        }),
        PROPERTY_RUNS,
      );
    });

    it('costs at most one batch per 100 instances beyond what the batch limit forces', () => {
      fc.assert(
        fc.property(scenario, ({ due, maxBatch, workers }) => {
          const count = batchCountFor(due, maxBatch, workers);
          const forced = Math.ceil(due / maxBatch);

          expect(count).toBeGreaterThanOrEqual(forced);
          if (count > forced) expect(count).toBeLessThanOrEqual(Math.floor(due / MIN_SPREAD_BATCH));
        }),
        PROPERTY_RUNS,
      );
    });

    it('puts no more than the batch limit in a batch, and needs no more rounds than the limit forces', () => {
      fc.assert(
        fc.property(scenario, ({ due, maxBatch, workers }) => {
          const instances = fleet(Math.min(due, 1500));
          const count = batchCountFor(instances.length, maxBatch, workers);
          const batches = planInstanceBatches(SELF_IRELAND, instances, new Map(), count);

          for (const batch of batches) {
            expect(batch.instanceIds?.length).toBeLessThanOrEqual(maxBatch);
          }
          const rounds = Math.ceil(batches.length / workers);
          expect(rounds).toBe(Math.ceil(Math.ceil(instances.length / maxBatch) / workers));
        }),
        PROPERTY_RUNS,
      );
    });
  });
});

describe('Function: batchRateShare', () => {
  it.each([
    // batches, workers, share
    [1, 4, 1],
    [2, 4, 1 / 2],
    [3, 4, 1 / 3],
    [4, 4, undefined],
    [8, 4, undefined],
    [1, 1, undefined],
    [0, 4, undefined],
    [3, 0.4, undefined],
  ])('gives each of %i batches over %d workers a share of %s', (batches, workers, share) => {
    expect(batchRateShare(batches, workers)).toBe(share);
  });
});

describe('The fan-out’s tail: no worker’s share of the rate left unused', () => {
  it('gives a single batch the whole rate when the workers could run four', () => {
    const [batch] = planInstanceBatches(SELF_IRELAND, fleet(200), new Map(), 1, 4);

    expect(batch?.rateShare).toBe(1);
  });

  it('keeps the worker’s own share in a plan of whole rounds, and when the workers are not known', () => {
    const rounds = planInstanceBatches(SELF_IRELAND, fleet(1000), new Map(), 8, 4);
    const unknown = planInstanceBatches(SELF_IRELAND, fleet(200), new Map(), 1);

    expect(rounds.every((b) => b.rateShare === undefined)).toBe(true);
    expect(unknown[0]?.rateShare).toBeUndefined();
  });

  it('sends a batch with a share that the worker’s message contract reads as it was sent', () => {
    const [batch] = planInstanceBatches(SELF_IRELAND, fleet(300), new Map(), 3, 4);
    const message = parseBatchMessage({
      runId: 'r-1',
      job: 'backup',
      schedule: 'daily',
      slot: '2026-12-06T03:00:00Z',
      dryRun: false,
      batches: 3,
      ...batch,
    });

    expect(message.rateShare).toBeCloseTo(1 / 3);
  });

  describe('given any fleet, batch limit and number of workers, planned as the planner plans', () => {
    // Up to 6,000 instances: plans of two rounds and more, whose first round is staggered.
    const scenario = fc.record({
      due: fc.integer({ min: 1, max: 6000 }),
      maxBatch: fc.integer({ min: 1, max: 400 }),
      workers: fc.integer({ min: 1, max: 64 }),
    });
    const plan = planAsPlanner;

    it('loses and doubles no instance, and keeps their order', () => {
      fc.assert(
        fc.property(scenario, (s) => {
          const ids = plan(s).flatMap((b) => b.instanceIds ?? []);

          expect(ids).toEqual(fleet(s.due).map((i) => i.instanceId));
        }),
        PROPERTY_RUNS,
      );
    });

    it('never lets the batches that can run at once take more than the whole rate', () => {
      fc.assert(
        fc.property(scenario, (s) => {
          const batches = plan(s);
          const share = (b: (typeof batches)[number]) => b.rateShare ?? 1 / s.workers;
          // Any `workers` batches may run at once: the largest such set of shares.
          const atOnce = batches
            .map(share)
            .sort((a, b) => b - a)
            .slice(0, s.workers)
            .reduce((a, b) => a + b, 0);

          expect(atOnce).toBeLessThanOrEqual(1 + 1e-9);
        }),
        PROPERTY_RUNS,
      );
    });

    it('leaves no share unused when the plan is a single round of fewer batches than workers', () => {
      fc.assert(
        fc.property(scenario, (s) => {
          const batches = plan(s);
          fc.pre(batches.length < s.workers);
          const total = batches.reduce((sum, b) => sum + (b.rateShare ?? 0), 0);

          expect(total).toBeCloseTo(1);
          expect(new Set(batches.map((b) => b.rateShare)).size).toBe(1);
        }),
        PROPERTY_RUNS,
      );
    });

    it('plans every round with at most `workers` batches, none above the limit, near-equal after a staggered first round', () => {
      fc.assert(
        fc.property(scenario, (s) => {
          const batches = plan(s);
          const sizes = batches.map((b) => b.instanceIds?.length ?? 0);
          const rounds = Math.ceil(batches.length / s.workers);
          // A plan of two rounds or more may stagger its first round (issue 19).
          const even = batches.length >= 2 * s.workers ? sizes.slice(s.workers) : sizes;

          expect(Math.max(...even) - Math.min(...even)).toBeLessThanOrEqual(1);
          expect(Math.max(...sizes)).toBeLessThanOrEqual(s.maxBatch);
          expect(rounds * s.workers).toBeGreaterThanOrEqual(batches.length);
          expect(Math.min(...sizes)).toBeGreaterThan(0);
        }),
        PROPERTY_RUNS,
      );
    });
  });
});

describe('Function: fanOutProgress', () => {
  it('is running while a batch is not final, with the finished ones counted', () => {
    // Prepare
    const checkpoints = [
      checkpoint('self/eu-west-1/0001', 'succeeded', { counts: { snapshots: 4 } }),
      checkpoint('self/eu-west-1/0002', 'retry', { counts: { snapshots: 1, failed: 1 } }),
      checkpoint('self/eu-west-1/0003', 'pending'),
    ];

    // Act
    const progress = fanOutProgress(3, checkpoints);

    // Assess
    expect(progress).toEqual({
      status: 'running',
      batches: 3,
      finished: 1,
      counts: { snapshots: 5, failed: 1, batches: 3, batchesFailed: 0 },
    });
  });

  it('is running while an expected batch has no checkpoint yet', () => {
    // Prepare
    const checkpoints = [checkpoint('a', 'succeeded'), checkpoint('b', 'succeeded')];

    // Act
    const progress = fanOutProgress(3, checkpoints);

    // Assess
    expect(progress.status).toBe('running');
    expect(progress.finished).toBe(2);
  });

  it('succeeds when every batch succeeded, summing their counts', () => {
    // Prepare
    const checkpoints = [
      checkpoint('a', 'succeeded', { counts: { due: 200, snapshots: 400 } }),
      checkpoint('b', 'succeeded', { counts: { due: 100, snapshots: 150, covered: 2 } }),
    ];

    // Act
    const progress = fanOutProgress(2, checkpoints);

    // Assess
    expect(progress).toEqual({
      status: 'succeeded',
      batches: 2,
      finished: 2,
      counts: { due: 300, snapshots: 550, covered: 2, batches: 2, batchesFailed: 0 },
    });
  });

  it('fails when every batch failed, naming the first two problems', () => {
    // Prepare
    const checkpoints = [
      checkpoint('1/eu-west-1/list', 'failed', { errorSummary: 'AccessDenied: not authorized' }),
      checkpoint('2/eu-west-1/0001', 'failed', { errorSummary: 'Throttling: slow down' }),
      checkpoint('3/eu-west-1/0001', 'failed', { errorSummary: 'InternalError: oops' }),
    ];

    // Act
    const progress = fanOutProgress(3, checkpoints);

    // Assess
    expect(progress).toEqual({
      status: 'failed',
      batches: 3,
      finished: 3,
      counts: { batches: 3, batchesFailed: 3 },
      errorSummary:
        '3 batch(es) with problems; 1/eu-west-1/list: AccessDenied: not authorized; 2/eu-west-1/0001: Throttling: slow down',
    });
  });

  it('is partial when some batches failed and others succeeded', () => {
    // Prepare
    const checkpoints = [
      checkpoint('a', 'succeeded'),
      checkpoint('b', 'failed', { errorSummary: 'AccessDenied: no role' }),
    ];

    // Act
    const progress = fanOutProgress(2, checkpoints);

    // Assess
    expect(progress.status).toBe('partial');
    expect(progress.counts).toEqual({ batches: 2, batchesFailed: 1 });
    expect(progress.errorSummary).toBe('1 batch(es) with problems; b: AccessDenied: no role');
  });

  it('is partial when every batch is partial', () => {
    // Prepare
    const checkpoints = [checkpoint('a', 'partial'), checkpoint('b', 'partial')];

    // Act
    const progress = fanOutProgress(2, checkpoints);

    // Assess
    expect(progress.status).toBe('partial');
    expect(progress.errorSummary).toBeUndefined();
    expect('errorSummary' in progress).toBe(false);
  });

  it('leaves the problems of succeeded batches out of the summary', () => {
    // Prepare
    const checkpoints = [checkpoint('a', 'succeeded', { errorSummary: 'a warning' })];

    // Act
    const progress = fanOutProgress(1, checkpoints);

    // Assess
    expect(progress.status).toBe('succeeded');
    expect('errorSummary' in progress).toBe(false);
  });

  it('caps the listed problems at 800 characters', () => {
    // Prepare
    const long = 'x'.repeat(2000);
    const checkpoints = [
      checkpoint('a', 'failed', { errorSummary: long }),
      checkpoint('b', 'failed', { errorSummary: long }),
    ];

    // Act
    const progress = fanOutProgress(2, checkpoints);

    // Assess
    expect(progress.errorSummary).toBe(`2 batch(es) with problems; a: ${'x'.repeat(797)}`);
  });

  it('succeeds at once when no batch is expected', () => {
    // Prepare
    const checkpoints: BatchCheckpoint[] = [];

    // Act
    const progress = fanOutProgress(0, checkpoints);

    // Assess
    expect(progress).toEqual({
      status: 'succeeded',
      batches: 0,
      finished: 0,
      counts: { batches: 0, batchesFailed: 0 },
    });
  });

  describe('given any batch checkpoints', () => {
    const allStatuses: BatchStatus[] = [
      'pending',
      'running',
      'retry',
      'succeeded',
      'partial',
      'failed',
    ];
    const checkpoints = fc
      .array(
        fc.record({
          status: fc.constantFrom(...allStatuses),
          counts: fc.option(
            fc.record({ snapshots: fc.nat(400), failed: fc.nat(5), due: fc.nat(200) }),
            { nil: undefined },
          ),
          errorSummary: fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }),
        }),
        { minLength: 1, maxLength: 30 },
      )
      .map((items) =>
        items.map(
          (item, index): BatchCheckpoint => ({
            batchId: `self/eu-west-1/${String(index + 1).padStart(4, '0')}`,
            attempts: 1,
            ...item,
          }),
        ),
      );
    const isFinal = (c: BatchCheckpoint) => FINAL_BATCH_STATUSES.includes(c.status);

    it('is running exactly until every expected batch is final', () => {
      fc.assert(
        fc.property(checkpoints, fc.nat(5), (items, missing) => {
          const expected = items.length + missing;

          const progress = fanOutProgress(expected, items);

          const allFinal = missing === 0 && items.every(isFinal);
          expect(progress.status === 'running').toBe(!allFinal);
          expect(progress.finished).toBe(items.filter(isFinal).length);
          expect(progress.batches).toBe(expected);
        }),
        PROPERTY_RUNS,
      );
    });

    it('succeeds only when every batch succeeded, and fails only when every batch failed', () => {
      fc.assert(
        fc.property(checkpoints, (items) => {
          const progress = fanOutProgress(items.length, items);

          expect(progress.status === 'succeeded').toBe(
            items.every((c) => c.status === 'succeeded'),
          );
          expect(progress.status === 'failed').toBe(items.every((c) => c.status === 'failed'));
          if (items.every(isFinal)) {
            expect(progress.status).not.toBe('running');
          }
        }),
        PROPERTY_RUNS,
      );
    });

    it('sums every count over the batches and counts the failed batches', () => {
      fc.assert(
        fc.property(checkpoints, fc.nat(3), (items, missing) => {
          const progress = fanOutProgress(items.length + missing, items);

          for (const name of ['snapshots', 'failed', 'due']) {
            const sum = items.reduce(
              (n, c) => n + ((c.counts as Record<string, number> | undefined)?.[name] ?? 0),
              0,
            );
            expect(progress.counts[name] ?? 0).toBe(sum);
          }
          expect(progress.counts.batches).toBe(items.length + missing);
          expect(progress.counts.batchesFailed).toBe(
            items.filter((c) => c.status === 'failed').length,
          );
        }),
        PROPERTY_RUNS,
      );
    });
  });
});

describe('Function: parseBatchMessage', () => {
  const valid: BatchMessage = {
    runId: '20261123T030007Z-a1b2c3d4',
    job: 'backup',
    schedule: 'daily',
    slot: '2026-11-23T03:00:00Z',
    dryRun: false,
    batches: 3,
    batchId: `${OTHER_ACCOUNT}/eu-west-1/0002`,
    target: { account: OTHER_ACCOUNT, region: 'eu-west-1' },
    instanceIds: ['i-0123456789abcdef0', 'i-12345678'],
    volumeTags: { 'vol-1': { 'snapkeeper:skip': 'true' } },
    reconcile: true,
  };

  function without(field: keyof BatchMessage): Record<string, unknown> {
    const copy: Record<string, unknown> = { ...valid };
    delete copy[field];
    return copy;
  }

  it('reads a retention batch with its own rate share', () => {
    expect(
      parseBatchMessage({ ...without('instanceIds'), job: 'retention', rateShare: 1 }),
    ).toMatchObject({
      job: 'retention',
      rateShare: 1,
    });
  });

  it.each([0, 1.5, -0.25, 'all'])('rejects a rate share of %s by name', (rateShare) => {
    expect(() => parseBatchMessage({ ...valid, rateShare })).toThrow(
      /^fan-out batch message: rateShare /,
    );
  });

  it('reads a valid backup message as it was sent', () => {
    // Prepare
    const body: unknown = JSON.parse(JSON.stringify(valid));

    // Act
    const message = parseBatchMessage(body);

    // Assess
    expect(message).toEqual(valid);
  });

  it('reads a retention message without instances', () => {
    // Prepare
    const body = {
      ...without('instanceIds'),
      job: 'retention',
      batchId: 'self/eu-west-1/0001',
      target: SELF_IRELAND,
    };

    // Act
    const message = parseBatchMessage(body);

    // Assess
    expect(message.job).toBe('retention');
    expect(message.instanceIds).toBeUndefined();
  });

  it('reads a message without the optional volume tags and reconcile flag', () => {
    // Prepare
    const body = { ...without('volumeTags'), reconcile: undefined };

    // Act
    const message = parseBatchMessage(body);

    // Assess
    expect(message.volumeTags).toBeUndefined();
    expect(message.reconcile).toBeUndefined();
  });

  it('rejects a backup message without instance ids', () => {
    // Prepare
    const body = without('instanceIds');

    // Act
    const error = invalidEvent(() => parseBatchMessage(body));

    // Assess
    expect(error.message).toBe('fan-out batch message: instanceIds is required for a backup batch');
  });

  it.each([
    ['runId', { runId: '' }],
    ['runId', { runId: 42 }],
    ['job', { job: 'copy' }],
    ['schedule', { schedule: '' }],
    ['slot', { slot: undefined }],
    ['dryRun', { dryRun: 'false' }],
    ['batches', { batches: 0 }],
    ['batches', { batches: 1.5 }],
    ['batches', { batches: '3' }],
    ['batchId', { batchId: '' }],
    ['target', { target: undefined }],
    ['target.account', { target: { account: '12345', region: 'eu-west-1' } }],
    ['target.region', { target: { account: 'self', region: 'Ireland' } }],
    ['instanceIds', { instanceIds: 'i-12345678' }],
    ['instanceIds.1', { instanceIds: ['i-12345678', 'i-xyz'] }],
    ['instanceIds.0', { instanceIds: ['vol-12345678'] }],
    ['volumeTags.vol-1', { volumeTags: { 'vol-1': 'true' } }],
    ['reconcile', { reconcile: 'yes' }],
  ])('rejects a bad %s, naming it', (field, change) => {
    // Prepare
    const body = { ...valid, ...change };

    // Act
    const error = invalidEvent(() => parseBatchMessage(body));

    // Assess
    expect(error.message.startsWith(`fan-out batch message: ${field} `)).toBe(true);
  });

  it.each([
    ['an instance id', { instanceIds: ['i-xyz'] }, 'instanceIds.0 must be an instance id'],
    [
      'an account',
      { target: { account: 'prod', region: 'eu-west-1' } },
      'target.account must be a 12-digit account id or "self"',
    ],
    [
      'a region',
      { target: { account: 'self', region: 'eu-west' } },
      'target.region must be a region name like eu-west-1',
    ],
  ])('explains what %s must be', (_case, change, explained) => {
    // Prepare
    const body = { ...valid, ...change };

    // Act
    const error = invalidEvent(() => parseBatchMessage(body));

    // Assess
    expect(error.message).toBe(`fan-out batch message: ${explained}`);
  });

  it.each([
    ['null', null],
    ['a string', 'self/eu-west-1/0001'],
    ['an array', [valid]],
  ])('rejects %s as a message', (_case, body) => {
    // Prepare
    const act = () => parseBatchMessage(body);

    // Act
    const error = invalidEvent(act);

    // Assess
    expect(error.message.startsWith('fan-out batch message: (message) ')).toBe(true);
  });
});
