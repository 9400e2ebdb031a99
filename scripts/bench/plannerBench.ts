/**
 * Planner benchmark (not a test): `npx tsx scripts/bench/plannerBench.ts`.
 *
 * Answers "planner time and peak memory for 2,000 instances and 100,000 existing
 * snapshots (target ≤ 2 s CPU, ≤ 256 MB), and how both grow from 1,000 to 2,000
 * instances". For each fleet size, in a fresh `node` process (so that peak memory is
 * that size's own), it generates a synthetic fleet in the domain's own forms and times:
 *
 * - backup planning: {@link planInstanceBackup} of every instance, as the backup job does;
 * - retention planning: {@link planScheduleRetention} over every snapshot, the very
 *   function the retention job calls between reading and deleting;
 * - the whole retention job as a dry run ({@link runRetentionJob}) over an in-memory
 *   gateway, report and its JSON log line included: what a Lambda invocation holds.
 *
 * The fleet: instances with 2 or 3 volumes, opted in with realistic tag maps (retention
 * overrides, tiers, a few typos, the tags an organisation puts on everything); volumes
 * of instances that are gone (orphans); and one schedule's snapshots with the tags the
 * backup job writes ({@link buildResourceTags}), spread over the volumes and the days,
 * a few pending or in error, some held by AMIs. Every snapshot of the run is of one
 * schedule: the worst case for one retention invocation (100,000 is the region's
 * default snapshot quota). Snapshots reach the planner as the gateway streams them:
 * page by page (1,000), parsed from the wire (JSON here, so every string is the
 * process's own copy, as the SDK's parser makes them), mapped to {@link SnapshotFacts}.
 *
 * Each child runs this file bundled with esbuild under plain `node --expose-gc`, as a
 * Lambda runs its bundle (no TypeScript loader in the figures). CPU is `process.cpuUsage()` (user + system, GC threads included) around the planning
 * call only; the heap peak is the largest heap in use just before any GC during the
 * call, or after it (V8's GCProfiler); peak RSS is `process.resourceUsage().maxRSS`.
 * Nothing loads the AWS SDK: the RSS figures are the planner's, not the Lambda's.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { GCProfiler } from 'node:v8';
import {
  BACKED_UP_INSTANCE_STATES,
  type BackupContext,
  buildResourceTags,
  type InstanceBackupDecision,
  type InstanceFacts,
  planInstanceBackup,
} from '../../lib/domain/backupPlan.ts';
import { planScheduleRetention, retentionSnapshot } from '../../lib/domain/retentionRun.ts';
import {
  DEFAULT_SCHEDULES,
  parseScheduleCatalog,
  resolveSchedule,
} from '../../lib/domain/schedules.ts';
import type { SnapshotFacts } from '../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../lib/domain/tagKeys.ts';
import type { TagMap } from '../../lib/domain/tagPolicy.ts';
import type { LoggerPort } from '../../lib/jobs/ports.ts';
import { type RetentionJobDependencies, runRetentionJob } from '../../lib/jobs/retentionJob.ts';
import type { CliSpec } from '../cli.ts';

/** The budget the planners must fit, for the largest fleet. */
export const PLANNER_TARGETS = { cpuSeconds: 2, memoryMB: 256 } as const;

/** The fleets measured: 1,000 instances with 50,000 snapshots, and twice that. */
export const PLANNER_BENCH_SIZES: readonly PlannerBenchSize[] = [
  { instances: 1000, snapshots: 50_000 },
  { instances: 2000, snapshots: 100_000 },
];

/** One fleet size. */
export interface PlannerBenchSize {
  readonly instances: number;
  readonly snapshots: number;
}

/** Time of one measured step. */
export interface StepFigures {
  readonly cpuSeconds: number;
  readonly wallSeconds: number;
  /** The largest heap in use during the step (before any GC, or at its end). */
  readonly heapPeakMB: number;
  /** What the step's result still holds once garbage is collected. */
  readonly retainedMB: number;
  /** The process's peak RSS at the end of the step (since the process started). */
  readonly peakRssMB: number;
}

/** Everything measured for one fleet size, in its own process. */
export interface PlannerFigures extends PlannerBenchSize {
  readonly volumes: number;
  readonly orphanVolumes: number;
  /** RSS once the code is loaded, before any input exists. */
  readonly rssStartMB: number;
  /** RSS once instances and snapshots are in memory. */
  readonly rssAfterInputMB: number;
  /** Heap held by the instances (InstanceFacts, with their tags) and the volume tags. */
  readonly fleetMB: number;
  /** Heap held by the snapshots, as the job holds them (SnapshotFacts[]). */
  readonly snapshotFactsMB: number;
  readonly bytesPerSnapshot: number;
  /** Heap the same snapshots hold in the retention job's compact form ({@link retentionSnapshot}). */
  readonly compactMB: number;
  readonly bytesPerCompactSnapshot: number;
  /** CPU to generate and parse the snapshots (page by page): a stand-in for reading them. */
  readonly inputCpuSeconds: number;
  readonly backupPlan: StepFigures & { readonly decisions: number };
  readonly retentionPlan: StepFigures & { readonly plannedDeletes: number };
  /**
   * The whole retention job, dry run, its in-memory gateway streaming freshly generated
   * pages (generation CPU included; the full snapshots are no longer held).
   */
  readonly retentionJob: StepFigures & { readonly reportLogMB: number };
  /** The planners' process's peak RSS: the runtime, the input held and both planners. */
  readonly plannerPeakRssMB: number;
}

/** The figures of every size, the growth from the first size to the last, and verdicts. */
export interface PlannerBenchResult {
  readonly sizes: readonly PlannerFigures[];
  /** Figure name → last size's value / first size's value. */
  readonly growth: Readonly<Record<string, number>>;
  readonly verdicts: readonly { readonly what: string; readonly pass: boolean }[];
}

/**
 * Runs the planner benchmark: each size in a fresh child process, in turn.
 *
 * @example
 * const result = await runPlannerBench();
 * console.log(formatPlannerBench(result));
 */
export async function runPlannerBench(
  sizes: readonly PlannerBenchSize[] = PLANNER_BENCH_SIZES,
): Promise<PlannerBenchResult> {
  const bundle = await bundleSelf();
  const figures: PlannerFigures[] = [];
  for (const size of sizes) figures.push(await measureSize(bundle, size));
  const first = figures[0];
  const last = figures[figures.length - 1];
  const growth: Record<string, number> = {};
  if (first && last && first !== last) {
    const pick = (f: PlannerFigures): Record<string, number> => ({
      'backup-plan cpu': f.backupPlan.cpuSeconds,
      'retention-plan cpu': f.retentionPlan.cpuSeconds,
      'retention-plan heap-peak': f.retentionPlan.heapPeakMB,
      'planner peak-rss': f.plannerPeakRssMB,
      'snapshot-facts heap': f.snapshotFactsMB,
      'compact snapshots heap': f.compactMB,
      'retention-job cpu': f.retentionJob.cpuSeconds,
      'retention-job heap-peak': f.retentionJob.heapPeakMB,
      'retention-job peak-rss': f.retentionJob.peakRssMB,
    });
    const a = pick(first);
    const b = pick(last);
    for (const [name, value] of Object.entries(b)) growth[name] = value / (a[name] ?? Number.NaN);
  }
  const verdicts = last
    ? [
        {
          what: `planning cpu ≤ ${PLANNER_TARGETS.cpuSeconds} s (backup + retention, ${last.instances} instances)`,
          pass:
            last.backupPlan.cpuSeconds + last.retentionPlan.cpuSeconds <=
            PLANNER_TARGETS.cpuSeconds,
        },
        {
          what: `planner peak-rss ≤ ${PLANNER_TARGETS.memoryMB} MB (input included)`,
          pass: last.plannerPeakRssMB <= PLANNER_TARGETS.memoryMB,
        },
        {
          what: `retention job (dry run) cpu without generate+parse ≤ ${PLANNER_TARGETS.cpuSeconds} s`,
          pass: last.retentionJob.cpuSeconds - last.inputCpuSeconds <= PLANNER_TARGETS.cpuSeconds,
        },
        {
          what: `retention job (dry run) peak-rss ≤ ${PLANNER_TARGETS.memoryMB} MB`,
          pass: last.retentionJob.peakRssMB <= PLANNER_TARGETS.memoryMB,
        },
      ]
    : [];
  return { sizes: figures, growth, verdicts };
}

/**
 * The benchmark's figures as the table printed when the script runs.
 *
 * @example
 * console.log(formatPlannerBench(await runPlannerBench()));
 */
export function formatPlannerBench(result: PlannerBenchResult): string {
  const s = (n: number) => `${n.toFixed(2)}s`;
  const mb = (n: number) => `${n.toFixed(0)}MB`;
  const lines: string[] = [];
  for (const f of result.sizes) {
    lines.push(
      `planner  instances=${f.instances} snapshots=${f.snapshots} volumes=${f.volumes} (orphans ${f.orphanVolumes})`,
      `  input          rss-start=${mb(f.rssStartMB)}  rss-after-input=${mb(f.rssAfterInputMB)}  fleet-heap=${mb(f.fleetMB)}  generate+parse cpu=${s(f.inputCpuSeconds)}`,
      `  snapshots      SnapshotFacts heap=${mb(f.snapshotFactsMB)} (${f.bytesPerSnapshot} B each)  retention's compact form=${mb(f.compactMB)} (${f.bytesPerCompactSnapshot} B each)`,
      `  backup-plan    cpu=${s(f.backupPlan.cpuSeconds)}  wall=${s(f.backupPlan.wallSeconds)}  heap-peak=${mb(f.backupPlan.heapPeakMB)}  retained=${mb(f.backupPlan.retainedMB)}  decisions=${f.backupPlan.decisions}`,
      `  retention-plan cpu=${s(f.retentionPlan.cpuSeconds)}  wall=${s(f.retentionPlan.wallSeconds)}  heap-peak=${mb(f.retentionPlan.heapPeakMB)}  retained=${mb(f.retentionPlan.retainedMB)}  deletes=${f.retentionPlan.plannedDeletes}`,
      `  planner        peak-rss=${mb(f.plannerPeakRssMB)}  (input + both planners)`,
      `  retention-job  cpu=${s(f.retentionJob.cpuSeconds)} (≈${s(f.retentionJob.cpuSeconds - f.inputCpuSeconds)} without generate+parse)  wall=${s(f.retentionJob.wallSeconds)}  heap-peak=${mb(f.retentionJob.heapPeakMB)}  peak-rss=${mb(f.retentionJob.peakRssMB)}  report-log-line=${mb(f.retentionJob.reportLogMB)}`,
      `                 (dry run in its own process, input streamed page by page; its cpu includes generate+parse)`,
    );
  }
  const growth = Object.entries(result.growth);
  if (growth.length > 0) {
    const first = result.sizes[0];
    const last = result.sizes[result.sizes.length - 1];
    lines.push(
      `growth ${first?.instances}→${last?.instances} instances (×${((last?.snapshots ?? 0) / (first?.snapshots ?? 1)).toFixed(1)} snapshots):`,
      ...growth.map(([name, ratio]) => `  ${name.padEnd(26)} ×${ratio.toFixed(2)}`),
    );
  }
  for (const v of result.verdicts) lines.push(`${v.pass ? 'PASS' : 'FAIL'}  ${v.what}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------
// The child: one size, measured in a process of its own.

const CHILD_FLAG = '--child';

/**
 * Bundles this file as a deployment bundles a function (esbuild, one ESM file), so
 * that the child runs plain `node` as Lambda does: no TypeScript loader in its memory.
 */
async function bundleSelf(): Promise<string> {
  const { build } = await import('esbuild');
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const outfile = join(root, '.bench-planner', 'plannerBench.mjs');
  await build({
    entryPoints: [fileURLToPath(import.meta.url)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    mainFields: ['module', 'main'],
    external: ['esbuild'],
    logLevel: 'error',
  });
  return outfile;
}

function measureInChild(bundle: string, size: PlannerBenchSize, step: ChildStep): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--expose-gc', bundle, CHILD_FLAG, JSON.stringify({ ...size, step })],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    let figures: unknown;
    child.on('message', (message) => {
      figures = message;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (figures && code === 0) resolve(figures);
      else
        reject(new Error(`planner bench child (${step}, ${JSON.stringify(size)}) exited ${code}`));
    });
  });
}

const MB = 1024 * 1024;
const DAY_MS = 86_400_000;
const DEPLOYMENT = 'prod';
const SCHEDULE = 'daily';
/** An hour after the daily backup of 2026-11-23: when its retention runs. */
const NOW = new Date('2026-11-23T04:00:00.000Z');
const COPY_TAGS = ['CostCenter', 'Team', 'Environment'];
const keys = tagKeys();
const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run the child with --expose-gc');
  gc();
  gc();
}

const heapMB = () => process.memoryUsage().heapUsed / MB;
const rssMB = () => process.memoryUsage().rss / MB;
const peakRssMB = () => process.resourceUsage().maxRSS / 1024;

/** Runs one step, measuring CPU, wall time, the heap peak and what its result retains. */
async function measureStep<T>(
  step: () => T | Promise<T>,
): Promise<{ result: T; figures: StepFigures }> {
  collectGarbage();
  const heapBefore = heapMB();
  const profiler = new GCProfiler();
  profiler.start();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const result = await step();
  const wallSeconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const heapAtEnd = heapMB();
  const gcs = profiler.stop().statistics;
  const heapPeakMB = Math.max(
    heapBefore,
    heapAtEnd,
    ...gcs.map((g) => g.beforeGC.heapStatistics.usedHeapSize / MB),
  );
  collectGarbage();
  return {
    result,
    figures: {
      cpuSeconds: (used.user + used.system) / 1e6,
      wallSeconds,
      heapPeakMB,
      retainedMB: heapMB() - heapBefore,
      peakRssMB: peakRssMB(),
    },
  };
}

/** A small deterministic generator, so that every run plans the same fleet. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 1, 2, 3, ... on successive calls. */
function counter(): () => number {
  let n = 0;
  return () => {
    n += 1;
    return n;
  };
}

/** An EC2-style id: the prefix and 17 hex digits. */
const ec2Id = (prefix: string, n: number) => `${prefix}-0${n.toString(16).padStart(16, '0')}`;

interface SyntheticFleet {
  readonly instances: InstanceFacts[];
  readonly volumeTags: Map<string, TagMap>;
  /** Every volume with a history: the fleet's, then the orphans'. */
  readonly histories: { volumeId: string; instanceId: string; tags: TagMap; goneDays: number }[];
  readonly orphanVolumes: number;
}

const APPS = ['web', 'api', 'db', 'cache', 'worker', 'search', 'etl', 'auth'];
const TEAMS = ['platform', 'payments', 'data', 'growth', 'identity'];
const ENVIRONMENTS = ['prod', 'prod', 'staging', 'dev'];

function generateFleet(count: number, random: () => number): SyntheticFleet {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  const instances: InstanceFacts[] = [];
  const volumeTags = new Map<string, TagMap>();
  const histories: SyntheticFleet['histories'] = [];
  const nextVolume = counter();
  const makeInstance = (n: number): InstanceFacts => {
    const app = pick(APPS);
    const environment = pick(ENVIRONMENTS);
    const team = pick(TEAMS);
    const tags: Record<string, string> = {
      Name: `${app}-${environment}-${String(n).padStart(4, '0')}`,
      Environment: environment,
      Team: team,
      CostCenter: `cc-${1000 + Math.floor(random() * 40)}`,
      Application: app,
      Owner: `${team}-oncall@example.com`,
      ManagedBy: 'terraform',
      'Patch Group': `${environment}-linux`,
    };
    if (random() < 0.4) tags['aws:cloudformation:stack-name'] = `${app}-${environment}-stack`;
    if (random() < 0.3) tags['aws:autoscaling:groupName'] = `${app}-${environment}-asg`;
    const optIn = random();
    tags[keys.backup] =
      optIn < 0.005
        ? 'dialy'
        : optIn < 0.7
          ? 'true'
          : optIn < 0.9
            ? 'daily,weekly'
            : 'daily,weekly,monthly';
    const retain = random();
    if (retain < 0.005) tags[keys.retain] = 'seven';
    else if (retain < 0.15) tags[keys.retain] = '14';
    else if (retain < 0.25) tags[keys.retain] = 'daily=30,weekly=8';
    if (random() < 0.1) tags[keys.retainDays] = '10';
    if (random() < 0.1) tags[keys.retainTiers] = 'daily=7,weekly=4,monthly=12';
    if (random() < 0.05) tags[keys.excludeBoot] = 'true';
    if (random() < 0.05) tags[keys.copyTo] = 'eu-west-1';
    const devices = ['/dev/xvda', '/dev/sdf', '/dev/sdg'].slice(0, random() < 0.5 ? 2 : 3);
    const volumes = devices.map((deviceName) => ({
      volumeId: ec2Id('vol', nextVolume()),
      deviceName,
    }));
    return {
      instanceId: ec2Id('i', n),
      state: random() < 0.95 ? 'running' : 'stopped',
      rootDeviceName: '/dev/xvda',
      tags,
      volumes,
    };
  };
  for (let n = 1; n <= count; n += 1) {
    const instance = makeInstance(n);
    instances.push(instance);
    for (const volume of instance.volumes) {
      const skip = random();
      if (skip < 0.03) {
        volumeTags.set(volume.volumeId, {
          Name: `${instance.tags.Name}-scratch`,
          [keys.skip]: skip < 0.02 ? 'true' : 'false',
        });
      }
      // Most volumes are backed up every day; a few have not been for three days (failing).
      histories.push({
        volumeId: volume.volumeId,
        instanceId: instance.instanceId,
        tags: instance.tags,
        goneDays: random() < 0.01 ? 3 : 0,
      });
    }
  }
  // Instances terminated since: their volumes' histories are orphans, the last one days old.
  const orphanInstances = Math.ceil(count * 0.05);
  let orphanVolumes = 0;
  for (let n = 1; n <= orphanInstances; n += 1) {
    const gone = makeInstance(count + n);
    const goneDays = 1 + Math.floor(random() * 60);
    for (const volume of gone.volumes) {
      orphanVolumes += 1;
      histories.push({
        volumeId: volume.volumeId,
        instanceId: gone.instanceId,
        tags: gone.tags,
        goneDays,
      });
    }
  }
  return { instances, volumeTags, histories, orphanVolumes };
}

/** EC2's DescribeSnapshots item, as it comes off the wire (dates as text). */
interface WireSnapshot {
  SnapshotId: string;
  VolumeId: string;
  State: string;
  StartTime: string;
  VolumeSize: number;
  Description: string;
  OwnerId: string;
  Encrypted: boolean;
  KmsKeyId?: string;
  Tags: { Key: string; Value: string }[];
}

/** Snapshots per DescribeSnapshots page, as the gateway asks for them. */
const PAGE_SIZE = 1000;

/**
 * One schedule's snapshots over the fleet's histories, `total` in all, yielded one at a
 * time as the gateway yields them: page by page, each page parsed from the wire. The
 * same seed yields the same snapshots, so the job step can stream them afresh.
 */
function* streamSnapshots(
  fleet: SyntheticFleet,
  total: number,
  seed: number,
): Generator<SnapshotFacts> {
  const random = seededRandom(seed);
  // Days of history per volume: around the mean, between half and one and a half of it.
  const mean = total / fleet.histories.length;
  const days = fleet.histories.map(() => Math.max(1, Math.round(mean * (0.5 + random()))));
  let sum = days.reduce((a, b) => a + b, 0);
  for (let i = 0; sum !== total; i = (i + 1) % days.length) {
    const d = days[i] ?? 1;
    if (sum < total) {
      days[i] = d + 1;
      sum += 1;
    } else if (d > 1) {
      days[i] = d - 1;
      sum -= 1;
    }
  }
  const runIds = new Map<number, string>();
  const runIdOf = (day: number) => {
    let id = runIds.get(day);
    if (!id) {
      const at = new Date(NOW.getTime() - day * DAY_MS - 3_600_000);
      const suffix = Math.floor(random() * 0xffffffff)
        .toString(16)
        .padStart(8, '0');
      id = `${at.toISOString().replace(/[-:]/g, '').slice(0, 15)}Z-${suffix}`;
      runIds.set(day, id);
    }
    return id;
  };
  // The wire: every string the job holds is its own copy, as the SDK's parser makes it.
  const parse = (page: WireSnapshot[]) =>
    (JSON.parse(JSON.stringify({ Snapshots: page })) as { Snapshots: WireSnapshot[] }).Snapshots;

  let page: WireSnapshot[] = [];
  const nextSnapshot = counter();
  for (const [index, history] of fleet.histories.entries()) {
    const count = days[index] ?? 1;
    const pendingNewest = random() < 0.03;
    const sizeGiB = [8, 20, 50, 100, 500][Math.floor(random() * 5)] ?? 8;
    const encrypted = random() < 0.5;
    for (let i = 0; i < count; i += 1) {
      const day = history.goneDays + i;
      const slotTime = new Date(Date.UTC(2026, 10, 23, 3) - day * DAY_MS);
      const slot = `${slotTime.toISOString().slice(0, 19)}Z`;
      const startedAt = new Date(slotTime.getTime() + 2000 + Math.floor(random() * 1000));
      const start = new Date(startedAt.getTime() + Math.floor(random() * 120_000));
      const tags = buildResourceTags(history.instanceId, history.tags, {
        keys,
        schedule: SCHEDULE,
        slot,
        deployment: DEPLOYMENT,
        runId: runIdOf(day),
        createdAt: startedAt.toISOString(),
        copyTags: COPY_TAGS,
      });
      const state = i === 0 && pendingNewest ? 'pending' : random() < 0.002 ? 'error' : 'completed';
      page.push({
        SnapshotId: ec2Id('snap', nextSnapshot()),
        VolumeId: history.volumeId,
        State: state,
        StartTime: start.toISOString(),
        VolumeSize: sizeGiB,
        Description: `snapkeeper ${SCHEDULE} ${slot} ${history.instanceId} (${history.tags.Name})`,
        OwnerId: '123456789012',
        Encrypted: encrypted,
        ...(encrypted
          ? {
              KmsKeyId:
                'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
            }
          : {}),
        Tags: tags.map((t) => ({ Key: t.Key, Value: t.Value })),
      });
      if (page.length === PAGE_SIZE) {
        for (const wire of parse(page)) yield toSnapshotFacts(wire);
        page = [];
      }
    }
  }
  for (const wire of parse(page)) yield toSnapshotFacts(wire);
}

/** The snapshots registered AMIs use: about one in a hundred, one AMI each. */
function imageHolders(total: number): Map<string, string[]> {
  const holders = new Map<string, string[]>();
  for (let n = 13; n <= total; n += 97) {
    holders.set(ec2Id('snap', n), [ec2Id('ami', holders.size + 1)]);
  }
  return holders;
}

/** What Ec2Gateway.listSnapshotsTagged yields for one described snapshot. */
function toSnapshotFacts(s: WireSnapshot): SnapshotFacts {
  const tags: Record<string, string> = {};
  for (const tag of s.Tags) tags[tag.Key] = tag.Value;
  return {
    snapshotId: s.SnapshotId,
    volumeId: s.VolumeId,
    state: s.State,
    startTime: new Date(s.StartTime),
    tags,
    sizeGiB: s.VolumeSize,
    description: s.Description,
    ownerId: s.OwnerId,
    encrypted: s.Encrypted,
    kmsKeyId: s.KmsKeyId,
  };
}

/** A logger that serialises what it is given, as Powertools' does, and keeps only the size. */
function serialisingLogger(): LoggerPort & { largestLineBytes: number } {
  const logger = {
    largestLineBytes: 0,
    log(message: string, extra: unknown[]) {
      const line = JSON.stringify({ message, ...Object.assign({}, ...extra) });
      logger.largestLineBytes = Math.max(logger.largestLineBytes, line.length);
    },
    debug: (message: string, ...extra: unknown[]) => logger.log(message, extra),
    info: (message: string, ...extra: unknown[]) => logger.log(message, extra),
    warn: (message: string, ...extra: unknown[]) => logger.log(message, extra),
    error: (message: string, ...extra: unknown[]) => logger.log(message, extra),
  };
  return logger;
}

const FLEET_SEED = 20261123;
const SNAPSHOT_SEED = 4000;

/** The input, then both planners, on the input held in memory as the job holds it. */
async function measurePlanners(size: PlannerBenchSize, fleet: SyntheticFleet, heapFleet: number) {
  const holders = imageHolders(size.snapshots);
  const cpu = process.cpuUsage();
  const snapshots = [...streamSnapshots(fleet, size.snapshots, SNAPSHOT_SEED)];
  const used = process.cpuUsage(cpu);
  collectGarbage();
  const heapInput = heapMB();
  const rssAfterInputMB = rssMB();

  const schedule = resolveSchedule(catalog, SCHEDULE);
  const context: BackupContext = {
    keys,
    catalog,
    schedule: SCHEDULE,
    slot: '2026-11-23T03:00:00Z',
    deployment: DEPLOYMENT,
    runId: '20261123T030002Z-9f3a12bc',
    createdAt: '2026-11-23T03:00:02.000Z',
    copyTags: COPY_TAGS,
    volumeTags: fleet.volumeTags,
  };
  // As the backup job plans: every instance read, the not-due left out.
  const backup = await measureStep(() =>
    fleet.instances
      .map((instance) => planInstanceBackup(instance, context))
      .filter(
        (d): d is Exclude<InstanceBackupDecision, { kind: 'not-due' }> => d.kind !== 'not-due',
      ),
  );
  const retention = await measureStep(() =>
    planScheduleRetention({
      schedule,
      snapshots,
      holders,
      instances: liveInstances(fleet),
      volumeTags: fleet.volumeTags,
      keys,
      catalog,
      deployment: DEPLOYMENT,
      now: NOW,
    }),
  );
  const plannerPeakRssMB = peakRssMB();

  // The form the retention job keeps of what it streams, the full form left behind
  // (measured last, so that it adds nothing to the planners' peak).
  snapshots.length = 0;
  collectGarbage();
  const heapBase = heapMB();
  const compact: SnapshotFacts[] = [];
  for (const snapshot of streamSnapshots(fleet, size.snapshots, SNAPSHOT_SEED)) {
    compact.push(retentionSnapshot(snapshot, keys));
  }
  collectGarbage();
  const compactMB = heapMB() - heapBase;
  // Still referenced here, or the compiler may let it go before it is measured.
  if (compact.length !== size.snapshots) throw new Error('the compact form lost snapshots');
  return {
    rssAfterInputMB,
    inputCpuSeconds: (used.user + used.system) / 1e6,
    snapshotFactsMB: heapInput - heapFleet,
    compactMB,
    backupPlan: { ...backup.figures, decisions: backup.result.length },
    retentionPlan: { ...retention.figures, plannedDeletes: retention.result.plannedDeletes },
    plannerPeakRssMB,
  };
}

/** What the job's gateway lists: the instances not terminated, by id. */
function liveInstances(fleet: SyntheticFleet): Map<string, InstanceFacts> {
  return new Map(
    fleet.instances
      .filter((i) => BACKED_UP_INSTANCE_STATES.includes(i.state))
      .map((i) => [i.instanceId, i]),
  );
}

/** The whole retention job, dry run, its gateway streaming freshly generated pages. */
async function measureJob(size: PlannerBenchSize, fleet: SyntheticFleet) {
  const logger = serialisingLogger();
  const holders = imageHolders(size.snapshots);
  const instances = liveInstances(fleet);
  const ec2: RetentionJobDependencies['ec2'] = {
    async *listSnapshotsTagged() {
      yield* streamSnapshots(fleet, size.snapshots, SNAPSHOT_SEED);
    },
    snapshotHolders: async () => holders,
    async *listInstancesWithTagKey() {
      yield* instances.values();
    },
    volumeTagsWithKey: async () => fleet.volumeTags,
    deleteSnapshot: async () => {},
  };
  const job = await measureStep(() =>
    runRetentionJob(
      { schedule: SCHEDULE, dryRun: true, trigger: 'console' },
      {
        ec2,
        config: {
          deployment: DEPLOYMENT,
          keys,
          catalog,
          maxDeletions: { kind: 'percent', value: 100 },
          deleteConcurrency: 10,
          manualRetainDays: 30,
        },
        clock: () => NOW,
        runId: '20261123T040000Z-bench000',
        logger,
        // Planning alone: no run history, ownership by the tags.
        ledger: undefined,
      },
    ),
  );
  return {
    ...job.figures,
    plannedDeletes: job.result.counts.planned,
    reportLogMB: logger.largestLineBytes / MB,
  };
}

/** What one child measures: the planners on held input, or the whole job streaming it. */
type ChildStep = 'planners' | 'job';

async function runChild(size: PlannerBenchSize, step: ChildStep) {
  collectGarbage();
  const rssStartMB = rssMB();
  const heapStart = heapMB();
  const fleet = generateFleet(size.instances, seededRandom(FLEET_SEED));
  collectGarbage();
  const heapFleet = heapMB();
  if (step === 'job') return { retentionJob: await measureJob(size, fleet) };
  return {
    ...size,
    volumes: fleet.histories.length,
    orphanVolumes: fleet.orphanVolumes,
    rssStartMB,
    fleetMB: heapFleet - heapStart,
    ...(await measurePlanners(size, fleet, heapFleet)),
  };
}

/** Both children of one size, one after the other, checked against each other. */
async function measureSize(bundle: string, size: PlannerBenchSize): Promise<PlannerFigures> {
  const planners = (await measureInChild(bundle, size, 'planners')) as Omit<
    PlannerFigures,
    'retentionJob' | 'bytesPerSnapshot' | 'bytesPerCompactSnapshot'
  >;
  const { retentionJob } = (await measureInChild(bundle, size, 'job')) as {
    retentionJob: PlannerFigures['retentionJob'] & { plannedDeletes: number };
  };
  if (retentionJob.plannedDeletes !== planners.retentionPlan.plannedDeletes) {
    throw new Error(
      `the job planned ${retentionJob.plannedDeletes} deletions, the planner ${planners.retentionPlan.plannedDeletes}`,
    );
  }
  return {
    ...planners,
    bytesPerSnapshot: Math.round((planners.snapshotFactsMB * MB) / size.snapshots),
    bytesPerCompactSnapshot: Math.round((planners.compactMB * MB) / size.snapshots),
    retentionJob,
  };
}

/** `npm run bench:planner`'s command line (`--child` is internal: one measuring child). */
export const PLANNER_BENCH_COMMAND: CliSpec = {
  command: 'npm run bench:planner --',
  summary: `Planner benchmark (not a test): planner time and peak memory for ${PLANNER_BENCH_SIZES.map((s) => `${s.instances.toLocaleString('en-US')} instances and ${s.snapshots.toLocaleString('en-US')} snapshots`).join(', then ')}, each size in fresh node processes running this file bundled; target ≤ ${PLANNER_TARGETS.cpuSeconds} s CPU and ≤ ${PLANNER_TARGETS.memoryMB} MB for the largest. Needs no AWS.`,
  options: {},
  examples: ['npm run bench:planner', 'npm run bench:planner -- --json > planner.json'],
  notes: ['--json prints the figures as JSON. --verbose changes nothing. --help measures nothing.'],
};

/**
 * Runs `npm run bench:planner` with a command line; answers the exit code (2 for a bad
 * command line). The command line helpers are imported here only, at run time, so that
 * the measuring children's bundle never holds them (nor the AWS SDK they import).
 *
 * @example
 * process.exitCode = await plannerBenchCommand(['--json']);
 */
export async function plannerBenchCommand(
  argv: readonly string[],
  io: { out: (text: string) => void; err: (text: string) => void } = {
    out: (text) => console.log(text),
    err: (text) => console.error(text),
  },
): Promise<number> {
  const cli = (await import(CLI_MODULE)) as typeof import('../cli.ts');
  try {
    const parsed = cli.parseCommandLine(PLANNER_BENCH_COMMAND, argv);
    if (parsed.help) {
      io.out(cli.helpText(PLANNER_BENCH_COMMAND));
      return 0;
    }
    const result = await runPlannerBench();
    io.out(parsed.json ? JSON.stringify(result, null, 2) : formatPlannerBench(result));
    return 0;
  } catch (error) {
    io.err(`bench:planner: ${cli.errorLine(error)}`);
    return error instanceof cli.UsageError ? 2 : 1;
  }
}

/** Not a literal: esbuild leaves the import out of the children's bundle. */
const CLI_MODULE = new URL('../cli.ts', import.meta.url).href;

const invokedPath = process.argv[1];
if (invokedPath && import.meta.url === pathToFileURL(invokedPath).href) {
  if (process.argv.includes(CHILD_FLAG)) {
    const { values } = parseArgs({
      options: { child: { type: 'string' } },
      allowPositionals: false,
    });
    const { step, ...size } = JSON.parse(values.child ?? '{}') as PlannerBenchSize & {
      step: ChildStep;
    };
    const figures = await runChild(size, step);
    process.send?.(figures, () => process.disconnect?.());
  } else {
    process.exitCode = await plannerBenchCommand(process.argv.slice(2));
  }
}
