import { toAwsCallError } from '../aws/errors.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import { type CapCheck, checkDeletionCap } from '../domain/deletionCap.ts';
import { imageIdFromSnapshotDescription } from '../domain/imagePlan.ts';
import { planOrphanSweep, type SweepItem, type SweepPlan } from '../domain/imageRetirement.ts';
import { buildRecoveryReport } from '../domain/recoveryReport.ts';
import { isManagedBy } from '../domain/snapshotFacts.ts';
import { Behind } from './historyPipeline.ts';
import { type CreationLedger, readOwnership } from './ownership.ts';
import { DEFAULT_MAX_IN_FLIGHT, isThrottleCode, PacedPool } from './pacedPool.ts';
import type {
  ActionJournal,
  Ec2Port,
  ImagesPort,
  MetricsPort,
  ReportedError,
  SnapshotsPort,
} from './ports.ts';
import { type DeletionAttempt, deleteSnapshotRecorded } from './recordedDeletion.ts';
import type { RunEssentials, RunInput, RunReportHeader } from './runOpening.ts';
import { closeRun, logJournal, noMetrics, runStatus } from './runReport.ts';

/** What an orphan sweep is asked to do. */
export interface SweepJobInput extends Pick<RunInput, 'dryRun' | 'trigger'> {
  readonly maxDeletions?: number | undefined;
}

/** The JSON report of an orphan sweep. */
export interface SweepReport extends RunReportHeader<'sweep'> {
  readonly counts: {
    readonly examined: number;
    readonly planned: number;
    readonly deleted: number;
    readonly failed: number;
    readonly blocked: number;
    readonly reportedOnly: number;
    readonly blockedGiB: number;
    readonly reportedOnlyGiB: number;
  };
  readonly deleted: readonly (SweepItem & {
    outcome: 'deleted' | 'planned' | 'skipped' | 'failed';
    error?: ReportedError;
  })[];
  readonly blocked: readonly SweepItem[];
  /** Orphaned AMI snapshots this deployment did not create: never deleted, only reported. */
  readonly reportedOnly: readonly SweepItem[];
  readonly cap: CapCheck;
  readonly warnings: readonly string[];
  /** Sizes are the source volume's; the bytes freed may be less, since snapshots are incremental. */
  readonly note: string;
  readonly error?: ReportedError;
}

/** What the sweep reads and acts through. */
export interface SweepJobDependencies extends RunEssentials {
  readonly ec2: Pick<SnapshotsPort, 'deleteSnapshot'> &
    Partial<Pick<Ec2Port, 'listInstancesWithTagKey' | 'listSnapshotsTagged'>>;
  readonly images: Pick<ImagesPort, 'listOwnImages' | 'listImageSnapshots' | 'imagesInRecycleBin'>;
  readonly config: Pick<
    SnapkeeperConfig,
    'deployment' | 'keys' | 'maxDeletions' | 'deleteConcurrency' | 'recycleBinCheck'
  > &
    Partial<Pick<SnapkeeperConfig, 'catalog' | 'maxInFlight'>>;
  /**
   * The history's creation records: only snapshots of AMIs it recorded are deleted.
   * Required (every handler passes the history); `undefined` lets the tags decide.
   */
  readonly ledger: CreationLedger | undefined;
}

const SIZE_NOTE =
  'GiB are the sizes of the source volumes the snapshots record; the bytes actually freed may be less, since snapshots are incremental.';

/**
 * The orphan sweep: snapshots made by `CreateImage` for an AMI that is gone
 * (deregistered by hand, or by an earlier run that died before its deletes).
 * 1. read every image the account owns, the Recycle Bin, and the CreateImage snapshots;
 * 2. plan: ours are deleted unless held or pending; anyone else's are only reported;
 * 3. cap, then delete with a record before and after each;
 * 4. publish the recovery point ages, report, count and log the run (`closeRun`).
 *
 * @example
 * const report = await runSweepJob({ dryRun: true, trigger: 'console' }, deps);
 */
export async function runSweepJob(
  input: SweepJobInput,
  deps: SweepJobDependencies,
): Promise<SweepReport> {
  const { config, logger } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const journal = deps.journal ?? logJournal(logger);
  const startedAt = deps.clock();
  const base: SweepReportBase = {
    runId: deps.runId,
    job: 'sweep',
    deployment: config.deployment,
    trigger: input.trigger,
    dryRun: input.dryRun,
    startedAt: startedAt.toISOString(),
  };
  const warnings: string[] = [];
  let read: SweepReading;
  try {
    read = await readAndPlan(deps, startedAt, warnings);
  } catch (error) {
    return failedSweep(base, error, warnings, deps);
  }
  const { plan } = read;
  const cap = checkDeletionCap(
    plan.delete.length,
    read.managedInScope,
    config.maxDeletions,
    input.maxDeletions,
  );
  const act = !input.dryRun && !cap.exceeded;
  const deleted = await deleteOrphans(plan.delete, act, deps, journal);
  const sum = (items: readonly SweepItem[]) => items.reduce((n, i) => n + (i.sizeGiB ?? 0), 0);
  const counts = {
    examined: read.examined,
    planned: plan.delete.length,
    deleted: deleted.filter((d) => d.outcome === 'deleted').length,
    failed: deleted.filter((d) => d.outcome === 'failed').length,
    blocked: plan.blocked.length,
    reportedOnly: plan.reportOnly.length,
    blockedGiB: sum(plan.blocked),
    reportedOnlyGiB: sum(plan.reportOnly),
  };
  const report: SweepReport = {
    ...base,
    status: runStatus({
      failed: cap.exceeded && !input.dryRun,
      incomplete: false,
      hasErrors: counts.failed > 0 || warnings.length > 0,
    }),
    endedAt: deps.clock().toISOString(),
    counts,
    deleted,
    blocked: plan.blocked,
    reportedOnly: plan.reportOnly,
    cap,
    warnings,
    note: SIZE_NOTE,
    ...(cap.exceeded ? { error: { code: 'DeletionCapExceeded', message: cap.reason ?? '' } } : {}),
  };
  await publishRecoveryPointAges(deps, metrics);
  return closeRun(report, {
    label: 'sweep',
    metrics,
    logger,
    counts: { SnapshotsDeleted: counts.deleted },
  });
}

/** The fields of a sweep report known when it starts. */
type SweepReportBase = Pick<
  SweepReport,
  'runId' | 'job' | 'deployment' | 'trigger' | 'dryRun' | 'startedAt'
>;

/** What the sweep read, and its plan. */
interface SweepReading {
  readonly plan: SweepPlan;
  readonly examined: number;
  /** The CreateImage snapshots tagged as this deployment's: the cap's scope. */
  readonly managedInScope: number;
}

/**
 * Reads the account's images, the CreateImage snapshots, the Recycle Bin (when checked)
 * and the history's creation records, and plans with `planOrphanSweep`. A Recycle Bin
 * that cannot be read blocks every deletion; a history that cannot be read keeps the
 * snapshots of gone AMIs (both with a warning). Throws when images or snapshots cannot
 * be listed.
 */
async function readAndPlan(
  deps: SweepJobDependencies,
  startedAt: Date,
  warnings: string[],
): Promise<SweepReading> {
  const { config, logger } = deps;
  const images = await deps.images.listOwnImages();
  const holders = new Map<string, string[]>();
  for (const image of images) {
    for (const id of image.snapshotIds)
      holders.set(id, [...(holders.get(id) ?? []), image.imageId]);
  }
  const snapshots = await deps.images.listImageSnapshots();
  const managedInScope = snapshots.filter((s) =>
    isManagedBy(s.tags, config.keys, config.deployment),
  ).length;
  let inBin = new Set<string>();
  let binUnknown = false;
  if (config.recycleBinCheck) {
    try {
      inBin = await deps.images.imagesInRecycleBin();
    } catch (error) {
      binUnknown = true;
      warnings.push(
        `the Recycle Bin could not be read (${toAwsCallError('ListImagesInRecycleBin', error).message}); nothing deleted`,
      );
    }
  }
  const ownership = await readOwnership(
    deps.ledger,
    snapshots.flatMap((s) => {
      const imageId = imageIdFromSnapshotDescription(s.description);
      return imageId ? [{ id: imageId, createdByEc2At: s.startTime }] : [];
    }),
    startedAt,
    logger,
  );
  if (ownership.kind === 'unreadable') {
    warnings.push(
      `the run history could not be read (${ownership.reason}); snapshots of gone AMIs kept`,
    );
  }
  const plan = planOrphanSweep({
    ownership,
    snapshots,
    existingImageIds: new Set(images.map((i) => i.imageId)),
    imagesInRecycleBin: inBin,
    holders,
    keys: config.keys,
    deployment: config.deployment,
  });
  return {
    plan: binUnknown ? blockedByBin(plan) : plan,
    examined: snapshots.length,
    managedInScope,
  };
}

/** The plan with every deletion blocked: the Recycle Bin could not be read. */
function blockedByBin(plan: SweepPlan): SweepPlan {
  return {
    delete: [],
    reportOnly: plan.reportOnly,
    blocked: [
      ...plan.blocked,
      ...plan.delete.map((d) => ({
        ...d,
        reason: `${d.reason}; kept: the Recycle Bin could not be read`,
        heldBy: ['recycle bin (unknown)'],
      })),
    ],
  };
}

/** One orphan's outcome. */
type SweptItem = SweepReport['deleted'][number];

/**
 * Deletes the planned orphans at the bucket's pace (see PacedPool), each recorded before
 * and after (the "after" records written behind, in batches); plans only when not acting.
 */
async function deleteOrphans(
  items: readonly SweepItem[],
  act: boolean,
  deps: SweepJobDependencies,
  journal: ActionJournal,
): Promise<SweptItem[]> {
  const pool = new PacedPool({
    initial: deps.config.deleteConcurrency,
    ceiling: deps.config.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
  });
  const behind = new Behind();
  const deleted = await Promise.all(
    items.map((item) =>
      pool.run(
        async (): Promise<SweptItem> =>
          act ? deleteOrphan(item, deps, journal, behind) : { ...item, outcome: 'planned' },
        (r) => r.outcome === 'failed' && isThrottleCode(r.error?.code),
      ),
    ),
  );
  await behind.settled(journal);
  return deleted;
}

async function deleteOrphan(
  item: SweepItem,
  deps: SweepJobDependencies,
  journal: ActionJournal,
  behind: Behind,
): Promise<SweptItem> {
  const reasonOf = (attempt: DeletionAttempt) =>
    attempt.kind === 'in-use'
      ? `${item.reason}; skipped: InvalidSnapshot.InUse`
      : attempt.kind === 'gone'
        ? `${item.reason}; skipped: InvalidSnapshot.NotFound`
        : item.reason;
  const attempt = await deleteSnapshotRecorded(
    {
      runId: deps.runId,
      job: 'sweep',
      action: 'delete-snapshot',
      resourceId: item.snapshotId,
      reason: item.reason,
      details: { imageId: item.imageId, sizeGiB: item.sizeGiB },
    },
    () => deps.ec2.deleteSnapshot(item.snapshotId),
    journal,
    deps.logger,
    reasonOf,
    behind,
  );
  if (attempt.kind === 'unrecorded' || attempt.kind === 'failed')
    return { ...item, outcome: 'failed', error: attempt.error };
  return {
    ...item,
    reason: reasonOf(attempt),
    outcome: attempt.kind === 'deleted' ? 'deleted' : 'skipped',
  };
}

/** The report of a sweep that could not read images or snapshots: nothing deleted. */
function failedSweep(
  base: SweepReportBase,
  error: unknown,
  warnings: readonly string[],
  deps: SweepJobDependencies,
): SweepReport {
  const failure = toAwsCallError('Describe', error);
  const report: SweepReport = {
    ...base,
    status: 'failed',
    endedAt: deps.clock().toISOString(),
    counts: {
      examined: 0,
      planned: 0,
      deleted: 0,
      failed: 0,
      blocked: 0,
      reportedOnly: 0,
      blockedGiB: 0,
      reportedOnlyGiB: 0,
    },
    deleted: [],
    blocked: [],
    reportedOnly: [],
    cap: { limit: 0, planned: 0, exceeded: false },
    warnings,
    note: SIZE_NOTE,
    error: { code: failure.code, message: failure.message },
  };
  deps.logger.error('sweep failed: could not read images or snapshots', { report });
  return report;
}

/**
 * The dead-man's switch, published once a day by the sweep for every schedule: the age
 * of the oldest "newest completed snapshot" across the instances opted into it (0 when
 * none is). A schedule whose backups stop, or a sweep that stops running, makes the
 * alarm fire (missing data is breaching).
 */
async function publishRecoveryPointAges(
  deps: SweepJobDependencies,
  metrics: MetricsPort,
): Promise<void> {
  const { ec2, config } = deps;
  if (
    !ec2.listInstancesWithTagKey ||
    !ec2.listSnapshotsTagged ||
    !config.catalog ||
    !metrics.seconds
  )
    return;
  try {
    const instances = [];
    for await (const instance of ec2.listInstancesWithTagKey(config.keys.backup))
      instances.push(instance);
    const snapshots = [];
    for await (const snapshot of ec2.listSnapshotsTagged({
      [config.keys.managed]: 'true',
      [config.keys.deployment]: config.deployment,
    })) {
      snapshots.push(snapshot);
    }
    const report = buildRecoveryReport({
      instances,
      snapshots,
      images: [],
      catalog: config.catalog,
      keys: config.keys,
      deployment: config.deployment,
      now: deps.clock(),
    });
    for (const schedule of config.catalog.schedules.keys()) {
      const ages = report.instances.flatMap((i) =>
        i.rpo
          .filter((r) => r.schedule === schedule && r.newestAgeHours !== undefined)
          .map((r) => (r.newestAgeHours ?? 0) * 3600),
      );
      metrics.seconds('RecoveryPointAge', ages.length > 0 ? Math.round(Math.max(...ages)) : 0, {
        schedule,
      });
    }
  } catch (error) {
    deps.logger.error('could not compute the recovery point ages', {
      error: error instanceof Error ? error.message : String(error),
    });
  }
}
