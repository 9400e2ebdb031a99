import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ProxyCall, ProxyRecord } from '../../../harness/faultProxy.ts';
import { BENCH_JOBS, type BenchJob } from '../../../scripts/bench/benchJobs.ts';
import {
  BENCH_LIMITS,
  BENCH_SIZES,
  type BenchLimit,
  benchMatrix,
  chooseTimeScale,
  estimateSeconds,
  LIMIT_FACTOR,
  localCallsPerSecond,
  MAX_LOCAL_WRITES_PER_SECOND,
  MAX_TIME_SCALE,
  MIN_TIME_SCALE,
  parseBenchLimits,
} from '../../../scripts/bench/benchMatrix.ts';
import {
  formatBenchTable,
  limitLabel,
  missedGoals,
  type TableRow,
} from '../../../scripts/bench/benchTable.ts';
import { ec2BucketRule, rateOf } from '../../../scripts/bench/tokenBucketProxy.ts';

const PROPERTY_RUNS = { numRuns: 200 };
const job = fc.constantFrom<BenchJob>(...BENCH_JOBS);
const limit = fc.constantFrom<BenchLimit>(...BENCH_LIMITS);

describe('npm run bench: the matrix of one run', () => {
  it('measures every job at 1,000 and 5,000 instances, at the default and a raised limit, by default', () => {
    const rows = benchMatrix(BENCH_JOBS, [...BENCH_SIZES], BENCH_LIMITS);

    expect(rows).toHaveLength(4 * 2 * 2);
    expect(new Set(rows.map((r) => `${r.job}/${r.size}/${r.limit}`)).size).toBe(16);
    expect(LIMIT_FACTOR).toEqual({ default: 1, raised: 4 });
  });

  it('runs size by size, the limits within a size, the jobs in their order within a limit', () => {
    const rows = benchMatrix(['copies', 'backup'], [1000, 5000], ['raised', 'default']);

    expect(rows.map((r) => `${r.size} ${r.limit} ${r.job}`)).toEqual([
      '1000 default backup',
      '1000 default copies',
      '1000 raised backup',
      '1000 raised copies',
      '5000 default backup',
      '5000 default copies',
      '5000 raised backup',
      '5000 raised copies',
    ]);
  });

  it('runs a subset asked by --jobs, --sizes and --limits', () => {
    expect(benchMatrix(['retention'], [1000], parseBenchLimits('raised'))).toEqual([
      { job: 'retention', size: 1000, limit: 'raised' },
    ]);
  });

  it('refuses an unknown limit by name, listing the limits it takes', () => {
    expect(() => parseBenchLimits('default,x4')).toThrow(
      '--limits takes default, raised; got "x4"',
    );
  });
});

describe('npm run bench: the time scale of a row', () => {
  it('keeps the limit and the time scale apart: a raised limit runs at a smaller time scale', () => {
    const atDefault = chooseTimeScale(100, 'backup', 'default');
    const raised = chooseTimeScale(100, 'backup', 'raised');

    expect(atDefault).toEqual({ timeScale: 8, localCalls: 43.2, headroom: 100 / 43.2 });
    expect(raised).toEqual({ timeScale: 2, localCalls: 43.2, headroom: 100 / 43.2 });
  });

  it('counts both buckets of AMI retirement, whose deletions run beside its deregistrations', () => {
    expect(localCallsPerSecond('amis', 'default', 1)).toBeCloseTo(
      2 * localCallsPerSecond('retention', 'default', 1),
    );
    expect(chooseTimeScale(100, 'amis', 'raised')).toMatchObject({ timeScale: 1 });
    expect(chooseTimeScale(60, 'amis', 'raised')).toMatchObject({ timeScale: 0.5 });
  });

  it('runs slower than real time (halves below 2) on a slow local AWS, and skips a row it cannot serve', () => {
    expect(chooseTimeScale(30, 'backup', 'raised')).toMatchObject({ timeScale: 0.5 });
    const skipped = chooseTimeScale(20, 'backup', 'raised');

    expect(skipped).toEqual({
      skip: 'local AWS too slow: 20 calls/s cannot serve twice the 22 local calls/s of this limit even at time scale 0.5',
    });
    expect(chooseTimeScale(Number.NaN, 'backup', 'default')).toHaveProperty('skip');
  });

  describe('given any measured capacity, job and limit', () => {
    const capacity = fc.double({ min: 1, max: 10_000, noNaN: true });

    it('keeps the local calls within half of the capacity, or skips the row', () => {
      fc.assert(
        fc.property(capacity, job, limit, (cap, j, l) => {
          const choice = chooseTimeScale(cap, j, l);
          if ('skip' in choice) {
            expect(localCallsPerSecond(j, l, MIN_TIME_SCALE) * 2).toBeGreaterThan(cap);
            return;
          }
          expect(choice.localCalls * 2).toBeLessThanOrEqual(cap + 1e-9);
          expect(choice.headroom).toBeGreaterThanOrEqual(2 - 1e-9);
          expect(choice.localCalls).toBeCloseTo(localCallsPerSecond(j, l, choice.timeScale));
        }),
        PROPERTY_RUNS,
      );
    });

    it('never asks more writes a second of the local AWS than it serves with its history, nor runs past the largest scale', () => {
      fc.assert(
        fc.property(capacity, job, limit, (cap, j, l) => {
          const choice = chooseTimeScale(cap, j, l);
          fc.pre(!('skip' in choice));
          if ('skip' in choice) return;
          expect(choice.timeScale).toBeGreaterThanOrEqual(MIN_TIME_SCALE);
          expect(choice.timeScale).toBeLessThanOrEqual(MAX_TIME_SCALE);
          expect(choice.localCalls).toBeLessThanOrEqual(
            localCallsPerSecond('backup', 'default', 1) * (MAX_LOCAL_WRITES_PER_SECOND / 5) + 1e-9,
          );
        }),
        PROPERTY_RUNS,
      );
    });

    it('gives a raised limit a time scale no larger than the default limit’s', () => {
      fc.assert(
        fc.property(capacity, job, (cap, j) => {
          const atDefault = chooseTimeScale(cap, j, 'default');
          const raised = chooseTimeScale(cap, j, 'raised');
          if ('skip' in atDefault) expect(raised).toHaveProperty('skip');
          if ('skip' in atDefault || 'skip' in raised) return;
          expect(raised.timeScale).toBeLessThanOrEqual(atDefault.timeScale);
        }),
        PROPERTY_RUNS,
      );
    });
  });
});

describe('npm run bench: the estimate printed at the start', () => {
  const inputs = { capacity: 150, peersAt: (size: number) => size <= 1000 };

  it('grows with the fleet, and with a slower local AWS', () => {
    const small = estimateSeconds(benchMatrix(BENCH_JOBS, [1000], BENCH_LIMITS), inputs);
    const large = estimateSeconds(benchMatrix(BENCH_JOBS, [1000, 5000], BENCH_LIMITS), inputs);
    const slow = estimateSeconds(benchMatrix(BENCH_JOBS, [1000], BENCH_LIMITS), {
      ...inputs,
      capacity: 60,
    });

    expect(small).toBeGreaterThan(60);
    expect(large).toBeGreaterThan(small * 2);
    expect(slow).toBeGreaterThan(small);
  });

  it('costs nothing for peers where they are skipped', () => {
    const rows = benchMatrix(['backup'], [1000], ['default']);

    expect(estimateSeconds(rows, { ...inputs, peersAt: () => false })).toBeLessThan(
      estimateSeconds(rows, inputs),
    );
  });
});

describe('npm run bench: the table at the end', () => {
  const measured: TableRow = {
    job: 'backup',
    size: 5000,
    limit: 'raised',
    tool: 'snapkeeper fan-out x4',
    timeScale: 2,
    writeAction: 'CreateSnapshots',
    ofRefill: 0.98,
    slowestWindowOfRefill: 0.86,
    throttled: 0,
    calls: 5031,
    minimumCalls: 5011,
    lost: 0,
    seconds: 130,
    capacity: 100,
    localCalls: 43.2,
  };

  it('names each of issue 19’s goals a snapkeeper row misses', () => {
    expect(missedGoals(measured)).toEqual(['slowest 5 s']);
    expect(missedGoals({ ...measured, ofRefill: 0.94, throttled: 5, calls: 7537 })).toEqual([
      'rate',
      'slowest 5 s',
      'throttled',
      'calls ÷ minimum',
    ]);
    expect(missedGoals({ ...measured, slowestWindowOfRefill: undefined, lost: 1 })).toEqual([
      'lost',
    ]);
  });

  it('checks no goal for a peer, nor for a row not measured', () => {
    expect(missedGoals({ ...measured, tool: 'c7n', throttled: 61 })).toEqual([]);
    expect(missedGoals({ job: 'amis', size: 1000, limit: 'default', tool: 'snapkeeper' })).toEqual(
      [],
    );
  });

  it('prints the limit by what AWS grants and the time scale apart, and the wall at AWS’s pace', () => {
    const table = formatBenchTable([
      measured,
      { job: 'amis', size: 1000, limit: 'default', tool: 'c7n', note: 'no such job' },
    ]);
    const [header, , first, second] = table.split('\n');

    expect(header).toContain('| limit (AWS refill) | time scale |');
    expect(first).toBe(
      '| backup | 5,000 | raised ×4 (20/s) | ×2 | snapkeeper fan-out x4 | 0.98 | 0.86 | 0 | 1.004 (5031/5011) | 0 | 130.0 s / 260 s | 100/s (×2.3) | missed: slowest 5 s |',
    );
    expect(second).toBe(
      '| amis | 1,000 | default (5/s) | — | c7n | — | — | — | — | — | — | — | no such job |',
    );
    expect(limitLabel('default', 'DeleteSnapshot')).toBe('default (5/s)');
  });
});

describe('npm run bench: the proxy’s buckets between rows', () => {
  it('retunes every bucket to a new refill, all full again', () => {
    let now = 0;
    const buckets = ec2BucketRule(1, () => now);
    const call = {
      protocol: 'ec2-query',
      service: 'ec2',
      action: 'CreateSnapshots',
      region: 'us-east-1',
      params: {},
    } as unknown as ProxyCall;
    const decide = () => buckets.rule.decide(call, 1);
    for (let i = 0; i < 100; i += 1) expect(decide()).toBeUndefined();
    expect(decide()).toMatchObject({ kind: 'error' });

    buckets.retune(8);
    for (let i = 0; i < 100; i += 1) expect(decide()).toBeUndefined();
    expect(decide()).toMatchObject({ kind: 'error' });
    now += 1000;
    for (let i = 0; i < 40; i += 1) expect(decide()).toBeUndefined();
    expect(decide()).toMatchObject({ kind: 'error' });
  });
});

describe('npm run bench: the rate of an action against its bucket', () => {
  /** Accepted calls at `perSecond` from `from` to `to` seconds. */
  const calls = (from: number, to: number, perSecond: number) =>
    Array.from({ length: Math.round((to - from) * perSecond) }, (_, i) => ({
      action: 'CreateSnapshots',
      receivedAt: 1_000_000 + (from + i / perSecond) * 1000,
      outcome: 'forwarded',
    })) as unknown as ProxyRecord[];

  it('finds the slowest 5-second window and says where it is: here the tail, where one worker of four is left', () => {
    const records = [...calls(0, 5, 20), ...calls(5, 40, 20), ...calls(40, 50, 5)];
    const rate = rateOf(records, 'CreateSnapshots', { burst: 100, refillPerSecond: 20 });

    expect(rate.slowestWindowOfRefill).toBeCloseTo(0.25, 1);
    expect(rate.slowestWindowAt?.start).toBeGreaterThan(39);
    expect(rate.slowestWindowAt?.end).toBeCloseTo(50, 0);
    expect(rate.throttled).toBe(0);
  });
});
