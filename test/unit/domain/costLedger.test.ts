import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildCostLedger,
  type ChainLink,
  DAYS_PER_MONTH,
  defaultPriceTable,
  estimateFreed,
  GIB,
  gibMonths,
  type LedgerSnapshot,
  monthlyCost,
  PRICE_TABLE_VARIABLE,
  parsePriceTable,
} from '../../../lib/domain/costLedger.ts';
import { ConfigurationError } from '../../../lib/domain/errors.ts';

const PROPERTY_RUNS = { numRuns: 300 };
const NOW = new Date('2026-12-01T00:00:00Z');

/**
 * A model of EBS's block sharing: snapshot k writes a set of block addresses (a new
 * version of each); it references, for every address written at or before k, the
 * newest version up to k. Stored blocks are the versions some snapshot references.
 */
function storedVersions(writes: readonly (readonly number[])[], kept: readonly number[]): number {
  const stored = new Set<string>();
  for (const k of kept) {
    const latest = new Map<number, number>();
    for (let i = 0; i <= k; i += 1) for (const address of writes[i] ?? []) latest.set(address, i);
    for (const [address, version] of latest) stored.add(`${address}@${version}`);
  }
  return stored.size;
}

/** Exact blocks freed by deleting `deleted` (indexes) from the chain, in the model. */
function exactFreed(writes: readonly (readonly number[])[], deleted: ReadonlySet<number>): number {
  const all = writes.map((_, i) => i);
  return (
    storedVersions(writes, all) -
    storedVersions(
      writes,
      all.filter((i) => !deleted.has(i)),
    )
  );
}

/** A chain of 1-8 snapshots over 12 block addresses, each writing a distinct subset. */
const chainWrites = fc.array(fc.uniqueArray(fc.integer({ min: 0, max: 11 }), { maxLength: 12 }), {
  minLength: 1,
  maxLength: 8,
});

function links(writes: readonly (readonly number[])[]): ChainLink[] {
  return writes.map((w, i) => ({ snapshotId: `snap-${i}`, uniqueBytes: w.length }));
}

describe('Function: estimateFreed', () => {
  it('never estimates less than a deletion frees in a model of block sharing (an upper bound)', () => {
    fc.assert(
      fc.property(chainWrites, fc.array(fc.boolean(), { maxLength: 8 }), (writes, picks) => {
        // Prepare
        const deleted = new Set(writes.map((_, i) => i).filter((i) => picks[i]));
        const ids = new Set([...deleted].map((i) => `snap-${i}`));

        // Act
        const estimates = estimateFreed(links(writes), ids);

        // Assess
        const total = estimates.reduce((n, e) => n + (e.freedBytes ?? 0), 0);
        expect(total).toBeGreaterThanOrEqual(exactFreed(writes, deleted) - 1e-9);
      }),
      PROPERTY_RUNS,
    );
  });

  it('frees at most the unique bytes of what is deleted, and at most what the next snapshots rewrote', () => {
    fc.assert(
      fc.property(chainWrites, fc.integer({ min: 0, max: 7 }), (writes, at) => {
        // Prepare
        const i = at % writes.length;

        // Act
        const [estimate] = estimateFreed(links(writes), new Set([`snap-${i}`]));

        // Assess
        const unique = writes[i]?.length ?? 0;
        const next = writes[i + 1]?.length ?? unique;
        expect(estimate?.freedBytes).toBeLessThanOrEqual(Math.min(unique, next) + 1e-9);
      }),
      PROPERTY_RUNS,
    );
  });

  it('frees exactly the unique bytes of the newest snapshot when it alone is deleted', () => {
    fc.assert(
      fc.property(chainWrites, (writes) => {
        // Prepare
        const newest = writes.length - 1;

        // Act
        const [estimate] = estimateFreed(links(writes), new Set([`snap-${newest}`]));

        // Assess
        expect(estimate?.freedBytes).toBe(writes[newest]?.length);
        expect(exactFreed(writes, new Set([newest]))).toBe(writes[newest]?.length);
      }),
      PROPERTY_RUNS,
    );
  });

  it('frees of the oldest at most what the second one rewrote', () => {
    // Prepare: the oldest holds 100 blocks; the next rewrote 10 of them.
    const chain = [
      { snapshotId: 'a', uniqueBytes: 100 * GIB },
      { snapshotId: 'b', uniqueBytes: 10 * GIB },
      { snapshotId: 'c', uniqueBytes: 1 * GIB },
    ];

    // Act
    const [estimate] = estimateFreed(chain, new Set(['a']));

    // Assess
    expect(estimate).toEqual({ snapshotId: 'a', freedBytes: 10 * GIB });
  });

  it('shares a run of deletions in proportion to unique bytes, summing to the run', () => {
    fc.assert(
      fc.property(chainWrites, (writes) => {
        // Prepare: every snapshot but the newest goes.
        const ids = new Set(writes.slice(0, -1).map((_, i) => `snap-${i}`));

        // Act
        const estimates = estimateFreed(links(writes), ids);

        // Assess
        const sum = estimates.reduce((n, e) => n + (e.freedBytes ?? 0), 0);
        const written = writes.slice(0, -1).reduce((n, w) => n + w.length, 0);
        const rewritten = writes.slice(1).reduce((n, w) => n + w.length, 0);
        expect(estimates).toHaveLength(ids.size);
        expect(sum).toBeCloseTo(Math.min(written, rewritten), 9);
      }),
      PROPERTY_RUNS,
    );
  });

  it('gives no figure when a size it needs is not measured', () => {
    // Prepare
    const chain = [{ snapshotId: 'a', uniqueBytes: 5 }, { snapshotId: 'b' }];

    // Act
    const estimates = estimateFreed(chain, new Set(['a']));

    // Assess
    expect(estimates).toEqual([{ snapshotId: 'a' }]);
  });
});

describe('Function: parsePriceTable', () => {
  it("falls back to the region's published prices, named", () => {
    // Act
    const table = parsePriceTable(undefined, 'us-east-1');

    // Assess
    expect(table).toMatchObject({
      name: 'aws-published:us-east-1',
      currency: 'USD',
      standardPerGbMonth: 0.05,
      archivePerGbMonth: 0.0125,
    });
  });

  it('names the fallback when the region has no published default', () => {
    // Act
    const table = defaultPriceTable('eu-west-3');

    // Assess
    expect(table.name).toContain('no published default for eu-west-3');
    expect(table.name).toContain(PRICE_TABLE_VARIABLE);
  });

  it('reads a custom table', () => {
    // Act
    const table = parsePriceTable(
      '{"standardPerGbMonth":0.055,"archivePerGbMonth":0.01375,"currency":"EUR","name":"negotiated-2026"}',
      'eu-central-1',
    );

    // Assess
    expect(table).toMatchObject({
      name: 'negotiated-2026',
      currency: 'EUR',
      standardPerGbMonth: 0.055,
      archivePerGbMonth: 0.01375,
    });
  });

  it.each([
    ['{not json', 'is not valid JSON'],
    ['[1,2]', 'must be a JSON object'],
    ['{"standardPerGbMonth":0.05}', 'field "archivePerGbMonth"'],
    ['{"standardPerGbMonth":-1,"archivePerGbMonth":0.01}', 'field "standardPerGbMonth"'],
    ['{"standardPerGbMonth":"0.05","archivePerGbMonth":0.01}', 'field "standardPerGbMonth"'],
    [
      '{"standardPerGbMonth":0.05,"archivePerGbMonth":0.01,"currency":"dollars"}',
      'field "currency"',
    ],
    [
      '{"standardPerGbMonth":0.05,"archivePerGbMonth":0.01,"standard":1}',
      'unknown field "standard"',
    ],
  ])('rejects %s naming the variable and %s', (raw, message) => {
    // Act
    const read = () => parsePriceTable(raw, 'us-east-1');

    // Assess
    expect(read).toThrow(ConfigurationError);
    expect(read).toThrow(PRICE_TABLE_VARIABLE);
    expect(read).toThrow(message);
  });
});

function snapshot(
  overrides: Partial<LedgerSnapshot> & { unique?: number; full?: number },
): LedgerSnapshot {
  const { unique, full, ...rest } = overrides;
  return {
    snapshotId: 'snap-1',
    volumeId: 'vol-1',
    startTime: new Date(NOW.getTime() - DAYS_PER_MONTH * 86_400_000),
    ...(unique !== undefined
      ? {
          size: {
            snapshotId: rest.snapshotId ?? 'snap-1',
            volumeId: 'vol-1',
            uniqueBytes: unique,
            fullBytes: full ?? unique,
            fullFrom: 'describe',
            measuredAt: NOW.toISOString(),
          },
        }
      : {}),
    ...rest,
  };
}

describe('Function: monthlyCost', () => {
  const table = defaultPriceTable('us-east-1');

  it('prices a standard-tier snapshot on its unique bytes', () => {
    expect(monthlyCost(snapshot({ unique: 2 * GIB, full: 10 * GIB }), table)).toBeCloseTo(0.1, 9);
  });

  it('prices an archived snapshot on its full size at the archive rate', () => {
    expect(
      monthlyCost(snapshot({ unique: 2 * GIB, full: 10 * GIB, archived: true }), table),
    ).toBeCloseTo(0.125, 9);
  });

  it('gives no price to an unmeasured snapshot', () => {
    expect(monthlyCost(snapshot({}), table)).toBeUndefined();
  });
});

describe('Function: buildCostLedger', () => {
  it('sums per instance, per schedule and for the deployment, counting the unmeasured apart', () => {
    // Prepare
    const table = defaultPriceTable('us-east-1');
    const snapshots = [
      snapshot({
        snapshotId: 'a',
        instanceId: 'i-1',
        schedule: 'daily',
        unique: GIB,
        full: 4 * GIB,
      }),
      snapshot({ snapshotId: 'b', instanceId: 'i-1', schedule: 'weekly', unique: 3 * GIB }),
      snapshot({ snapshotId: 'c', instanceId: 'i-2', schedule: 'daily' }),
    ];

    // Act
    const ledger = buildCostLedger(snapshots, table, NOW);

    // Assess
    expect(ledger.byInstance['i-1']).toMatchObject({
      snapshots: 2,
      unmeasured: 0,
      fullBytes: 7 * GIB,
      uniqueBytes: 4 * GIB,
    });
    expect(ledger.byInstance['i-1']?.estimatedMonthlyCost).toBeCloseTo(0.2, 9);
    expect(ledger.byInstance['i-1']?.gibMonths).toBeCloseTo(4, 9);
    expect(ledger.byInstance['i-2']).toMatchObject({ snapshots: 1, unmeasured: 1 });
    expect(ledger.bySchedule.daily?.uniqueBytes).toBe(GIB);
    expect(ledger.deployment.estimatedMonthlyCost).toBeCloseTo(0.2, 9);
    expect(ledger).toMatchObject({ currency: 'USD', priceTable: 'aws-published:us-east-1' });
  });

  it('sums to the same deployment total however the snapshots are grouped', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            instance: fc.constantFrom('i-1', 'i-2', 'i-3'),
            unique: fc.integer({ min: 0, max: 100 * GIB }),
          }),
          { maxLength: 30 },
        ),
        (items) => {
          const ledger = buildCostLedger(
            items.map((x, i) =>
              snapshot({ snapshotId: `s${i}`, instanceId: x.instance, unique: x.unique }),
            ),
            defaultPriceTable('us-east-1'),
            NOW,
          );
          const perInstance = Object.values(ledger.byInstance).reduce(
            (n, t) => n + t.estimatedMonthlyCost,
            0,
          );
          expect(perInstance).toBeCloseTo(ledger.deployment.estimatedMonthlyCost, 6);
        },
      ),
      PROPERTY_RUNS,
    );
  });
});

describe('Function: gibMonths', () => {
  it('is GiB times months kept, and never negative', () => {
    expect(
      gibMonths(2 * GIB, new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z')),
    ).toBe(0);
    expect(gibMonths(GIB, NOW, new Date(NOW.getTime() - 1000))).toBe(0);
    expect(
      gibMonths(2 * GIB, NOW, new Date(NOW.getTime() + 2 * DAYS_PER_MONTH * 86_400_000)),
    ).toBeCloseTo(4, 9);
  });
});
