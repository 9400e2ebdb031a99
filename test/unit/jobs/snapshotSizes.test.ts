import { describe, expect, it } from 'vitest';
import { EbsThrottledError, SnapshotUnreadableError } from '../../../lib/aws/EbsDirectGateway.ts';
import { defaultPriceTable, GIB, type SnapshotSize } from '../../../lib/domain/costLedger.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import type { EbsDirectPort, SnapshotSizesPort } from '../../../lib/jobs/ports.ts';
import { silentLogger } from '../../../lib/jobs/runReport.ts';
import {
  costLedgerOf,
  costLine,
  eventCosts,
  measureSnapshotSizes,
  reportCosts,
  retentionCostEffect,
  retentionCosts,
} from '../../../lib/jobs/snapshotSizes.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const NOW = new Date('2026-12-01T00:00:00Z');

function snap(id: string, day: number, overrides: Partial<SnapshotFacts> = {}): SnapshotFacts {
  return {
    snapshotId: id,
    volumeId: 'vol-1',
    state: 'completed',
    startTime: new Date(Date.UTC(2026, 10, day)),
    tags: { 'snapkeeper:instance-id': 'i-1', 'snapkeeper:schedule': 'daily' },
    ...overrides,
  };
}

/** An EBS direct fake: bytes per snapshot and per (first, second) pair; calls recorded. */
function fakeEbs(
  full: Record<string, number>,
  changed: Record<string, number>,
  fail: (call: string) => Error | undefined = () => undefined,
): EbsDirectPort & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async snapshotBytes(id) {
      calls.push(`blocks:${id}`);
      const error = fail(`blocks:${id}`);
      if (error) throw error;
      return { bytes: full[id] ?? 0 };
    },
    async changedBytes(first, second) {
      calls.push(`changed:${first}>${second}`);
      const error = fail(`changed:${first}>${second}`);
      if (error) throw error;
      return { bytes: changed[`${first}>${second}`] ?? 0 };
    },
  };
}

function memorySizes(
  initial: SnapshotSize[] = [],
): SnapshotSizesPort & { written: SnapshotSize[] } {
  const written: SnapshotSize[] = [];
  const store = new Map(initial.map((s) => [s.snapshotId, s]));
  return {
    written,
    async recordedSizes(ids) {
      return new Map(
        ids.flatMap((id) => (store.has(id) ? [[id, store.get(id) as SnapshotSize]] : [])),
      );
    },
    async recordSizes(sizes) {
      written.push(...sizes);
      for (const s of sizes) store.set(s.snapshotId, s);
    },
  };
}

function deps(ebs: EbsDirectPort, sizes: SnapshotSizesPort) {
  return { ebs, sizes, clock: () => NOW, runId: 'run-1', logger: silentLogger };
}

describe('Function: measureSnapshotSizes', () => {
  it('measures the first snapshot by its blocks and later ones by blocks changed since the previous', async () => {
    // Prepare
    const ebs = fakeEbs({ a: 8 * GIB }, { 'a>b': GIB, 'b>c': 2 * GIB });
    const sizes = memorySizes();
    const snapshots = [
      snap('c', 3, { fullSizeBytes: 9 * GIB }),
      snap('a', 1, { fullSizeBytes: 8 * GIB }),
      snap('b', 2, { fullSizeBytes: 8 * GIB }),
    ];

    // Act
    const result = await measureSnapshotSizes(
      snapshots,
      { limit: 10, record: true },
      deps(ebs, sizes),
    );

    // Assess
    expect(ebs.calls).toEqual(['blocks:a', 'changed:a>b', 'changed:b>c']);
    expect(
      sizes.written.map((s) => [s.snapshotId, s.uniqueBytes, s.fullBytes, s.previousSnapshotId]),
    ).toEqual([
      ['a', 8 * GIB, 8 * GIB, undefined],
      ['b', GIB, 8 * GIB, 'a'],
      ['c', 2 * GIB, 9 * GIB, 'b'],
    ]);
    expect(result.deferred).toBe(0);
  });

  it('measures each snapshot once: recorded sizes are not measured again', async () => {
    // Prepare
    const ebs = fakeEbs({}, { 'a>b': GIB });
    const recorded: SnapshotSize = {
      snapshotId: 'a',
      volumeId: 'vol-1',
      fullBytes: 8,
      uniqueBytes: 8,
      fullFrom: 'describe',
      measuredAt: NOW.toISOString(),
    };
    const sizes = memorySizes([recorded]);

    // Act
    const result = await measureSnapshotSizes(
      [snap('a', 1, { fullSizeBytes: 8 }), snap('b', 2, { fullSizeBytes: 8 })],
      { limit: 10, record: true },
      deps(ebs, sizes),
    );

    // Assess
    expect(ebs.calls).toEqual(['changed:a>b']);
    expect(result.sizes.get('a')).toEqual(recorded);
  });

  it('measures a snapshot again when the predecessor it was measured against is gone', async () => {
    // Prepare: c was measured against b; b has been deleted since.
    const ebs = fakeEbs({}, { 'a>c': 3 * GIB });
    const measuredAgainstB: SnapshotSize = {
      snapshotId: 'c',
      volumeId: 'vol-1',
      fullBytes: 8,
      uniqueBytes: GIB,
      previousSnapshotId: 'b',
      fullFrom: 'describe',
      measuredAt: NOW.toISOString(),
    };
    const first: SnapshotSize = {
      ...measuredAgainstB,
      snapshotId: 'a',
      previousSnapshotId: undefined,
    };
    const sizes = memorySizes([first, measuredAgainstB]);

    // Act
    await measureSnapshotSizes(
      [snap('a', 1, { fullSizeBytes: 8 }), snap('c', 3, { fullSizeBytes: 8 })],
      { limit: 10, record: true },
      deps(ebs, sizes),
    );

    // Assess
    expect(ebs.calls).toEqual(['changed:a>c']);
    expect(sizes.written).toMatchObject([
      { snapshotId: 'c', uniqueBytes: 3 * GIB, previousSnapshotId: 'a' },
    ]);
  });

  it('never measures a pending snapshot, and compares with the previous completed one', async () => {
    // Prepare
    const ebs = fakeEbs({ a: GIB }, { 'a>c': GIB });
    const sizes = memorySizes();

    // Act
    const result = await measureSnapshotSizes(
      [
        snap('a', 1, { fullSizeBytes: GIB }),
        snap('b', 2, { state: 'pending' }),
        snap('c', 3, { fullSizeBytes: GIB }),
      ],
      { limit: 10, record: true },
      deps(ebs, sizes),
    );

    // Assess
    expect(ebs.calls).not.toContain('blocks:b');
    expect(ebs.calls).toEqual(['blocks:a', 'changed:a>c']);
    expect(result.skipped).toEqual([
      { snapshotId: 'b', reason: 'pending: measured once completed' },
    ]);
  });

  it('takes the full size from ListSnapshotBlocks when DescribeSnapshots gave none', async () => {
    // Prepare
    const ebs = fakeEbs({ b: 5 * GIB }, { 'a>b': GIB });
    const sizes = memorySizes();

    // Act
    await measureSnapshotSizes(
      [snap('a', 1, { fullSizeBytes: 4 * GIB }), snap('b', 2)],
      { limit: 10, record: true },
      deps(ebs, sizes),
    );

    // Assess
    expect(sizes.written.find((s) => s.snapshotId === 'b')).toMatchObject({
      fullBytes: 5 * GIB,
      uniqueBytes: GIB,
      fullFrom: 'blocks',
    });
  });

  it('counts a snapshot unrelated to its predecessor as a first one (its full size)', async () => {
    // Prepare
    const unrelated = new SnapshotUnreadableError(
      'ListChangedBlocks',
      'b',
      Object.assign(sdkError('ValidationException', 'not related'), {
        Reason: 'UNRELATED_SNAPSHOTS',
      }),
    );
    const ebs = fakeEbs({ a: GIB, b: 3 * GIB }, {}, (c) =>
      c === 'changed:a>b' ? unrelated : undefined,
    );
    const sizes = memorySizes();

    // Act
    await measureSnapshotSizes(
      [snap('a', 1), snap('b', 2)],
      { limit: 10, record: true },
      deps(ebs, sizes),
    );

    // Assess
    expect(sizes.written.find((s) => s.snapshotId === 'b')).toMatchObject({ uniqueBytes: 3 * GIB });
    expect(sizes.written.find((s) => s.snapshotId === 'b')?.previousSnapshotId).toBeUndefined();
  });

  it('stops at the first throttle after the SDK retries and leaves the rest for the next run', async () => {
    // Prepare
    const throttled = new EbsThrottledError(
      'ListChangedBlocks',
      sdkError('RequestThrottledException', 'slow down'),
    );
    const ebs = fakeEbs({ a: GIB }, {}, (c) => (c === 'changed:a>b' ? throttled : undefined));
    const sizes = memorySizes();

    // Act
    const result = await measureSnapshotSizes(
      [snap('a', 1, { fullSizeBytes: GIB }), snap('b', 2), snap('c', 3), snap('d', 4)],
      { limit: 10, record: true },
      deps(ebs, sizes),
    );

    // Assess
    expect(ebs.calls).toEqual(['blocks:a', 'changed:a>b']);
    expect(sizes.written.map((s) => s.snapshotId)).toEqual(['a']);
    expect(result.deferred).toBe(2);
    expect(result.warnings.join(' ')).toContain('the rest is measured by the next runs');
  });

  it('stops at a server error after the SDK retries too (the EBS direct APIs are failing)', async () => {
    // Prepare
    const failing = Object.assign(new Error('ListSnapshotBlocks failed: InternalServerException'), {
      httpStatus: 500,
    });
    const ebs = fakeEbs({}, {}, () => failing);
    const sizes = memorySizes();

    // Act
    const result = await measureSnapshotSizes(
      [snap('a', 1), snap('b', 2), snap('c', 3)],
      { limit: 10, record: true },
      deps(ebs, sizes),
    );

    // Assess
    expect(ebs.calls).toEqual(['blocks:a']);
    expect(result.deferred).toBe(2);
    expect(result.skipped).toEqual([
      { snapshotId: 'a', reason: expect.stringContaining('InternalServerException') },
    ]);
  });

  it('measures at most the limit a run, oldest first', async () => {
    // Prepare
    const ebs = fakeEbs({}, {});
    const sizes = memorySizes();
    const snapshots = ['a', 'b', 'c', 'd', 'e'].map((id, i) =>
      snap(id, i + 1, { fullSizeBytes: 1 }),
    );

    // Act
    const result = await measureSnapshotSizes(
      snapshots,
      { limit: 2, record: true },
      deps(ebs, sizes),
    );

    // Assess
    expect(sizes.written.map((s) => s.snapshotId)).toEqual(['a', 'b']);
    expect(result.deferred).toBe(3);
  });

  it('records nothing on a dry run, but still measures for the answer', async () => {
    // Prepare
    const ebs = fakeEbs({ a: GIB }, {});
    const sizes = memorySizes();

    // Act
    const result = await measureSnapshotSizes(
      [snap('a', 1)],
      { limit: 10, record: false },
      deps(ebs, sizes),
    );

    // Assess
    expect(sizes.written).toEqual([]);
    expect(result.measured).toHaveLength(1);
  });

  it('measures nothing and says so when the history cannot be read', async () => {
    // Prepare
    const ebs = fakeEbs({ a: GIB }, {});
    const sizes: SnapshotSizesPort = {
      recordedSizes: async () => {
        throw new Error('BatchGetItem failed');
      },
      recordSizes: async () => undefined,
    };

    // Act
    const result = await measureSnapshotSizes(
      [snap('a', 1)],
      { limit: 10, record: true },
      deps(ebs, sizes),
    );

    // Assess
    expect(ebs.calls).toEqual([]);
    expect(result.warnings[0]).toContain('nothing measured, costs left out');
  });
});

describe('Function: costLedgerOf', () => {
  it('prices each instance on its recorded sizes', () => {
    // Prepare
    const sizes = new Map<string, SnapshotSize>([
      [
        'a',
        {
          snapshotId: 'a',
          volumeId: 'vol-1',
          fullBytes: 4 * GIB,
          uniqueBytes: 4 * GIB,
          fullFrom: 'describe',
          measuredAt: '',
        },
      ],
      [
        'b',
        {
          snapshotId: 'b',
          volumeId: 'vol-1',
          fullBytes: 4 * GIB,
          uniqueBytes: GIB,
          fullFrom: 'describe',
          measuredAt: '',
        },
      ],
    ]);
    const keys = { instanceId: 'snapkeeper:instance-id', schedule: 'snapkeeper:schedule' };

    // Act
    const ledger = costLedgerOf(
      [snap('a', 1), snap('b', 2)],
      sizes,
      keys,
      defaultPriceTable('us-east-1'),
      NOW,
    );

    // Assess
    expect(ledger.byInstance['i-1']).toMatchObject({ fullBytes: 8 * GIB, uniqueBytes: 5 * GIB });
    expect(ledger.byInstance['i-1']?.estimatedMonthlyCost).toBeCloseTo(0.25, 9);
  });
});

describe('Function: retentionCostEffect', () => {
  it('shows what the planned deletions free and the monthly cost before and after', () => {
    // Prepare: a keeps 10 GiB; b wrote 2 GiB that c rewrote 1 GiB of; c is kept.
    const size = (id: string, unique: number): [string, SnapshotSize] => [
      id,
      {
        snapshotId: id,
        volumeId: 'vol-1',
        fullBytes: 10 * GIB,
        uniqueBytes: unique,
        fullFrom: 'describe',
        measuredAt: '',
      },
    ];
    const sizes = new Map([size('a', 10 * GIB), size('b', 2 * GIB), size('c', GIB)]);

    // Act
    const effect = retentionCostEffect(
      [snap('a', 1), snap('b', 2), snap('c', 3)],
      sizes,
      new Set(['b']),
      new Set(['a']),
      defaultPriceTable('us-east-1'),
      NOW,
    );

    // Assess
    expect(effect.freedBySnapshot).toEqual({ b: GIB, a: 2 * GIB });
    expect(effect.freedBytes).toBe(GIB);
    expect(effect.monthlyCostNow).toBeCloseTo(0.65, 9);
    expect(effect.monthlyCostAfter).toBeCloseTo(0.6, 9);
    expect(effect).toMatchObject({ currency: 'USD', priceTable: 'aws-published:us-east-1' });
    expect(effect.note).toContain('estimate');
  });
});

describe('Function: reportCosts', () => {
  const keys = { instanceId: 'snapkeeper:instance-id', schedule: 'snapkeeper:schedule' };
  const config = { keys, priceTable: defaultPriceTable('us-east-1') };
  const size = (id: string, unique: number): SnapshotSize => ({
    snapshotId: id,
    volumeId: 'vol-1',
    fullBytes: 4 * GIB,
    uniqueBytes: unique,
    fullFrom: 'describe',
    measuredAt: '',
  });

  it('gives every instance fullBytes, uniqueBytes and estimatedMonthlyCost, and names the currency and price table', async () => {
    // Prepare
    const sizes = memorySizes([size('a', 4 * GIB), size('b', GIB)]);

    // Act
    const { instances, costs } = await reportCosts(
      [{ instanceId: 'i-1' }, { instanceId: 'i-9' }],
      [snap('a', 1), snap('b', 2), snap('c', 3, { state: 'pending' })],
      sizes,
      config,
      NOW,
      silentLogger,
    );

    // Assess
    expect(instances).toEqual([
      {
        instanceId: 'i-1',
        fullBytes: 8 * GIB,
        uniqueBytes: 5 * GIB,
        estimatedMonthlyCost: 0.25,
        unmeasuredSnapshots: 1,
      },
      {
        instanceId: 'i-9',
        fullBytes: 0,
        uniqueBytes: 0,
        estimatedMonthlyCost: 0,
        unmeasuredSnapshots: 0,
      },
    ]);
    expect(costs).toMatchObject({ currency: 'USD', priceTable: 'aws-published:us-east-1' });
    expect(costs.deployment.estimatedMonthlyCost).toBe(0.25);
    expect(costs.bySchedule.daily?.snapshots).toBe(3);
  });

  it('keeps the report when sizes cannot be read: every snapshot unmeasured, and a warning', async () => {
    // Prepare
    const broken = {
      recordedSizes: async () => {
        throw new Error('ProvisionedThroughputExceededException');
      },
    };

    // Act
    const { instances, costs } = await reportCosts(
      [{ instanceId: 'i-1' }],
      [snap('a', 1)],
      broken,
      { ...config, priceTableProblem: 'Environment variable SNAPSHOT_PRICES is not valid JSON' },
      NOW,
      silentLogger,
    );

    // Assess
    expect(instances[0]).toMatchObject({ estimatedMonthlyCost: 0, unmeasuredSnapshots: 1 });
    expect(costs.warnings?.[0]).toContain('could not be read');
    expect(costs.priceTableProblem).toContain('SNAPSHOT_PRICES');
  });
});

describe('Function: retentionCosts', () => {
  const config = { priceTable: defaultPriceTable('us-east-1'), snapshotMeasureLimit: 10 };
  const snapshots = [
    snap('a', 1, { fullSizeBytes: GIB }),
    snap('b', 2, { fullSizeBytes: GIB }),
    snap('c', 3, { fullSizeBytes: GIB }),
  ];

  it('measures in a scheduled run, then gives the plan its cost effect', async () => {
    // Prepare
    const ebs = fakeEbs({ a: GIB }, { 'a>b': GIB / 2, 'b>c': GIB / 4 });
    const sizes = memorySizes();

    // Act
    const costs = await retentionCosts(
      snapshots,
      new Set(['a']),
      new Set(),
      { dryRun: false },
      {
        ebs,
        sizes,
        config,
        clock: () => NOW,
        runId: 'run-1',
        logger: silentLogger,
      },
    );

    // Assess
    expect(sizes.written).toHaveLength(3);
    expect(costs).toMatchObject({ measured: 3, deferred: 0, freedBytes: GIB / 2, currency: 'USD' });
    expect(costLine(costs as NonNullable<typeof costs>)).toMatch(
      /^cost: 0\.0875 USD a month now, 0\.0625 after this plan \(0\.5 GiB freed, an estimate; prices aws-published:us-east-1\)$/,
    );
  });

  it('measures nothing on a dry run (plan, report): no EBS call, no record, recorded sizes only', async () => {
    // Prepare
    const ebs = fakeEbs({ a: GIB }, {});
    const sizes = memorySizes();

    // Act
    const costs = await retentionCosts(
      snapshots,
      new Set(['a']),
      new Set(),
      { dryRun: true },
      {
        ebs,
        sizes,
        config,
        clock: () => NOW,
        runId: 'run-1',
        logger: silentLogger,
      },
    );

    // Assess
    expect(ebs.calls).toEqual([]);
    expect(sizes.written).toEqual([]);
    expect(costs).toMatchObject({ measured: 0, deferred: 3, unmeasured: 1 });
  });

  it('is absent without a run history, and the event leaves out the per-snapshot lists', async () => {
    // Act
    const none = await retentionCosts(
      snapshots,
      new Set(),
      new Set(),
      { dryRun: false },
      {
        config,
        clock: () => NOW,
        runId: 'run-1',
        logger: silentLogger,
      },
    );
    const costs = await retentionCosts(
      snapshots,
      new Set(['a']),
      new Set(),
      { dryRun: true },
      {
        sizes: memorySizes(),
        config,
        clock: () => NOW,
        runId: 'run-1',
        logger: silentLogger,
      },
    );

    // Assess
    expect(none).toBeUndefined();
    expect(eventCosts(costs)).not.toHaveProperty('freedBySnapshot');
    expect(eventCosts(costs)).toHaveProperty('monthlyCostNow');
  });
});
