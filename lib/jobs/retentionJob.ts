import { toAwsCallError } from '../aws/errors.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import type { InstanceFacts } from '../domain/backupPlan.ts';
import { type CapCheck, checkDeletionCap } from '../domain/deletionCap.ts';
import {
  type ExcludedSnapshot,
  type PlannedVolumeRetention,
  planScheduleRetention,
  retentionSnapshot,
  type ScheduleRetentionPlan,
  type VolumeLineage,
} from '../domain/retentionRun.ts';
import { resolveJobSchedule, type ScheduleDefinition } from '../domain/schedules.ts';
import type { SnapshotFacts } from '../domain/snapshotFacts.ts';
import type { TagMap } from '../domain/tagPolicy.ts';
import type { ArchiveOutcome } from './archiveTiering.ts';
import { Behind } from './historyPipeline.ts';
import { type CreationLedger, readOwnership } from './ownership.ts';
import { DEFAULT_MAX_IN_FLIGHT, isThrottleCode, PacedPool } from './pacedPool.ts';
import type { ActionJournal, Ec2Port, ReportedError, SnapshotTiersPort } from './ports.ts';
import { type DeletionAttempt, deleteSnapshotWithResult } from './recordedDeletion.ts';
import {
  archiveScheduleStep,
  holdArchiveMinimum,
  type LockRecheck,
  type RetentionTiersDependencies,
  recheckScheduleLocks,
} from './retentionTiers.ts';
import { openRun, type RunEssentials, type RunInput, type RunReportHeader } from './runOpening.ts';
import { closeRun, runStatus } from './runReport.ts';
import { type LockOutcome, withLockHolds } from './snapshotLocks.ts';
import {
  type RetentionCostDependencies,
  type RetentionCosts,
  retentionCosts,
} from './snapshotSizes.ts';

/** What a retention run is asked to do. */
export interface RetentionJobInput extends RunInput {
  readonly schedule: string;
  /** A one-run override of MAX_DELETIONS, confirmed by the operator. */
  readonly maxDeletions?: number | undefined;
}

/** One deletion, planned or done. */
export interface DeletionResult {
  readonly snapshotId: string;
  readonly reason: string;
  readonly sizeGiB?: number | undefined;
  /** planned: dry run or held back by the cap; skipped: a race (in use, already gone). */
  /** deferred: not started, too little time left; the next run deletes it. */
  readonly outcome: 'deleted' | 'planned' | 'skipped' | 'failed' | 'deferred';
  readonly error?: ReportedError;
}

/** Retention of one volume's history for the schedule. */
export interface VolumeRetentionResult
  extends Pick<VolumeLineage, 'volumeId' | 'instanceId' | 'name' | 'orphan' | 'rule'> {
  readonly kept: readonly { snapshotId: string; reason: string }[];
  readonly deletions: readonly DeletionResult[];
  readonly blocked: readonly {
    snapshotId: string;
    reason: string;
    heldBy: readonly string[];
    sizeGiB?: number | undefined;
  }[];
  /** Set when nothing was deleted because the volume's backups are failing. */
  readonly failing?: string;
  readonly problems?: readonly string[];
}

/** The JSON report of a retention run. */
export interface RetentionReport extends RunReportHeader<'retention'> {
  readonly schedule: string;
  readonly counts: {
    readonly volumes: number;
    readonly snapshotsInScope: number;
    readonly kept: number;
    readonly planned: number;
    readonly deleted: number;
    readonly skipped: number;
    readonly blocked: number;
    readonly failed: number;
    /** GiB of source volume size held by blocked deletions (bytes freed may be less: snapshots are incremental). */
    readonly blockedGiB: number;
    /** Snapshots with this schedule's tags that this retention does not own (see `excluded`). */
    readonly excluded?: number;
  };
  readonly cap: CapCheck;
  /** Snapshots left for the next run of an `incomplete` one. */
  readonly remaining?: readonly string[];
  /**
   * The dead-man's switch: the age in seconds of the oldest "newest completed snapshot"
   * across the opted-in volumes of the schedule (the daily sweep publishes the same as RecoveryPointAge; its alarm
   * fires above twice the interval, and when it is missing).
   */
  readonly oldestRecoveryPointAgeSeconds?: number;
  readonly volumes: readonly VolumeRetentionResult[];
  /**
   * Kept and only reported, by id with the reason: disaster-recovery copies, AMI
   * snapshots, snapshots of an unknown volume, and snapshots tagged as ours that the run
   * history never recorded creating.
   */
  readonly excluded?: readonly ExcludedSnapshot[];
  /** Locks re-applied (or that failed to be) on points their schedule or instance locks. */
  readonly locks?: readonly LockOutcome[];
  /** The archive step of a schedule with `archiveAfterDays`. */
  readonly archive?: readonly ArchiveOutcome[];
  /** `snapkeeper:lock` tags that cannot be read, by key and value (the run is `partial`). */
  readonly lockProblems?: readonly string[];
  readonly error?: ReportedError;
  /** The cost ledger: what the schedule's snapshots cost, and what the plan frees (lib/jobs/snapshotSizes.ts). */
  readonly costs?: RetentionCosts;
}

/** What the retention job reads and acts through. */
export interface RetentionJobDependencies extends RunEssentials {
  readonly ec2: Pick<
    Ec2Port,
    | 'listSnapshotsTagged'
    | 'snapshotHolders'
    | 'listInstancesWithTagKey'
    | 'volumeTagsWithKey'
    | 'deleteSnapshot'
  >;
  readonly config: Pick<
    SnapkeeperConfig,
    'deployment' | 'keys' | 'catalog' | 'maxDeletions' | 'deleteConcurrency' | 'manualRetainDays'
  > &
    Partial<Pick<SnapkeeperConfig, 'maxInFlight' | 'allowComplianceLocks'>>;
  /** Snapshot locks and tiers; absent, no lock or tier call is made. */
  readonly tiers?: SnapshotTiersPort | undefined;
  /**
   * The run history's creation records: only what it recorded as created by this
   * deployment is deleted. Required, so that no caller forgets it: every handler passes
   * the history; `undefined` (benches, unit tests of other rules) lets the tags decide.
   */
  readonly ledger: CreationLedger | undefined;
  /**
   * The cost ledger: the run history's snapshot sizes, and the EBS direct APIs to measure
   * new ones (scheduled runs only). Without `sizes` the report carries no costs.
   */
  readonly costs?: Pick<RetentionCostDependencies, 'ebs' | 'sizes' | 'config'> | undefined;
}

/**
 * The retention use case, plan first, then act:
 * 1. read this deployment's managed snapshots of the schedule (server-side tag
 *    filters), the snapshots that registered images use, and the opted-in fleet;
 * 2. plan each volume's history with the pure planner (count, age, tiers, orphans,
 *    pending, error and held snapshots, failing backups);
 * 3. check the per-run deletion cap: above it, delete nothing and fail loudly;
 * 4. unless a dry run, delete what the plan says, recording each deletion before and
 *    after; a snapshot an image took since the plan, or one already gone, is skipped
 *    and reported, never fatal.
 *
 * @example
 * const report = await runRetentionJob({ schedule: 'daily', dryRun: true, trigger: 'console' }, deps);
 */
export async function runRetentionJob(
  input: RetentionJobInput,
  deps: RetentionJobDependencies,
): Promise<RetentionReport> {
  const { config, logger } = deps;
  const schedule = resolveJobSchedule(config.catalog, input.schedule, config.manualRetainDays);
  const run = openRun('retention', 'retention run', input, deps, () => ({
    schedule: schedule.name,
  }));
  const { base, startedAt: now } = run;

  // 1. Read, and re-check the locks: each lock EC2 reports is a hold the plan blocks on.
  let read: RetentionRead;
  const tiers = tiersDependencies(deps, run.journal);
  try {
    read = await readRetentionScope(deps, schedule, now, input.dryRun, tiers);
  } catch (error) {
    const failure = toAwsCallError('Describe', error);
    const report: RetentionReport = {
      ...base,
      status: 'failed',
      endedAt: deps.clock().toISOString(),
      counts: emptyCounts(),
      cap: { limit: 0, planned: 0, exceeded: false },
      volumes: [],
      error: { code: failure.code, message: failure.message },
    };
    logger.error('retention run failed: could not read snapshots or fleet', { report });
    run.metrics.count('RetentionRunsFailed', 1);
    return report;
  }
  const { snapshots, locks } = read;

  // 2. Plan per volume, deleting only what the history recorded as ours.
  const plan = await planRun(read, schedule, now, deps, tiers);

  // 3. The cap.
  const cap = checkDeletionCap(
    plan.plannedDeletes,
    snapshots.length,
    config.maxDeletions,
    input.maxDeletions,
  );
  if (cap.exceeded) logger.error('deletion cap exceeded: nothing deleted', { cap });

  // 4. Act.
  const sizes = new Map(snapshots.map((s) => [s.snapshotId, s.sizeGiB]));
  const volumes = await actOnPlan(
    plan.volumes,
    sizes,
    !input.dryRun && !cap.exceeded,
    input,
    deps,
    run.journal,
  );
  const archive = await archiveScheduleStep(
    schedule,
    plan.volumes,
    snapshots,
    read.holders,
    locks.holds,
    now,
    input.dryRun,
    tiers,
  );
  const costs = await costsOfRun(snapshots, volumes, input, deps);
  const report = {
    ...summarise(volumes, plan, cap, snapshots.length, input, deps, base, { ...locks, archive }),
    ...(costs ? { costs } : {}),
  };
  return closeRun(report, {
    label: 'retention run',
    metrics: run.metrics,
    logger,
    counts: {
      SnapshotsDeleted: report.counts.deleted,
      SnapshotDeletionsBlocked: report.counts.blocked,
      SnapshotDeletionsFailed: report.counts.failed,
      ...(costs ? { SnapshotsMeasured: costs.measured } : {}),
    },
    runs: { succeeded: 'RetentionRunsSucceeded', failed: 'RetentionRunsFailed' },
  });
}

/**
 * Plans each volume, deleting only what the history recorded as ours; a locked point is
 * held (blocked), and an archived point inside archive's 90-day minimum is kept
 * (deleting it would bill the minimum anyway).
 */
async function planRun(
  read: RetentionRead,
  schedule: ScheduleDefinition,
  now: Date,
  deps: RetentionJobDependencies,
  tiers: RetentionTiersDependencies,
): Promise<ScheduleRetentionPlan> {
  const { config, logger } = deps;
  const { snapshots, locks } = read;
  const ownership = await readOwnership(
    deps.ledger,
    snapshots.map((s) => ({ id: s.snapshotId, createdByEc2At: s.startTime, volumeId: s.volumeId })),
    now,
    logger,
  );
  const planned = planScheduleRetention({
    schedule,
    snapshots,
    instances: read.instances,
    volumeTags: read.volumeTags,
    holders: withLockHolds(read.holders, locks.holds),
    keys: config.keys,
    catalog: config.catalog,
    deployment: config.deployment,
    now,
    ownership,
  });
  const plan = {
    ...planned,
    ...(await holdArchiveMinimum(planned.volumes, snapshots, now, tiers)),
  };
  if (plan.excluded.length > 0) {
    logger.warn("snapshots with this schedule's tags kept: not this retention's to delete", {
      excluded: plan.excluded.slice(0, 25),
      total: plan.excluded.length,
    });
  }
  return plan;
}

/**
 * The cost step after acting: the snapshots left (not deleted) are measured in a
 * scheduled run within the time left, and the plan's cost effect is computed over all
 * of them, planned deletions and blocked ones included.
 */
function costsOfRun(
  snapshots: readonly SnapshotFacts[],
  volumes: readonly VolumeRetentionResult[],
  input: RetentionJobInput,
  deps: RetentionJobDependencies,
): Promise<RetentionCosts | undefined> {
  if (!deps.costs) return Promise.resolve(undefined);
  const gone = new Set(
    volumes.flatMap((v) =>
      v.deletions.filter((d) => d.outcome === 'deleted').map((d) => d.snapshotId),
    ),
  );
  const planned = new Set(
    volumes.flatMap((v) =>
      v.deletions.filter((d) => d.outcome !== 'deleted').map((d) => d.snapshotId),
    ),
  );
  const blocked = new Set(volumes.flatMap((v) => v.blocked.map((b) => b.snapshotId)));
  const margin = input.safetyMarginMs ?? 0;
  return retentionCosts(
    snapshots.filter((s) => !gone.has(s.snapshotId)),
    planned,
    blocked,
    {
      dryRun: input.dryRun,
      ...(input.remainingMs ? { stopAt: () => (input.remainingMs?.() ?? Infinity) < margin } : {}),
    },
    { ...deps, ...deps.costs },
  );
}

/** What a retention run plans from: the schedule's snapshots, what holds them, and the fleet. */
interface RetentionRead {
  readonly snapshots: SnapshotFacts[];
  readonly holders: Map<string, string[]>;
  readonly instances: Map<string, InstanceFacts>;
  readonly volumeTags: Map<string, TagMap>;
  /** The locks, re-checked: each one EC2 reports is a hold. */
  readonly locks: LockRecheck;
}

/**
 * Reads this deployment's managed snapshots of the schedule, the snapshots images use,
 * and the opted-in fleet, then re-checks the locks (re-applying a missing one).
 */
async function readRetentionScope(
  deps: RetentionJobDependencies,
  definition: ScheduleDefinition,
  now: Date,
  dryRun: boolean,
  tiers: RetentionTiersDependencies,
): Promise<RetentionRead> {
  const schedule = definition.name;
  const { keys, deployment } = deps.config;
  const snapshots: SnapshotFacts[] = [];
  for await (const snapshot of deps.ec2.listSnapshotsTagged({
    [keys.managed]: 'true',
    [keys.deployment]: deployment,
    [keys.schedule]: schedule,
  })) {
    // Only what planning reads: the description, keys and most tags would double the memory.
    snapshots.push(retentionSnapshot(snapshot, keys));
  }
  const holders = await deps.ec2.snapshotHolders();
  const instances = new Map<string, InstanceFacts>();
  for await (const instance of deps.ec2.listInstancesWithTagKey(keys.backup)) {
    instances.set(instance.instanceId, instance);
  }
  const volumeTags = await deps.ec2.volumeTagsWithKey(keys.skip);
  const locks = await recheckScheduleLocks(definition, snapshots, instances, now, dryRun, tiers);
  return { snapshots, holders, instances, volumeTags, locks };
}

/**
 * Carries out each volume's plan at the bucket's pace (the number in flight adapts,
 * see PacedPool), or only reports it (`act` false: a dry run, or the cap exceeded).
 * The "after" records are written behind the deletions, in batches, and settled
 * before this returns.
 */
async function actOnPlan(
  planned: readonly PlannedVolumeRetention[],
  sizes: ReadonlyMap<string, number | undefined>,
  act: boolean,
  input: RetentionJobInput,
  deps: RetentionJobDependencies,
  journal: ActionJournal,
): Promise<VolumeRetentionResult[]> {
  const pool = new PacedPool({
    initial: deps.config.deleteConcurrency,
    ceiling: deps.config.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
  });
  const behind = new Behind();
  const deleteOrDefer = (d: { id: string; reason: string }, lineage: VolumeLineage) =>
    input.remainingMs && input.remainingMs() < (input.safetyMarginMs ?? 0)
      ? Promise.resolve<DeletionResult>({
          snapshotId: d.id,
          reason: `${d.reason}; deferred: too little time left in this invocation`,
          sizeGiB: sizes.get(d.id),
          outcome: 'deferred',
        })
      : deleteOne(d.id, d.reason, lineage, sizes.get(d.id), deps, journal, behind);
  const volumes = await Promise.all(
    planned.map(async ({ lineage, plan }): Promise<VolumeRetentionResult> => {
      const deletions = await Promise.all(
        plan.decisions
          .filter((d) => d.action === 'delete')
          .map((d): DeletionResult | Promise<DeletionResult> =>
            // Nothing to do but report: no queue entry (and its promises) per planned deletion.
            !act
              ? { snapshotId: d.id, reason: d.reason, sizeGiB: sizes.get(d.id), outcome: 'planned' }
              : pool.run(
                  () => deleteOrDefer(d, lineage),
                  (r) => r.outcome === 'failed' && isThrottleCode(r.error?.code),
                ),
          ),
      );
      return volumeResult(lineage, plan, deletions, sizes);
    }),
  );
  // Every record written behind the deletions is written (or its failure logged) first.
  await behind.settled(journal);
  return volumes;
}

function volumeResult(
  lineage: VolumeLineage,
  plan: PlannedVolumeRetention['plan'],
  deletions: readonly DeletionResult[],
  sizes: ReadonlyMap<string, number | undefined>,
): VolumeRetentionResult {
  return {
    volumeId: lineage.volumeId,
    instanceId: lineage.instanceId,
    name: lineage.name,
    orphan: lineage.orphan,
    rule: lineage.rule,
    kept: plan.decisions
      .filter((d) => d.action === 'keep')
      .map((d) => ({ snapshotId: d.id, reason: d.reason })),
    deletions,
    blocked: plan.decisions.flatMap((d) =>
      d.action === 'blocked'
        ? [{ snapshotId: d.id, reason: d.reason, heldBy: d.heldBy, sizeGiB: sizes.get(d.id) }]
        : [],
    ),
    ...(plan.failing ? { failing: plan.failing } : {}),
    ...(lineage.problems.length > 0 ? { problems: lineage.problems } : {}),
  };
}

/** The run's report from the volumes' results: counts, what is left, and the status. */
function summarise(
  volumes: readonly VolumeRetentionResult[],
  plan: ScheduleRetentionPlan,
  cap: CapCheck,
  snapshotsInScope: number,
  input: RetentionJobInput,
  deps: RetentionJobDependencies,
  base: RetentionHeader,
  tiers: Pick<LockRecheck, 'outcomes' | 'problems'> & { archive: readonly ArchiveOutcome[] },
): RetentionReport {
  const { excluded, oldestRecoveryPointAgeSeconds } = plan;
  const all = volumes.flatMap((v) => v.deletions);
  const counts = {
    volumes: volumes.length,
    snapshotsInScope,
    kept: volumes.reduce((n, v) => n + v.kept.length, 0),
    planned: plan.plannedDeletes,
    deleted: all.filter((d) => d.outcome === 'deleted').length,
    skipped: all.filter((d) => d.outcome === 'skipped').length,
    blocked: volumes.reduce((n, v) => n + v.blocked.length, 0),
    failed: all.filter((d) => d.outcome === 'failed').length,
    blockedGiB: volumes.reduce(
      (n, v) => n + v.blocked.reduce((m, b) => m + (b.sizeGiB ?? 0), 0),
      0,
    ),
    excluded: excluded.length,
  };
  const warnings =
    volumes.some((v) => v.failing !== undefined || (v.problems?.length ?? 0) > 0) ||
    tiers.problems.length > 0 ||
    [...tiers.outcomes, ...tiers.archive].some((o) => o.outcome === 'failed');
  const deferred = all.filter((d) => d.outcome === 'deferred').map((d) => d.snapshotId);
  const status = runStatus({
    failed: cap.exceeded && !input.dryRun,
    incomplete: deferred.length > 0,
    hasErrors: counts.failed > 0 || warnings,
  });
  return {
    ...base,
    status,
    endedAt: deps.clock().toISOString(),
    counts,
    cap,
    ...(deferred.length > 0 ? { remaining: deferred } : {}),
    ...(oldestRecoveryPointAgeSeconds !== undefined ? { oldestRecoveryPointAgeSeconds } : {}),
    volumes: [...volumes],
    excluded,
    ...(tiers.outcomes.length > 0 ? { locks: tiers.outcomes } : {}),
    ...(tiers.problems.length > 0 ? { lockProblems: tiers.problems } : {}),
    ...(tiers.archive.length > 0 ? { archive: tiers.archive } : {}),
    ...(cap.exceeded ? { error: { code: 'DeletionCapExceeded', message: cap.reason ?? '' } } : {}),
  };
}

/** The report's header: the run and the schedule it serves. */
type RetentionHeader = Pick<
  RetentionReport,
  'runId' | 'job' | 'deployment' | 'schedule' | 'trigger' | 'dryRun' | 'startedAt'
>;

async function deleteOne(
  snapshotId: string,
  reason: string,
  lineage: VolumeLineage,
  sizeGiB: number | undefined,
  deps: RetentionJobDependencies,
  journal: ActionJournal,
  behind: Behind,
): Promise<DeletionResult> {
  const toResult = (attempt: DeletionAttempt): DeletionResult => {
    switch (attempt.kind) {
      case 'deleted':
        return { snapshotId, reason, sizeGiB, outcome: 'deleted' };
      case 'in-use':
        return {
          snapshotId,
          reason: `${reason}; skipped: an image started using it after the plan (InvalidSnapshot.InUse)`,
          sizeGiB,
          outcome: 'skipped',
        };
      case 'gone':
        return {
          snapshotId,
          reason: `${reason}; skipped: already deleted by someone else (InvalidSnapshot.NotFound)`,
          sizeGiB,
          outcome: 'skipped',
        };
      default:
        return { snapshotId, reason, sizeGiB, outcome: 'failed', error: attempt.error };
    }
  };
  return deleteSnapshotWithResult(
    {
      runId: deps.runId,
      job: 'retention',
      action: 'delete-snapshot',
      resourceId: snapshotId,
      reason,
      details: { volumeId: lineage.volumeId, instanceId: lineage.instanceId, sizeGiB },
    },
    deps,
    journal,
    toResult,
    behind,
  );
}

/** The lock and archive parts' dependencies, from the job's. */
function tiersDependencies(
  deps: RetentionJobDependencies,
  journal: ActionJournal,
): RetentionTiersDependencies {
  return {
    tiers: deps.tiers,
    journal,
    logger: deps.logger,
    runId: deps.runId,
    keys: deps.config.keys,
    deployment: deps.config.deployment,
    knownSchedules: [...deps.config.catalog.schedules.keys()],
    allowComplianceLocks: deps.config.allowComplianceLocks ?? false,
  };
}

function emptyCounts(): RetentionReport['counts'] {
  return {
    volumes: 0,
    snapshotsInScope: 0,
    kept: 0,
    planned: 0,
    deleted: 0,
    skipped: 0,
    blocked: 0,
    failed: 0,
    blockedGiB: 0,
  };
}
