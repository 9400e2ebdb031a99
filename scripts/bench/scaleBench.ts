/**
 * The scale benchmark (not a test): `npm run bench`.
 *
 * Runs against the local AWS (moto, fast-tag patch) behind our proxy enforcing EC2's
 * token buckets per (region, action). In one run it measures the matrix of
 * scripts/bench/benchMatrix.ts: every job (backup, retention, AMI retirement, copies)
 * at every size (`--sizes`, 1,000 and 5,000 instances; 5,000 backs up through the
 * fan-out only) and every limit (`--limits`: EC2's default buckets, and a raised limit
 * of 4× the refill). The limit (what AWS grants) and the time scale (how much faster
 * than real time the bench runs) are kept apart: before each fleet the local AWS's
 * capacity is measured, and each row runs at the largest time scale whose local calls
 * stay within half of it (a raised limit runs at a smaller one); every mutating call is
 * delayed by an AWS-like latency (`--latency-ms`, 300) divided by the row's time scale.
 *
 * For each job, snapkeeper beside Cloud Custodian and the naive loop where they have the
 * job ("—" otherwise, or "skipped" above `--peers-max`): the achieved calls per second
 * after the burst over the refill (and the slowest 5-second window), throttled calls,
 * calls that failed after retries (lost), EC2 calls over the minimum, wall. At the end
 * one table of every row (scripts/bench/benchTable.ts) with issue 19's goals checked,
 * then the planner's CPU time and memory (scripts/bench/plannerBench.ts). Figures also
 * go to reports/bench.json. `--help` lists the options.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CreateSnapshotCommand,
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  RunInstancesCommand,
  type Snapshot,
} from '@aws-sdk/client-ec2';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import pLimit from 'p-limit';
import { delay, type ProxyRecord, startFaultProxy } from '../../harness/faultProxy.ts';
import { PROJECT_ROOT, startLocalAws } from '../../harness/localAws.ts';
import { createLocalHistoryTable } from '../../harness/localTable.ts';
import { createEc2Client, createRateLimitedEc2Client } from '../../lib/aws/clients.ts';
import { Ec2CopyGateway } from '../../lib/aws/Ec2CopyGateway.ts';
import { Ec2Gateway } from '../../lib/aws/Ec2Gateway.ts';
import { Ec2ImageGateway } from '../../lib/aws/Ec2ImageGateway.ts';
import { FanOutQueueGateway } from '../../lib/aws/FanOutQueueGateway.ts';
import { createRunHistoryGateway } from '../../lib/aws/RunHistoryGateway.ts';
import type { BucketSpec } from '../../lib/aws/rateLimiter.ts';
import { loadConfig, type SnapkeeperConfig } from '../../lib/config/environment.ts';
import { parseBatchMessage, planTargets } from '../../lib/domain/fanOut.ts';
import { runAmiJob } from '../../lib/jobs/amiJob.ts';
import { SNAPSHOT_IDS_PER_DESCRIBE } from '../../lib/jobs/amiRetirement.ts';
import { runBackupJob } from '../../lib/jobs/backupJob.ts';
import { runCopyJob } from '../../lib/jobs/copyJob.ts';
import { BatchRetryError } from '../../lib/jobs/errors.ts';
import { planFanOut, runFanOutBatch } from '../../lib/jobs/fanOutJob.ts';
import { HistoryPipeline } from '../../lib/jobs/historyPipeline.ts';
import { runRetentionJob } from '../../lib/jobs/retentionJob.ts';
import { logJournal, silentLogger } from '../../lib/jobs/runReport.ts';
import { createAwsClients } from '../../lib/runtime/awsClients.ts';
import {
  type CliSpec,
  helpText,
  type ParsedCommandLine,
  parseCommandLine,
  UsageError,
} from '../cli.ts';
import {
  BENCH_JOBS,
  type BenchJob,
  noPublicSnapshotsRule,
  parseBenchJobs,
  peerGapLine,
  peerGaps,
} from './benchJobs.ts';
import {
  BENCH_LIMITS,
  BENCH_SIZES,
  type BenchLimit,
  benchMatrix,
  chooseTimeScale,
  estimateSeconds,
  LIMIT_FACTOR,
  localCallsPerSecond,
  parseBenchLimits,
} from './benchMatrix.ts';
import { formatBenchTable, type TableRow } from './benchTable.ts';
import { ensureCustodian, runCustodian } from './custodian.ts';
import { formatPlannerBench, runPlannerBench } from './plannerBench.ts';
import {
  ec2BucketRule,
  ec2CallsByAction,
  type RateFigures,
  rateOf,
  scaledBuckets,
} from './tokenBucketProxy.ts';

const REGION = 'us-east-1';
/** Reads of an AMI run at one page each: set from the calls a run makes (see amiFigures). */
const AMI_READS = 7;
/** Reads of a backup plan at one page each (moto serves a describe in one page). */
const BACKUP_READS = 3;
/** The slots of AMIs the AMI row seeds (days ago); its measured run keeps the newest. */
const AMI_SEED_DAYS = [2, 1] as const;
/** Reads of a copy run at one page each: set from the calls a run makes (see copyFigures). */
const COPY_READS = 9;

/**
 * Calls a copy run makes on moto only, counted apart (not in calls ÷ minimum): moto has
 * no `GetImageBlockPublicAccessState` (the SDK retries it); and, should the proxy's
 * rewrite of `RestorableByUserIds: ['all']` miss, moto's answer of every own snapshot
 * makes the public-snapshot check read each one's `createVolumePermission`.
 */
const MOTO_ONLY_COPY_CALLS = new Set([
  'DescribeSnapshotAttribute',
  'GetImageBlockPublicAccessState',
]);
const TAG = 'snapkeeper:backup';
const DAY = 86_400_000;

/** The command line of `npm run bench`; every option defaults to its BENCH_* variable. */
export const BENCH_COMMAND: CliSpec = {
  command: 'npm run bench --',
  summary:
    'Measures snapkeeper beside Cloud Custodian and a naive loop on the local AWS (moto, with the\nfast-tag patch) behind a proxy enforcing EC2 token buckets: every job at every size and limit,\nin one run, one table. The limit (what AWS grants) and the time scale (how much faster than\nreal time the bench runs) are kept apart; AWS-like latency is divided by the time scale.',
  options: {
    sizes: {
      type: 'string',
      value: '<n,n>',
      default: process.env.BENCH_SIZES ?? BENCH_SIZES.join(','),
      description:
        'fleet sizes, instances; 5,000 and above back up through the fan-out only (BENCH_SIZES)',
    },
    limits: {
      type: 'string',
      value: '<default,raised>',
      default: process.env.BENCH_LIMITS ?? BENCH_LIMITS.join(','),
      description:
        'EC2 limits: default (CreateSnapshots 5/s after a burst of 100) and raised (4× the refill) (BENCH_LIMITS)',
    },
    scale: {
      type: 'string',
      value: '<x>',
      default: process.env.BENCH_TIME_SCALE ?? 'auto',
      description:
        'time scale of every row; auto chooses per row the largest that keeps the local calls within half of the local AWS’s capacity (BENCH_TIME_SCALE)',
    },
    'latency-ms': {
      type: 'string',
      value: '<ms>',
      default: process.env.BENCH_WRITE_LATENCY_MS ?? '300',
      description:
        'AWS-like latency of a mutating EC2 call, divided by the row’s time scale at the proxy (BENCH_WRITE_LATENCY_MS)',
    },
    workers: {
      type: 'string',
      value: '<n>',
      default: process.env.BENCH_WORKERS ?? '4',
      description: 'fan-out workers at once (BENCH_WORKERS)',
    },
    jobs: {
      type: 'string',
      value: '<backup[,retention,copies,amis]>',
      default: process.env.BENCH_JOBS ?? 'backup,retention,copies,amis',
      description:
        'the jobs measured; backup always runs, it makes what retention deletes and copies copy; amis is AMI retirement (BENCH_JOBS)',
    },
    'peers-max': {
      type: 'string',
      value: '<n>',
      default: process.env.BENCH_PEERS_MAX ?? '1000',
      description:
        'largest fleet Cloud Custodian and the naive loop run at; larger rows say they were skipped (BENCH_PEERS_MAX)',
    },
    'no-custodian': {
      type: 'boolean',
      description: 'skip Cloud Custodian (BENCH_CUSTODIAN=false)',
    },
    'no-naive': { type: 'boolean', description: 'skip the naive loop (BENCH_NAIVE=false)' },
    'no-planner': { type: 'boolean', description: 'skip the planner bench (BENCH_PLANNER=false)' },
    force: {
      type: 'boolean',
      description:
        'with a fixed --scale: run rows whose refill comes within half of the local AWS’s capacity (flagged)',
    },
  },
  examples: [
    'npm run bench',
    'npm run bench -- --sizes 1000 --limits raised --jobs backup,retention',
    'npm run bench -- --sizes 200 --scale 1 --no-custodian --no-planner',
  ],
  notes: [
    'Before measuring it prints the local AWS’s own capacity (calls a second it serves, measured again before each fleet) and an estimate of the run; each row runs at the largest time scale whose local calls stay within half of that capacity, so a raised limit runs at a smaller time scale. A fixed --scale that comes within half is refused (--force runs it flagged).',
    'snapkeeper writes its run history to a local table through the same batching pipeline as in Lambda, so its history writes are measured too.',
  ],
};

/** Where copies go (a destination region with its own EC2 buckets). */
const COPY_REGION = 'us-west-2';

let cli: ParsedCommandLine;
try {
  cli = parseCommandLine(BENCH_COMMAND, process.argv.slice(2));
} catch (error) {
  console.error(error instanceof UsageError ? error.message : String(error));
  process.exit(2);
}
if (cli.help) {
  console.log(helpText(BENCH_COMMAND));
  process.exit(0);
}
const option = (name: string) => String(cli.values[name] ?? '');
const sizes = option('sizes').split(',').map(Number);
const fixedScale = option('scale') === 'auto' ? undefined : Number(option('scale'));
const writeLatencyMs = Number(option('latency-ms'));
const workers = Number(option('workers'));
const peersMax = Number(option('peers-max'));
const withCustodian = !cli.values['no-custodian'] && process.env.BENCH_CUSTODIAN !== 'false';
const withPlanner = !cli.values['no-planner'] && process.env.BENCH_PLANNER !== 'false';
const withNaive = !cli.values['no-naive'] && process.env.BENCH_NAIVE !== 'false';
const force = cli.values.force === true;
let jobs: Set<BenchJob>;
let limits: Set<BenchLimit>;
try {
  jobs = parseBenchJobs(option('jobs'));
  jobs.add('backup');
  limits = parseBenchLimits(option('limits'));
} catch (error) {
  console.error((error as Error).message);
  process.exit(2);
}
/** From this size on, backup runs through the fan-out only (one invocation would not hold it). */
const FAN_OUT_ONLY = 5000;
for (const [name, value] of [
  ['--scale', fixedScale ?? 1],
  ['--latency-ms', writeLatencyMs],
  ['--workers', workers],
  ['--peers-max', peersMax],
  ...sizes.map((n) => ['--sizes', n] as const),
] as const) {
  if (!Number.isFinite(value) || value < 0 || (name !== '--latency-ms' && value <= 0)) {
    console.error(
      `${name} must be a positive number; got ${JSON.stringify(value)} (see npm run bench -- --help)`,
    );
    process.exit(2);
  }
}

/** The row being measured: its limit, time scale, the proxy's (and our limiter's) buckets. */
interface RowSettings {
  readonly limit: BenchLimit;
  readonly timeScale: number;
  readonly buckets: Record<string, BucketSpec>;
  /** The local AWS's capacity measured before this fleet, calls a second. */
  readonly capacity: number;
  /** Local calls a second the row's refill asks for. */
  readonly localCalls: number;
  /** Set when the refill comes within half of the capacity (a forced fixed scale). */
  readonly flagged: boolean;
}
let row: RowSettings = {
  limit: 'default',
  timeScale: 1,
  buckets: scaledBuckets(1),
  capacity: 0,
  localCalls: 0,
  flagged: false,
};

/** The mutating EC2 calls the proxy slows down like AWS does (latency ÷ scale). */
const MUTATING = new Set([
  'CreateSnapshots',
  'CreateSnapshot',
  'DeleteSnapshot',
  'DeregisterImage',
  'CreateImage',
  'CopySnapshot',
  'CopyImage',
  'CreateTags',
]);

/**
 * The local AWS's own capacity: EC2 calls a second it answers with 16 callers at once
 * for `seconds`, straight (not through the proxy).
 */
async function localCapacity(endpoint: string, seconds = 3): Promise<number> {
  const ec2 = new EC2Client({ region: REGION, endpoint });
  // A second unmeasured first: a cold moto (or SDK) answers its first calls slower.
  let until = performance.now() + 1000;
  let calls = 0;
  const warm = async () => {
    while (performance.now() < until) {
      await ec2.send(
        new DescribeInstancesCommand({ Filters: [{ Name: 'tag:bench-probe', Values: ['none'] }] }),
      );
    }
  };
  await Promise.all(Array.from({ length: 16 }, warm));
  until = performance.now() + seconds * 1000;
  const caller = async () => {
    while (performance.now() < until) {
      await ec2.send(
        new DescribeInstancesCommand({ Filters: [{ Name: 'tag:bench-probe', Values: ['none'] }] }),
      );
      calls += 1;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: 16 }, caller));
  ec2.destroy();
  return calls / ((performance.now() - started) / 1000);
}

/** One measured run. */
interface RunFigures {
  readonly size: number;
  readonly job: BenchJob;
  /** The action whose bucket the rate is measured against. */
  readonly writeAction?: string;
  /** What the row means, when a peer has no such job (printed as —) or the run needs a word. */
  readonly note?: string;
  readonly tool: string;
  readonly seconds: number;
  readonly writes: number;
  readonly rate: RateFigures;
  readonly ec2Calls: Record<string, number>;
  readonly totalEc2Calls: number;
  /** Seconds from the run's first to its last call of each action, and the calls not forwarded. */
  readonly actionSpans?: Record<string, { calls: number; seconds: number; notForwarded: number }>;
  readonly minimumCalls: number;
  /** Snapshots not made (backup) or not deleted (retention) after retries. */
  readonly failed: number;
}

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    AWS_REGION: REGION,
    DEPLOYMENT: 'bench',
    SCHEDULES: JSON.stringify([
      { name: 'daily', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 2 },
    ]),
    MAX_DELETIONS: '100%',
    EC2_RATE_LIMITS: JSON.stringify(row.buckets),
    AWS_MAX_ATTEMPTS: '8',
    SAFETY_MARGIN_SECONDS: '0',
    RECYCLE_BIN_CHECK: 'false',
    LOCAL_TAG_AFTER_CREATE: 'true',
    ...extra,
  };
}

function clientFor(
  config: SnapkeeperConfig,
  endpoint: string,
  limited: boolean,
  region?: string,
): EC2Client {
  const settings = { ...config, endpoint, ...(region ? { region } : {}) };
  return limited
    ? createRateLimitedEc2Client(settings, region ? { region } : {})
    : createEc2Client(settings);
}

function gatewayFor(config: SnapkeeperConfig, endpoint: string, limited: boolean): Ec2Gateway {
  return new Ec2Gateway(clientFor(config, endpoint, limited), {
    snapshotRateRetryMs: config.snapshotRateRetryMs,
    snapshotRateRetries: config.snapshotRateRetries,
  });
}

/** Launches `size` instances, half with 2 volumes and half with 3, 100 per call. */
async function launchFleet(ec2: EC2Client, size: number): Promise<number> {
  let volumes = 0;
  for (let start = 0; start < size; start += 100) {
    const count = Math.min(100, size - start);
    const data = start % 200 === 0 ? 1 : 2;
    volumes += count * (1 + data);
    await ec2.send(
      new RunInstancesCommand({
        ImageId: 'ami-0123456789abcdef0',
        InstanceType: 't3.micro',
        MinCount: count,
        MaxCount: count,
        BlockDeviceMappings: [
          { DeviceName: '/dev/sda1', Ebs: { VolumeSize: 8, VolumeType: 'gp3' } },
          ...['/dev/sdf', '/dev/sdg'].slice(0, data).map((device) => ({
            DeviceName: device,
            Ebs: { VolumeSize: 10, VolumeType: 'gp3' as const },
          })),
        ],
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [
              { Key: TAG, Value: 'daily' },
              { Key: 'Name', Value: `bench-${start}` },
            ],
          },
          { ResourceType: 'volume', Tags: [{ Key: 'Team', Value: 'bench' }] },
        ],
      }),
    );
  }
  return volumes;
}

async function allSnapshots(
  ec2: EC2Client,
  filters: { Name: string; Values: string[] }[],
): Promise<Snapshot[]> {
  const response = await ec2.send(
    new DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: filters }),
  );
  return response.Snapshots ?? [];
}

async function main(): Promise<void> {
  const aws = await startLocalAws({
    server: join(PROJECT_ROOT, 'scripts', 'bench', 'motoFastTags.py'),
  });
  const proxy = await startFaultProxy({ target: aws.endpoint, maxRecords: 1_000_000 });
  const bucketRule = ec2BucketRule(1);
  proxy.rules.add(bucketRule.rule);
  // moto answers every own snapshot to RestorableByUserIds=all; AWS (this fleet) none.
  proxy.rules.add(noPublicSnapshotsRule());
  // AWS-like latency on every mutating call that got a token, divided by the row's time scale.
  proxy.rules.add({
    name: 'aws-like latency',
    action: (action) => MUTATING.has(action),
    decide: () => (writeLatencyMs > 0 ? delay(writeLatencyMs / row.timeScale) : undefined),
  });
  for (const [key, value] of Object.entries({
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_SESSION_TOKEN: 'testing',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  }))
    process.env[key] = value;
  const custodian = withCustodian ? await ensureCustodian(PROJECT_ROOT) : undefined;
  const direct = new EC2Client({ region: REGION, endpoint: aws.endpoint });
  const runs: RunFigures[] = [];
  const table: TableRow[] = [];
  const peersAt = (size: number) => size <= peersMax && (custodian !== undefined || withNaive);
  const print = (run: RunFigures) => {
    runs.push(run);
    table.push(tableRow(run));
    console.log(formatRun(run));
  };
  /** A "—" line for each peer that has no such job, or that does not run at this size. */
  const off = new Set([
    ...(custodian === undefined ? ['c7n'] : []),
    ...(withNaive ? [] : ['naive per-volume loop']),
  ]);
  const peerGapsOf = (job: BenchJob, size: number) => {
    for (const gap of peerGaps(job, size, { peersMax, off })) {
      table.push({ job, size, limit: row.limit, tool: gap.peer, note: gap.note });
      console.log(peerGapLine(job, size, gap));
    }
  };
  console.log(
    `scale bench: moto behind EC2 token buckets per (region, action); limits ${[...limits].map((l) => `${l} (CreateSnapshots ${5 * LIMIT_FACTOR[l]}/s after a burst of 100)`).join(', ')}; each row at its own time scale (${fixedScale === undefined ? 'auto: the largest within half of the local AWS’s capacity' : `fixed ×${fixedScale}`}); mutating calls delayed ${writeLatencyMs} ms ÷ the time scale; fan-out with ${workers} workers`,
  );
  console.log(
    'local AWS: moto with the fast-tag patch (scripts/bench/motoFastTags.py: a resource reads its own tags; stock moto times out describing beyond about 2,000 tagged snapshots)',
  );
  const firstCapacity = await localCapacity(aws.endpoint);
  const matrix = benchMatrix(jobs, sizes, limits);
  const estimate = estimateSeconds(matrix, { capacity: firstCapacity, peersAt });
  console.log(
    `local AWS capacity: ${firstCapacity.toFixed(0)} calls/s; ${matrix.length} job rows (${[...jobs].join(', ')} × ${sizes.join(', ')} instances × ${[...limits].join(', ')}); estimate about ${Math.ceil(estimate / 60)} min`,
  );

  async function measure<T>(
    fn: () => Promise<T>,
  ): Promise<{ result: T; seconds: number; records: readonly ProxyRecord[] }> {
    bucketRule.refill();
    proxy.resetStats();
    const started = performance.now();
    const result = await fn();
    const seconds = (performance.now() - started) / 1000;
    return { result, seconds, records: proxy.requests() };
  }

  try {
    for (const size of sizes) {
      for (const limit of BENCH_LIMITS.filter((l) => limits.has(l))) {
        await aws.reset();
        const capacity = await localCapacity(aws.endpoint);
        console.log(
          `\n${size.toLocaleString('en-US')} instances, ${limit} limit: local AWS capacity ${capacity.toFixed(0)} calls/s`,
        );
        const fleet = await newFleet(size);
        for (const job of BENCH_JOBS.filter((j) => jobs.has(j))) {
          if (!setRow(job, limit, capacity, size)) continue;
          if (job === 'backup') await backupRows(size, fleet);
          if (job === 'retention') await retentionRows(size, fleet);
          if (job === 'amis') await amiRows(size, fleet);
          if (job === 'copies') await copyRows(size, fleet);
        }
      }
    }
  } finally {
    await proxy.stop();
    await aws.stop();
  }

  let planner: unknown;
  if (withPlanner) {
    const result = await runPlannerBench();
    planner = result;
    console.log('');
    console.log(formatPlannerBench(result));
  }
  console.log(
    '\nevery job, size and limit (rate and slowest window against the local refill = AWS refill × time scale):\n',
  );
  console.log(formatBenchTable(table));
  await mkdir(join(PROJECT_ROOT, 'reports'), { recursive: true });
  await writeFile(
    join(PROJECT_ROOT, 'reports', 'bench.json'),
    `${JSON.stringify({ writeLatencyMs, workers, table, runs, planner }, null, 2)}\n`,
  );
  console.log('\nfigures written to reports/bench.json');

  /**
   * Sets the row's limit and time scale (the proxy's buckets, our limiter's, the latency);
   * false when the row cannot be measured honestly here (a "—" line says why).
   */
  function setRow(job: BenchJob, limit: BenchLimit, capacity: number, size: number): boolean {
    const choice =
      fixedScale === undefined
        ? chooseTimeScale(capacity, job, limit)
        : {
            timeScale: fixedScale,
            localCalls: localCallsPerSecond(job, limit, fixedScale),
            headroom: capacity / localCallsPerSecond(job, limit, fixedScale),
          };
    const flagged = !('skip' in choice) && choice.headroom < 2;
    const skip =
      'skip' in choice
        ? choice.skip
        : flagged && !force
          ? `refused: time scale ×${choice.timeScale} asks ${choice.localCalls.toFixed(0)} local calls/s, within half of the capacity (${capacity.toFixed(0)}/s); a smaller --scale, or --force to run it flagged`
          : undefined;
    if (skip !== undefined || 'skip' in choice) {
      table.push({ job, size, limit, tool: 'snapkeeper', capacity, note: skip });
      console.log(`${job.padEnd(9)} ${String(size).padStart(5)} instances  not run: ${skip}`);
      return false;
    }
    const refillScale = LIMIT_FACTOR[limit] * choice.timeScale;
    row = {
      limit,
      timeScale: choice.timeScale,
      buckets: scaledBuckets(refillScale),
      capacity,
      localCalls: choice.localCalls,
      flagged,
    };
    bucketRule.retune(refillScale);
    console.log(
      `${job}: ${limit} limit at time scale ×${choice.timeScale} (local refill ×${refillScale}: ${5 * refillScale}/s for a 5/s bucket; latency ${(writeLatencyMs / choice.timeScale).toFixed(0)} ms; ${choice.localCalls.toFixed(0)} local calls/s, capacity ×${(capacity / choice.localCalls).toFixed(1)}${flagged ? ' — FLAGGED: within half of the capacity, these figures measure moto' : ''})`,
    );
    return true;
  }

  /** One fleet: launched straight on moto, with its history table and day slots. */
  async function newFleet(size: number) {
    const launched = performance.now();
    const volumes = await launchFleet(direct, size);
    console.log(
      `  (launched ${size} instances with ${volumes} volumes in ${((performance.now() - launched) / 1000).toFixed(1)} s)`,
    );
    const now = Date.now();
    const journalTable = `bench-${size}-journal`;
    await createLocalHistoryTable(
      new DynamoDBClient({ region: REGION, endpoint: aws.endpoint }),
      journalTable,
    );
    return {
      volumes,
      slot: (daysAgo: number) =>
        new Date(Math.floor(now / DAY) * DAY - daysAgo * DAY + 3 * 3_600_000),
      journalTable,
      /** The fan-out's run id, whose snapshots Cloud Custodian deletes. */
      fanOutRunId: '',
    };
  }
  type Fleet = Awaited<ReturnType<typeof newFleet>>;

  /** The row's configuration (its buckets), with the product's history as in Lambda. */
  function deps(fleet: Fleet, runId: string, ec2: Ec2Gateway) {
    const config = loadConfig(env({ AWS_ENDPOINT_URL: proxy.endpoint }));
    const journalHistory = createRunHistoryGateway(
      { ...config, endpoint: aws.endpoint },
      fleet.journalTable,
      30,
    );
    return {
      ec2,
      config,
      clock: () => new Date(),
      runId,
      logger: silentLogger,
      journal: new HistoryPipeline({
        recordMany: (entries) => journalHistory.recordBatch(entries),
      }),
      // Ownership by the tags here (the calls to EC2 are measured), not the ledger.
      ledger: undefined,
    };
  }

  /** A backup set made straight on moto (not measured). */
  async function seedBackup(size: number, fleet: Fleet, daysAgo: number, runId: string) {
    const straight = loadConfig(env({ AWS_ENDPOINT_URL: aws.endpoint }));
    await runBackupJob(
      { schedule: 'daily', scheduledTime: fleet.slot(daysAgo), dryRun: false, trigger: 'schedule' },
      deps(fleet, runId, gatewayFor(straight, aws.endpoint, false)),
    );
    console.log(`  (backup set ${runId} made straight on moto, not measured: ${size} instances)`);
  }

  async function backupRows(size: number, fleet: Fleet) {
    const config = loadConfig(env({ AWS_ENDPOINT_URL: proxy.endpoint }));
    const { volumes } = fleet;
    // 1. snapkeeper backup, one invocation (below the fan-out-only size).
    if (size < FAN_OUT_ONLY) {
      const ours = await measure(() =>
        runBackupJob(
          { schedule: 'daily', scheduledTime: fleet.slot(3), dryRun: false, trigger: 'schedule' },
          deps(fleet, `bench-${size}-a`, gatewayFor(config, proxy.endpoint, true)),
        ),
      );
      const made = await allSnapshots(direct, [
        { Name: 'tag:snapkeeper:run-id', Values: [`bench-${size}-a`] },
      ]);
      print(
        backupFigures(size, 'snapkeeper', ours.seconds, ours.records, volumes - made.length, size),
      );
    } else {
      await seedBackup(size, fleet, 3, `bench-${size}-a`);
    }
    if (size <= peersMax) {
      // 2. Cloud Custodian backup.
      if (custodian) {
        const c7n = await measure(() =>
          runCustodian({
            custodian,
            endpoint: proxy.endpoint,
            region: REGION,
            job: 'backup',
            tagKey: TAG,
            workDir: join(PROJECT_ROOT, '.bench-c7n', `backup-${size}-${row.limit}`),
          }),
        );
        const made = await allSnapshots(direct, [
          { Name: 'tag-key', Values: ['custodian_snapshot'] },
        ]);
        print(backupFigures(size, 'c7n', c7n.seconds, c7n.records, volumes - made.length, size));
      }
      // 2b. A naive per-volume loop with the SDK's defaults, as many scripts do it.
      if (withNaive) {
        const naive = await measure(() => naiveBackup(proxy.endpoint));
        print(
          backupFigures(
            size,
            'naive per-volume loop',
            naive.seconds,
            naive.records,
            naive.result.lost,
            size,
            'CreateSnapshot',
          ),
        );
      }
    }
    // 3. snapkeeper backup through the fan-out, several workers at once.
    const fanOut = await measure(() =>
      fanOutBackup(size, fleet.slot(2), proxy.endpoint, aws.endpoint),
    );
    fleet.fanOutRunId = fanOut.result.runId;
    print({
      ...backupFigures(
        size,
        `snapkeeper fan-out x${workers}`,
        fanOut.seconds,
        fanOut.records,
        fanOut.result.notMade(volumes),
        size,
        'CreateSnapshots',
        fanOut.result.batches,
      ),
      note: `${fanOut.result.batches} batches`,
    });
    peerGapsOf('backup', size);
  }

  async function retentionRows(size: number, fleet: Fleet) {
    const config = loadConfig(env({ AWS_ENDPOINT_URL: proxy.endpoint }));
    // 4. snapkeeper retention: a third set (not measured), then keep 2 of 3.
    await seedBackup(size, fleet, 1, `bench-${size}-c`);
    const retention = await measure(() =>
      runRetentionJob(
        { schedule: 'daily', dryRun: false, trigger: 'schedule' },
        deps(fleet, `bench-${size}-r`, gatewayFor(config, proxy.endpoint, true)),
      ),
    );
    const report = retention.result;
    print({
      ...retentionFigures(
        size,
        'snapkeeper',
        retention.seconds,
        retention.records,
        report.counts.planned,
        report.counts.planned - report.counts.deleted,
        4,
      ),
      ...(size >= FAN_OUT_ONLY
        ? {
            note: 'one invocation: the fan-out runs retention as one batch per target with the whole rate, the same run',
          }
        : {}),
    });
    // 5. Cloud Custodian deletes as many: the fan-out's sets, tagged for it.
    if (custodian && size <= peersMax) {
      const marked = (
        await allSnapshots(direct, [{ Name: 'tag:snapkeeper:run-id', Values: [fleet.fanOutRunId] }])
      ).map((s) => s.SnapshotId ?? '');
      for (let i = 0; i < marked.length; i += 1000) {
        await direct.send(
          new CreateTagsCommand({
            Resources: marked.slice(i, i + 1000),
            Tags: [{ Key: 'bench-delete', Value: 'yes' }],
          }),
        );
      }
      const c7n = await measure(() =>
        runCustodian({
          custodian,
          endpoint: proxy.endpoint,
          region: REGION,
          job: 'retention',
          tagKey: TAG,
          deleteTag: { key: 'bench-delete', value: 'yes' },
          workDir: join(PROJECT_ROOT, '.bench-c7n', `retention-${size}-${row.limit}`),
        }),
      );
      const left = await allSnapshots(direct, [{ Name: 'tag:bench-delete', Values: ['yes'] }]);
      print(retentionFigures(size, 'c7n', c7n.seconds, c7n.records, marked.length, left.length, 2));
    }
    peerGapsOf('retention', size);
  }

  async function tagAll(key: string, value: string) {
    const instanceIds =
      (
        await direct.send(
          new DescribeInstancesCommand({ Filters: [{ Name: 'tag-key', Values: [TAG] }] }),
        )
      ).Reservations?.flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId ?? '') ?? [];
    for (let i = 0; i < instanceIds.length; i += 1000) {
      await direct.send(
        new CreateTagsCommand({
          Resources: instanceIds.slice(i, i + 1000),
          Tags: [{ Key: key, Value: value }],
        }),
      );
    }
  }

  // 6. snapkeeper AMI retirement: two slots of AMIs made by the job itself straight on
  // the local AWS (not measured, keeping them all), then a measured run of the last slot
  // (its AMIs exist: nothing is created) that keeps 1 of 2: one DeregisterImage per
  // instance and a DeleteSnapshot per snapshot behind it.
  async function amiRows(size: number, fleet: Fleet) {
    await tagAll('snapkeeper:ami', 'daily');
    const seedConfig = loadConfig(
      env({
        AWS_ENDPOINT_URL: aws.endpoint,
        SCHEDULES: JSON.stringify([
          { name: 'daily', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 5 },
        ]),
      }),
    );
    const seedStarted = performance.now();
    for (const daysAgo of AMI_SEED_DAYS) {
      const client = clientFor(seedConfig, aws.endpoint, false);
      await runAmiJob(
        {
          schedule: 'daily',
          scheduledTime: fleet.slot(daysAgo),
          dryRun: false,
          trigger: 'schedule',
        },
        {
          ...deps(fleet, `bench-${size}-ami-seed-${daysAgo}`, new Ec2Gateway(client)),
          config: seedConfig,
          images: new Ec2ImageGateway(client, { tagAfterCreate: true }),
        },
      );
    }
    console.log(
      `  (seeded ${AMI_SEED_DAYS.length * size} AMIs with the AMI job itself, CreateImage straight on moto, in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s)`,
    );
    // Keep 1 of the 2 slots: one DeregisterImage per instance.
    const retireConfig = loadConfig(
      env({
        AWS_ENDPOINT_URL: proxy.endpoint,
        SCHEDULES: JSON.stringify([
          { name: 'daily', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 1 },
        ]),
      }),
    );
    const client = clientFor(retireConfig, proxy.endpoint, true);
    const retire = await measure(() =>
      runAmiJob(
        { schedule: 'daily', scheduledTime: fleet.slot(1), dryRun: false, trigger: 'schedule' },
        {
          ...deps(fleet, `bench-${size}-ami`, new Ec2Gateway(client)),
          config: retireConfig,
          images: new Ec2ImageGateway(client, { tagAfterCreate: true }),
        },
      ),
    );
    const counts = retire.result.counts;
    const snapshotsBehind = retire.result.retired.reduce((n, r) => n + r.snapshots.length, 0);
    print(
      amiFigures(
        size,
        'snapkeeper',
        retire.seconds,
        retire.records,
        counts.deregistered + counts.snapshotsDeleted,
        counts.plannedDeregistrations -
          counts.deregistered +
          (snapshotsBehind - counts.snapshotsDeleted),
        counts.created,
        snapshotsBehind,
      ),
    );
    peerGapsOf('amis', size);
  }

  // 7. snapkeeper copies to another region: every instance names COPY_REGION; one
  // scheduled copy run, which sends at most 20 copies in flight per destination.
  async function copyRows(size: number, fleet: Fleet) {
    const config = loadConfig(env({ AWS_ENDPOINT_URL: proxy.endpoint }));
    await tagAll('snapkeeper:copy-to', COPY_REGION);
    const sourceClient = clientFor(config, proxy.endpoint, true);
    const destClient = clientFor(config, proxy.endpoint, true, COPY_REGION);
    const copy = await measure(() =>
      runCopyJob(
        { trigger: 'schedule', dryRun: false },
        {
          ...deps(fleet, `bench-${size}-copy`, new Ec2Gateway(sourceClient)),
          images: new Ec2ImageGateway(sourceClient, { tagAfterCreate: true }),
          sharing: new Ec2CopyGateway(sourceClient),
          destination: () => ({
            ec2: new Ec2Gateway(destClient),
            images: new Ec2ImageGateway(destClient, { tagAfterCreate: true }),
            copies: new Ec2CopyGateway(destClient),
          }),
        },
      ),
    );
    const made = copy.result.copies.filter((c) => c.outcome === 'copied').length;
    print(
      copyFigures(size, 'snapkeeper', copy.seconds, copy.records, made, copy.result.counts.failed),
    );
    peerGapsOf('copies', size);
  }

  /** The fan-out: planner, then `workers` workers at once, each with its share of the rate. */
  async function fanOutBackup(
    size: number,
    scheduledTime: Date,
    endpoint: string,
    motoEndpoint: string,
  ) {
    const table = `bench-${size}-runs`;
    await createLocalHistoryTable(
      new DynamoDBClient({ region: REGION, endpoint: motoEndpoint }),
      table,
    );
    const sqs = new SQSClient({ region: REGION, endpoint: motoEndpoint });
    const queueUrl =
      (await sqs.send(new CreateQueueCommand({ QueueName: `bench-${size}` }))).QueueUrl ?? '';
    const base = env({
      AWS_ENDPOINT_URL: endpoint,
      HISTORY_TABLE: table,
      FANOUT_QUEUE_URL: queueUrl,
      FANOUT_BATCH_SIZE: '200',
      FANOUT_WORKERS: String(workers),
    });
    const plannerConfig = loadConfig(base);
    const history = createRunHistoryGateway(
      { ...plannerConfig, endpoint: motoEndpoint },
      table,
      30,
    );
    const runId = `bench-${size}-fanout`;
    await history.startRun({
      runId,
      deployment: 'bench',
      job: 'backup',
      trigger: 'schedule',
      dryRun: false,
      startedAt: new Date().toISOString(),
      status: 'running',
    });
    const slot = scheduledTime.toISOString().replace('.000Z', 'Z');
    const plannerTargets = createAwsClients(plannerConfig);
    await planFanOut(
      {
        job: 'backup',
        schedule: 'daily',
        slot,
        dryRun: false,
        trigger: 'schedule',
        resuming: false,
      },
      {
        targets: planTargets(['self'], [REGION]),
        ec2For: (target) => plannerTargets.ec2(target),
        queue: new FanOutQueueGateway(sqs, queueUrl),
        history,
        config: plannerConfig,
        clock: () => new Date(),
        runId,
        logger: silentLogger,
      },
    );
    const workerConfig = loadConfig({ ...base, EC2_RATE_SHARE: String(1 / workers) });
    const worker = async () => {
      const targets = createAwsClients(workerConfig);
      for (;;) {
        const received = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: 1,
            // Longer than a batch takes (a batch of 179 at a quarter of 5/s: 36 s): a
            // message seen again while its batch runs would be a redelivery AWS does not make.
            VisibilityTimeout: 600,
          }),
        );
        const messages: Message[] = received.Messages ?? [];
        if (messages.length === 0) {
          // Like Lambda's pollers: keep polling until the run is finished, gently: on AWS
          // the poller is SQS's, not the local AWS the other workers' calls wait on.
          if ((await history.getRun(runId))?.status !== 'running') return;
          await new Promise((resolve) => setTimeout(resolve, 500));
          continue;
        }
        for (const message of messages) {
          try {
            await runFanOutBatch(parseBatchMessage(JSON.parse(message.Body ?? '')), {
              history,
              ec2For: (target, share) => targets.ec2(target, share),
              rateShareFor: (target, share) => targets.rateShare(target, share),
              config: workerConfig,
              clock: () => new Date(),
              logger: silentLogger,
              journal: logJournal(silentLogger),
            });
            await sqs.send(
              new DeleteMessageCommand({
                QueueUrl: queueUrl,
                ReceiptHandle: message.ReceiptHandle,
              }),
            );
          } catch (error) {
            if (!(error instanceof BatchRetryError)) throw error;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: workers }, () => worker()));
    const run = await history.getRun(runId);
    return {
      runId,
      batches: Number(run?.counts?.batches ?? 0),
      status: run?.status,
      notMade: (volumes: number) => volumes - Number(run?.counts?.snapshots ?? 0),
    };
  }
}

function backupFigures(
  size: number,
  tool: string,
  seconds: number,
  records: readonly ProxyRecord[],
  failed: number,
  instances: number,
  /** A per-volume loop makes CreateSnapshot calls (a bucket of the same size). */
  writeAction: 'CreateSnapshots' | 'CreateSnapshot' = 'CreateSnapshots',
  /** A fan-out's batches: each reads its own instances again when it runs. */
  batches = 0,
): RunFigures {
  // One CreateSnapshots per instance, plus the plan's reads, one page each as moto serves
  // them: the opted-in instances, every tagged instance (the near-miss tag-key scan of
  // issue 15) and the volumes (for the skip tag). A fan-out's batch reads its instances
  // once more when it runs, so that one terminated or untagged since the plan is not
  // backed up: one describe per batch is part of its minimum, not waste.
  const minimumCalls = instances + BACKUP_READS + batches;
  return figures(
    { size, job: 'backup', tool, seconds, failed, minimumCalls },
    records,
    writeAction,
  );
}

/**
 * The naive way: list the tagged instances, then one CreateSnapshot per volume, ten at a
 * time, with the SDK's default retries (3 attempts) and no limiter of its own.
 */
async function naiveBackup(endpoint: string): Promise<{ lost: number }> {
  const ec2 = new EC2Client({ region: REGION, endpoint });
  const volumes: string[] = [];
  const described = await ec2.send(
    new DescribeInstancesCommand({ Filters: [{ Name: 'tag-key', Values: [TAG] }] }),
  );
  for (const reservation of described.Reservations ?? []) {
    for (const instance of reservation.Instances ?? []) {
      for (const mapping of instance.BlockDeviceMappings ?? []) {
        if (mapping.Ebs?.VolumeId) volumes.push(mapping.Ebs.VolumeId);
      }
    }
  }
  const limit = pLimit(10);
  let lost = 0;
  await Promise.all(
    volumes.map((volumeId) =>
      limit(async () => {
        try {
          await ec2.send(
            new CreateSnapshotCommand({
              VolumeId: volumeId,
              TagSpecifications: [
                { ResourceType: 'snapshot', Tags: [{ Key: 'naive', Value: 'yes' }] },
              ],
            }),
          );
        } catch {
          lost += 1;
        }
      }),
    ),
  );
  ec2.destroy();
  return { lost };
}

function retentionFigures(
  size: number,
  tool: string,
  seconds: number,
  records: readonly ProxyRecord[],
  deletions: number,
  failed: number,
  reads: number,
): RunFigures {
  // One DeleteSnapshot per deletion, plus the reads the job needs, one page each.
  const minimumCalls = deletions + reads;
  return figures(
    { size, job: 'retention', tool, seconds, failed, minimumCalls },
    records,
    'DeleteSnapshot',
  );
}

/** A measured run's figures: its EC2 calls, and the rate of its writes against their bucket. */
function figures(
  run: Omit<RunFigures, 'writes' | 'rate' | 'ec2Calls' | 'totalEc2Calls'>,
  records: readonly ProxyRecord[],
  writeAction: string,
): RunFigures {
  const ec2Calls = ec2CallsByAction(records);
  const start = records[0]?.receivedAt ?? 0;
  const actionSpans: Record<
    string,
    { calls: number; seconds: number; notForwarded: number; outcomes: Record<string, number> }
  > = {};
  for (const record of records) {
    const span = actionSpans[record.action] ?? {
      calls: 0,
      seconds: 0,
      notForwarded: 0,
      outcomes: {},
    };
    actionSpans[record.action] = span;
    span.calls += 1;
    span.seconds = (record.receivedAt - start) / 1000;
    if (
      record.outcome !== undefined &&
      record.outcome !== 'forwarded' &&
      record.outcome !== 'delayed'
    ) {
      span.notForwarded += 1;
      // Why (throttled, rewritten, upstream-error, ...): in reports/bench.json.
      span.outcomes[record.outcome] = (span.outcomes[record.outcome] ?? 0) + 1;
    }
  }
  return {
    actionSpans,
    ...run,
    writes: ec2Calls[writeAction] ?? 0,
    writeAction,
    rate: rateOf(
      records,
      writeAction,
      row.buckets[writeAction] ?? { burst: 100, refillPerSecond: 5 * row.timeScale },
    ),
    ec2Calls,
    totalEc2Calls: Object.values(ec2Calls).reduce((a, b) => a + b, 0),
  };
}

function amiFigures(
  size: number,
  tool: string,
  seconds: number,
  records: readonly ProxyRecord[],
  writes: number,
  failed: number,
  created: number,
  /** Snapshots behind the AMIs retired: their ids are described 200 at a time. */
  snapshotsBehind: number,
): RunFigures {
  // One DeregisterImage per AMI retired and one DeleteSnapshot per snapshot behind it
  // (the busier bucket, against which the rate is measured), plus the job's reads at one
  // page each: AMI_READS, and one DescribeSnapshots per SNAPSHOT_IDS_PER_DESCRIBE
  // retired AMIs (the ownership and state of the snapshots behind them are read before any
  // is deleted). An AMI created would be a call too (none is: the slot exists).
  const minimumCalls =
    writes + created + AMI_READS + Math.ceil(snapshotsBehind / SNAPSHOT_IDS_PER_DESCRIBE);
  return figures(
    { size, job: 'amis', tool, seconds, failed, minimumCalls },
    records,
    'DeleteSnapshot',
  );
}

function copyFigures(
  size: number,
  tool: string,
  seconds: number,
  records: readonly ProxyRecord[],
  copies: number,
  failed: number,
): RunFigures {
  const minimumCalls = copies + COPY_READS;
  const run = figures(
    { size, job: 'copies', tool, seconds, failed, minimumCalls },
    records,
    'CopySnapshot',
  );
  const motoOnly = Object.entries(run.ec2Calls)
    .filter(([action]) => MOTO_ONLY_COPY_CALLS.has(action))
    .reduce((n, [, calls]) => n + calls, 0);
  return {
    ...run,
    totalEc2Calls: run.totalEc2Calls - motoOnly,
    note: `${copies} copies: at most 20 in flight per destination per run (AWS's concurrent-copy limit), within the CopySnapshot burst of 50; ${motoOnly} moto-only calls not counted (public-access checks moto cannot filter)`,
  };
}

/** A measured run as a line of the final table, with the row's limit, time scale and capacity. */
function tableRow(run: RunFigures): TableRow {
  return {
    job: run.job,
    size: run.size,
    limit: row.limit,
    tool: run.tool,
    timeScale: row.timeScale,
    writeAction: run.writeAction,
    ofRefill: run.rate.ofRefill,
    slowestWindowOfRefill: run.rate.slowestWindowOfRefill,
    throttled: run.rate.throttled,
    calls: run.totalEc2Calls,
    minimumCalls: run.minimumCalls,
    lost: run.failed,
    seconds: run.seconds,
    capacity: row.capacity,
    localCalls: row.localCalls,
    note: [run.note, row.flagged ? 'FLAGGED: refill within half of the capacity' : undefined]
      .filter(Boolean)
      .join('; '),
  };
}

function formatRun(run: RunFigures): string {
  const fixed = (n: number | undefined, digits = 2) =>
    n === undefined ? 'n/a' : n.toFixed(digits);
  return [
    `${run.job.padEnd(9)} ${String(run.size).padStart(5)} instances  ${run.tool.padEnd(22)}`,
    `${fixed(run.seconds, 1).padStart(6)} s`,
    `rate/refill ${fixed(run.rate.ofRefill).padStart(4)} (slowest 5 s ${fixed(run.rate.slowestWindowOfRefill)}${run.rate.slowestWindowAt ? ` from ${fixed(run.rate.slowestWindowAt.start, 0)} s of ${fixed(run.rate.slowestWindowAt.end, 0)} s` : ''})`,
    `throttled ${String(run.rate.throttled).padStart(4)}`,
    `failed ${String(run.failed).padStart(3)}`,
    `calls/minimum ${fixed(run.totalEc2Calls / run.minimumCalls, 3)} (${run.totalEc2Calls}/${run.minimumCalls})`,
    ...(run.note ? [`(${run.note})`] : []),
  ].join('  ');
}

await main();
