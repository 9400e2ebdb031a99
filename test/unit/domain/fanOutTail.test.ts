import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type BatchCheckpoint,
  type BatchStatus,
  batchRateShare,
  planInstanceBatches,
  staggeredBatchSizes,
  tailRateShare,
  unfinishedBatchesOf,
} from '../../../lib/domain/fanOut.ts';
import { fleet, planAsPlanner, SELF_IRELAND, sizesOf } from '../../support/fanOutFleet.ts';

const PROPERTY_RUNS = { numRuns: 300 };

describe('Function: staggeredBatchSizes, the staggered first round (issue 19)', () => {
  it('staggers the first round of the bench’s 5,000 instances and spreads the rest evenly', () => {
    const sizes = staggeredBatchSizes(5000, 28, 4, 200) ?? [];

    expect(sizes.slice(0, 4)).toEqual([178, 156, 134, 111]);
    expect(new Set(sizes.slice(4))).toEqual(new Set([185, 184]));
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(5000);
  });

  it.each([
    ['a single round', 400, 4, 4, 200],
    ['fewer than two rounds', 700, 7, 4, 200],
    ['one worker', 1000, 10, 1, 200],
    ['later batches that would go above the limit', 800, 8, 4, 100],
  ])('keeps equal batches for %s', (_, total, count, workers, maxBatch) => {
    expect(staggeredBatchSizes(total, count, workers, maxBatch)).toBeUndefined();
  });

  it('puts the first `workers` batches of the plan in the staggered sizes, keeping instance order and numbering', () => {
    const batches = planInstanceBatches(SELF_IRELAND, fleet(2000), new Map(), 12, 4, 200);

    expect(sizesOf(batches).slice(0, 4)).toEqual([166, 145, 125, 104]);
    expect(batches.map((b) => b.batchId)).toEqual(
      Array.from({ length: 12 }, (_, i) => `self/eu-west-1/${String(i + 1).padStart(4, '0')}`),
    );
    expect(batches.flatMap((b) => b.instanceIds ?? [])).toEqual(
      fleet(2000).map((i) => i.instanceId),
    );
  });

  describe('given any fleet, batch limit and number of workers, planned as the planner plans', () => {
    const scenario = fc.record({
      due: fc.integer({ min: 1, max: 6000 }),
      maxBatch: fc.integer({ min: 1, max: 400 }),
      workers: fc.integer({ min: 1, max: 16 }),
    });
    // Every instance in exactly one batch, in order: fanOut.test.ts, over the same range.
    const plan = planAsPlanner;

    it('makes no batch above the limit and none empty', () => {
      fc.assert(
        fc.property(scenario, (s) => {
          const sizes = sizesOf(plan(s));

          expect(Math.max(...sizes)).toBeLessThanOrEqual(s.maxBatch);
          expect(Math.min(...sizes)).toBeGreaterThan(0);
        }),
        PROPERTY_RUNS,
      );
    });

    it('plans the same batches for the same fleet', () => {
      fc.assert(
        fc.property(scenario, (s) => {
          expect(plan(s)).toEqual(plan(s));
        }),
        { numRuns: 50 },
      );
    });
  });

  it('makes the first round’s sizes distinct, and the later ones within one, when the plan has two rounds and batches of 2 × workers or more', () => {
    const scenario = fc
      .record({
        workers: fc.integer({ min: 2, max: 8 }),
        rounds: fc.integer({ min: 2, max: 8 }),
        extra: fc.integer({ min: 0, max: 7 }),
        base: fc.integer({ min: 0, max: 200 }),
      })
      .map(({ workers, rounds, extra, base }) => {
        const count = rounds * workers + Math.min(extra, workers - 1);
        const perBatch = 2 * workers + base;
        return { workers, count, total: count * perBatch + (base % count) };
      });
    fc.assert(
      fc.property(scenario, ({ workers, count, total }) => {
        const sizes = sizesOf(
          planInstanceBatches(SELF_IRELAND, fleet(total), new Map(), count, workers),
        );
        const first = sizes.slice(0, workers);
        const later = sizes.slice(workers);

        expect(new Set(first).size).toBe(workers);
        expect(Math.max(...later) - Math.min(...later)).toBeLessThanOrEqual(1);
        expect(sizes.reduce((a, b) => a + b, 0)).toBe(total);
      }),
      { numRuns: 150 },
    );
  });
});

describe('Function: tailRateShare (issue 19)', () => {
  it.each([
    [0.25, 28, 0.25],
    [0.25, 4, 0.25],
    [0.25, 3, 1 / 3],
    [0.25, 2, 0.5],
    [0.25, 1, 1],
    [0.5, 3, 0.5],
    [1, 5, 1],
    [0.25, 0, 0.25],
    [0.25, Number.NaN, 0.25],
  ])(
    'gives a batch of base share %d with %d unfinished a share of %d',
    (base, unfinished, share) => {
      expect(tailRateShare(base, unfinished)).toBeCloseTo(share);
    },
  );

  /**
   * One target's batches run by `workers` workers, each batch at most once at a time; a
   * batch finishes or goes back to the queue (retry); a worker reads the run's batches
   * at any moment, and its read may be stale: the unfinished count of any earlier moment.
   */
  const step = fc.record({
    kind: fc.constantFrom('start', 'finish', 'retry', 'read', 'read'),
    who: fc.nat(),
    staleness: fc.nat(),
  });
  const scenario = fc.record({
    batches: fc.integer({ min: 1, max: 40 }),
    workers: fc.integer({ min: 1, max: 12 }),
    steps: fc.array(step, { maxLength: 300 }),
  });

  it('never lets the shares of the batches running at once add up to more than the whole rate, whatever the order of completions and stale reads', () => {
    fc.assert(
      fc.property(scenario, ({ batches, workers, steps }) => {
        const base = batchRateShare(batches, workers) ?? 1 / workers;
        const queue = Array.from({ length: batches }, (_, i) => i);
        const running = new Map<number, { batch: number; share: number }>();
        let unfinished = batches;
        const seen: number[] = [unfinished];
        for (const { kind, who, staleness } of steps) {
          const worker = who % workers;
          const job = running.get(worker);
          if (kind === 'start' && !job && queue.length > 0) {
            running.set(worker, {
              batch: queue.shift() ?? 0,
              share: tailRateShare(base, Infinity),
            });
          } else if (kind === 'finish' && job) {
            running.delete(worker);
            unfinished -= 1;
          } else if (kind === 'retry' && job) {
            running.delete(worker);
            queue.push(job.batch);
          } else if (kind === 'read' && job) {
            const read = seen[Math.max(0, seen.length - 1 - staleness)] ?? batches;
            job.share = Math.max(job.share, tailRateShare(base, read));
          }
          seen.push(unfinished);
          const sum = [...running.values()].reduce((total, j) => total + j.share, 0);

          expect(sum).toBeLessThanOrEqual(1 + 1e-9);
        }
      }),
      PROPERTY_RUNS,
    );
  });

  it('gives the last batch running the whole rate once it reads that it is the last', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.01, max: 1, noNaN: true }), (base) => {
        expect(tailRateShare(base, 1)).toBe(1);
      }),
    );
  });
});

describe('Function: unfinishedBatchesOf (issue 19)', () => {
  const checkpoint = (batchId: string, status: BatchStatus): BatchCheckpoint => ({
    batchId,
    status,
    attempts: 1,
  });

  it('counts the pending, running and retry batches of the target only', () => {
    const read = [
      checkpoint('self/eu-west-1/0001', 'running'),
      checkpoint('self/eu-west-1/0002', 'pending'),
      checkpoint('self/eu-west-1/0003', 'retry'),
      checkpoint('self/eu-west-1/0004', 'succeeded'),
      checkpoint('self/eu-west-1/0005', 'partial'),
      checkpoint('self/eu-west-1/0006', 'failed'),
      checkpoint('self/eu-west-10/0001', 'pending'),
      checkpoint('self/us-east-1/0001', 'pending'),
      checkpoint('210987654321/eu-west-1/0001', 'running'),
    ];

    expect(unfinishedBatchesOf(SELF_IRELAND, 9, read)).toBe(3);
  });

  it('does not use a read that misses some of the run’s batches', () => {
    const read = [checkpoint('self/eu-west-1/0001', 'running')];

    expect(unfinishedBatchesOf(SELF_IRELAND, 4, read)).toBeUndefined();
  });
});
