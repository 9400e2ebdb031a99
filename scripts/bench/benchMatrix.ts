/**
 * The matrix `npm run bench` measures in one run: every job at every fleet size and at
 * every limit, and the time scale each row runs at (scripts/bench/scaleBench.ts).
 *
 * Two numbers are kept apart:
 * - the **limit** is what AWS grants: EC2's default buckets, or a raised limit (the
 *   refill ×4, the burst unchanged);
 * - the **time scale** is how much faster than real time the bench runs: the proxy's
 *   buckets refill `limit × timeScale` times faster than EC2's defaults, and every
 *   AWS-like latency is divided by the time scale.
 *
 * The time scale is chosen per row so that the local AWS's calls a second at the row's
 * refill stay within half of its measured capacity: past that, the bench measures moto,
 * not the tool. A raised limit therefore runs at a smaller time scale.
 */
import { EC2_BUCKETS } from '../../lib/aws/rateLimiter.ts';
import { BENCH_JOBS, type BenchJob, parseNames } from './benchJobs.ts';

/** The limits measured: AWS's default EC2 buckets, and a raised limit (4× the refill). */
export const BENCH_LIMITS = ['default', 'raised'] as const;

/** One limit the bench measures at. */
export type BenchLimit = (typeof BENCH_LIMITS)[number];

/** How many times EC2's default refill each limit grants. */
export const LIMIT_FACTOR: Readonly<Record<BenchLimit, number>> = { default: 1, raised: 4 };

/** The fleet sizes measured by default; the larger goes through the fan-out. */
export const BENCH_SIZES = [1000, 5000] as const;

/**
 * The buckets a job writes to at once: their refills add up at the local AWS. AMI
 * retirement counts both its buckets: its snapshot deletions run beside its
 * deregistrations (moto's CreateImage makes one snapshot per AMI, so both buckets are
 * busy for the whole run).
 */
export const JOB_WRITE_ACTIONS: Readonly<Record<BenchJob, readonly string[]>> = {
  backup: ['CreateSnapshots'],
  retention: ['DeleteSnapshot'],
  amis: ['DeregisterImage', 'DeleteSnapshot'],
  copies: ['CopySnapshot'],
};

/**
 * Local calls per EC2 write: the write itself plus the run history's batched writes
 * (about 2 items per write, 25 items a `BatchWriteItem`).
 */
export const LOCAL_CALLS_PER_WRITE = 1 + 2 / 25;

/** The time scales the bench runs at: never faster than this (latency ÷ scale gets too small to mean anything). */
export const MAX_TIME_SCALE = 16;

/**
 * The most EC2 writes a second a row asks of the local AWS, whatever its measured
 * capacity: the capacity is measured with a cheap describe. On a quiet 2-core machine
 * (capacity 343–377 calls/s, 2026-12-06 16:55) backup and retention of 1,000 rode the
 * refill at 0.98 (slowest 5 s 0.98, 0 throttled) asked 40 and 80 writes a second; on the
 * same machine shared with seven test runs (capacity about 90) a backup asked 40 reached
 * 0.79, asked 20, 0.98. The capacity rule (half of it) scales a row down on a loaded
 * machine; this cap keeps a quiet one at half the pace shown to hold.
 */
export const MAX_LOCAL_WRITES_PER_SECOND = 40;

/** Below this time scale a row would take longer than real time at AWS: it is skipped, with the reason. */
export const MIN_TIME_SCALE = 0.5;

/** The steps a time scale is rounded down to: a whole number from 2, halves below. */
function roundDown(scale: number): number {
  return scale >= 2 ? Math.floor(scale) : Math.floor(scale * 2) / 2;
}

/**
 * The local AWS's calls a second that one job asks for at a limit and a time scale:
 * the refills of the buckets it writes to at once, times the local calls per write.
 *
 * @example
 * localCallsPerSecond('backup', 'raised', 2); // 5 × 4 × 2 × 1.08 = 43.2
 */
export function localCallsPerSecond(job: BenchJob, limit: BenchLimit, timeScale: number): number {
  const refill = JOB_WRITE_ACTIONS[job].reduce(
    (sum, action) => sum + (EC2_BUCKETS[action]?.refillPerSecond ?? 0),
    0,
  );
  return refill * LIMIT_FACTOR[limit] * timeScale * LOCAL_CALLS_PER_WRITE;
}

/** A row's time scale, or why it cannot be run honestly on this local AWS. */
export type TimeScaleChoice =
  | {
      readonly timeScale: number;
      /** Local calls a second the row asks of the local AWS at that scale. */
      readonly localCalls: number;
      /** The capacity over those calls: at least 2. */
      readonly headroom: number;
    }
  | { readonly skip: string };

/**
 * The largest time scale (a whole number from 2, halves below, at most
 * {@link MAX_TIME_SCALE}) at which the row's local calls stay within half of the
 * measured capacity and its writes within {@link MAX_LOCAL_WRITES_PER_SECOND}; a row
 * that would need less than {@link MIN_TIME_SCALE} is skipped.
 *
 * @example
 * chooseTimeScale(100, 'backup', 'default'); // { timeScale: 4, localCalls: 21.6, headroom: 4.63 }
 * chooseTimeScale(100, 'backup', 'raised'); // { timeScale: 1, localCalls: 21.6, headroom: 4.63 }
 */
export function chooseTimeScale(
  capacity: number,
  job: BenchJob,
  limit: BenchLimit,
): TimeScaleChoice {
  const perScale = localCallsPerSecond(job, limit, 1);
  const fits = Number.isFinite(capacity) && capacity > 0 ? capacity / (2 * perScale) : 0;
  const writeCap = (MAX_LOCAL_WRITES_PER_SECOND * LOCAL_CALLS_PER_WRITE) / perScale;
  const timeScale = Math.min(MAX_TIME_SCALE, roundDown(Math.min(fits, writeCap)));
  if (timeScale < MIN_TIME_SCALE) {
    return {
      skip: `local AWS too slow: ${capacity.toFixed(0)} calls/s cannot serve twice the ${perScale.toFixed(0)} local calls/s of this limit even at time scale ${MIN_TIME_SCALE}`,
    };
  }
  const localCalls = perScale * timeScale;
  return { timeScale, localCalls, headroom: capacity / localCalls };
}

/** One cell of the matrix: a job at a size and a limit. */
export interface MatrixRow {
  readonly job: BenchJob;
  readonly size: number;
  readonly limit: BenchLimit;
}

/**
 * Every row of the matrix, in the order they run: size by size (one fleet each), limit
 * by limit within a size, the jobs in their order within a limit.
 *
 * @example
 * benchMatrix(['backup'], [1000, 5000], ['default', 'raised']).length; // 4
 */
export function benchMatrix(
  jobs: Iterable<BenchJob>,
  sizes: readonly number[],
  limits: Iterable<BenchLimit>,
): MatrixRow[] {
  const wanted = new Set(jobs);
  const limitList = BENCH_LIMITS.filter((l) => new Set(limits).has(l));
  const rows: MatrixRow[] = [];
  for (const size of sizes) {
    for (const limit of limitList) {
      for (const job of BENCH_JOBS) if (wanted.has(job)) rows.push({ job, size, limit });
    }
  }
  return rows;
}

/**
 * The `--limits` value as limits; an unknown name is refused with the names it takes.
 *
 * @example
 * parseBenchLimits('raised'); // Set { 'raised' }
 */
export function parseBenchLimits(value: string): Set<BenchLimit> {
  return parseNames('--limits', BENCH_LIMITS, value);
}

/** What the estimate assumes of the local AWS and of the run. */
export interface EstimateInputs {
  /** Calls a second the local AWS serves (measured, or assumed before it is). */
  readonly capacity: number;
  /** Whether Cloud Custodian and the naive loop run at this size. */
  readonly peersAt: (size: number) => boolean;
}

/**
 * The seconds one row takes, roughly: its writes beyond the burst at the row's local
 * refill, plus what it does unmeasured (seeding, peers' start-up). For the estimate
 * printed before a run; the run prints what it took.
 *
 * @example
 * rowSeconds({ job: 'retention', size: 1000, limit: 'raised' }, { capacity: 100, peersAt: () => true });
 */
export function rowSeconds(row: MatrixRow, inputs: EstimateInputs): number {
  const choice = chooseTimeScale(inputs.capacity, row.job, row.limit);
  if ('skip' in choice) return 0;
  const refill = 5 * LIMIT_FACTOR[row.limit] * choice.timeScale;
  const volumes = row.size * 2.5;
  const paced = (writes: number, burst = 100) => Math.max(0, writes - burst) / refill + 3;
  const peers = inputs.peersAt(row.size);
  // moto's own speed for unmeasured work, calls a second.
  const moto = Math.max(20, inputs.capacity);
  switch (row.job) {
    case 'backup': {
      // One invocation below 5,000, the fan-out always; the peers beside.
      const single = row.size < 5000 ? paced(row.size) : 0;
      return single + paced(row.size) + 10 + (peers ? paced(row.size) + 10 + paced(volumes) : 0);
    }
    case 'retention': {
      // A set made straight on moto (two at 5,000), then the deletions, and Custodian's as many.
      const seeds = (row.size < 5000 ? 1 : 2) * (row.size / moto);
      return seeds + paced(volumes) + (peers ? paced(volumes) + 10 : 0);
    }
    case 'amis':
      // Two slots of AMIs made straight on moto (about 15 ms each), then one slot's
      // deregistrations and, beside them, the deletions of its snapshots (one an AMI on moto).
      return (2 * row.size) / Math.min(moto, 70) + paced(row.size);
    case 'copies':
      return 15;
  }
}

/**
 * The whole run's estimate in seconds: every row, plus each fleet's launch and its
 * capacity probe.
 *
 * @example
 * estimateSeconds(benchMatrix(BENCH_JOBS, [1000], BENCH_LIMITS), { capacity: 100, peersAt: () => true });
 */
export function estimateSeconds(rows: readonly MatrixRow[], inputs: EstimateInputs): number {
  const fleets = new Set(rows.map((r) => `${r.size}/${r.limit}`));
  let seconds = 0;
  for (const fleet of fleets) seconds += 5 + Number(fleet.split('/')[0]) / 50;
  for (const row of rows) seconds += rowSeconds(row, inputs);
  return seconds;
}
