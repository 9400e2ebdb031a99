import { toAwsCallError } from '../aws/errors.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import { formatSlot, type InstanceFacts } from '../domain/backupPlan.ts';
import { type CapCheck, checkDeletionCap } from '../domain/deletionCap.ts';
import type { ImageFacts } from '../domain/imagePlan.ts';
import { type ImageRetentionPlan, planImageRetention } from '../domain/imageRetention.ts';
import { previousFireTime, resolveSchedule, type ScheduleDefinition } from '../domain/schedules.ts';
import { createDueImages, type ImageCreateResult, recordCreations } from './amiCreation.ts';
import { type ImageRetireResult, retireImages } from './amiRetirement.ts';
import { type CreationLedger, readOwnership } from './ownership.ts';
import type {
  Ec2Port,
  ImageHoldersPort,
  ImagesPort,
  LoggerPort,
  MetricsPort,
  RecycleBinPort,
  ReportedError,
} from './ports.ts';
import { openRun, type RunEssentials, type RunInput, type RunReportHeader } from './runOpening.ts';
import { closeRun, runStatus } from './runReport.ts';

export type { ImageCreateResult } from './amiCreation.ts';
export type { ImageRetireResult, ImageSnapshotResult } from './amiRetirement.ts';

/** What an AMI run is asked to do. */
export interface AmiJobInput extends RunInput {
  readonly schedule: string;
  readonly scheduledTime?: Date | undefined;
  readonly maxDeletions?: number | undefined;
}

/** The JSON report of an AMI run. */
export interface AmiReport extends RunReportHeader<'amis'> {
  readonly schedule: string;
  readonly slot: string;
  readonly counts: {
    readonly due: number;
    readonly created: number;
    readonly failed: number;
    readonly imagesInScope: number;
    readonly plannedDeregistrations: number;
    readonly deregistered: number;
    readonly blocked: number;
    readonly snapshotsDeleted: number;
    readonly snapshotsKept: number;
    readonly blockedGiB: number;
  };
  readonly created: readonly ImageCreateResult[];
  readonly retired: readonly ImageRetireResult[];
  readonly kept: readonly { imageId: string; instanceId?: string | undefined; reason: string }[];
  readonly blocked: readonly {
    imageId: string;
    instanceId?: string | undefined;
    reason: string;
    heldBy: readonly string[];
    sizeGiB?: number | undefined;
  }[];
  readonly cap: CapCheck;
  readonly warnings: readonly string[];
  /** Instances and AMIs left for the retry of an `incomplete` run. */
  readonly remaining?: readonly string[];
  readonly error?: ReportedError;
}

/** What the AMI job reads and acts through. */
export interface AmiJobDependencies extends RunEssentials {
  readonly ec2: Pick<
    Ec2Port,
    'listInstancesWithTagKey' | 'describeSnapshotsByIds' | 'deleteSnapshot'
  >;
  readonly images: Pick<
    ImagesPort,
    | 'listImagesTagged'
    | 'listOwnImages'
    | 'createImage'
    | 'findImageByName'
    | 'deregisterImage'
    | 'instancesUsingImages'
    | 'imagesInLaunchTemplates'
  >;
  readonly autoScaling?: ImageHoldersPort | undefined;
  /** Absent when Recycle Bin checks are off (the local AWS has no Recycle Bin). */
  readonly recycleBin?: RecycleBinPort | undefined;
  readonly config: Pick<
    SnapkeeperConfig,
    | 'deployment'
    | 'keys'
    | 'catalog'
    | 'copyTags'
    | 'backupConcurrency'
    | 'maxDeletions'
    | 'deleteConcurrency'
  > &
    Partial<Pick<SnapkeeperConfig, 'maxInFlight'>>;
  /**
   * The history's creation records: only AMIs it recorded as created by this
   * deployment (or made before it kept them) are deregistered. Required (every handler
   * passes the history); `undefined` lets the tags decide.
   */
  readonly ledger: CreationLedger | undefined;
}

/**
 * The AMI use case for one schedule, as DLM does it:
 * 1. create the due AMIs (one `CreateImage` per opted-in instance, tagged at creation),
 *    skipping instances that already have one for this slot (a retried slot): see
 *    `amiCreation.ts`;
 * 2. plan that schedule's retention with the pure `planImageRetention`, never retiring
 *    an AMI an instance, launch template, Auto Scaling group, deregistration protection
 *    or the disabled state holds;
 * 3. retire (see `amiRetirement.ts`): record, deregister, then delete the snapshots
 *    behind each AMI right after its own deregistration, unless another AMI uses them, a
 *    Recycle Bin rule keeps the image restorable, or this deployment did not create them;
 * 4. report, count and log the run (`closeRun`).
 *
 * @example
 * const report = await runAmiJob({ schedule: 'daily', dryRun: false, trigger: 'schedule' }, deps);
 */
export async function runAmiJob(input: AmiJobInput, deps: AmiJobDependencies): Promise<AmiReport> {
  const { config, logger } = deps;
  const { keys } = config;
  const schedule = resolveSchedule(config.catalog, input.schedule);
  const { startedAt, base, metrics, journal } = openRun(
    'amis',
    'AMI run',
    input,
    deps,
    (startedAt) => ({
      schedule: schedule.name,
      slot: formatSlot(input.scheduledTime ?? previousFireTime(schedule, startedAt)),
    }),
  );
  const { slot } = base;
  const scope = {
    [keys.managed]: 'true',
    [keys.deployment]: config.deployment,
    [keys.schedule]: schedule.name,
  };
  const outOfTime = () =>
    input.remainingMs !== undefined && input.remainingMs() < (input.safetyMarginMs ?? 0);

  // 1. Create.
  let instances: InstanceFacts[];
  let existingForSlot: ImageFacts[];
  try {
    instances = [];
    for await (const instance of deps.ec2.listInstancesWithTagKey(keys.ami))
      instances.push(instance);
    existingForSlot = await deps.images.listImagesTagged({ ...scope, [keys.slot]: slot });
  } catch (error) {
    return failedReport(base, error, logger, metrics);
  }
  const run = { schedule: schedule.name, slot, startedAt, dryRun: input.dryRun, outOfTime };
  const created = await createDueImages(instances, existingForSlot, run, deps);
  // Every AMI made is recorded as created (retirement deregisters only what the history
  // holds), and every skip and failure as an item of its instance.
  const warnings = input.dryRun ? [] : await recordCreations(created, slot, deps, journal);

  // 2. Plan.
  let images: ImageFacts[];
  let plan: ImageRetentionPlan;
  try {
    ({ images, plan } = await planRetirement(
      instances,
      schedule,
      scope,
      startedAt,
      deps,
      warnings,
    ));
  } catch (error) {
    return failedReport(base, error, logger, metrics, created);
  }
  const { maxDeletions } = config;
  const cap = checkDeletionCap(plan.retire.length, images.length, maxDeletions, input.maxDeletions);
  if (cap.exceeded) logger.error('deregistration cap exceeded: nothing deregistered', { cap });

  // 3. Retire: deregister, and the snapshots behind each right after it.
  const act = !input.dryRun && !cap.exceeded;
  const imageById = new Map(images.map((i) => [i.imageId, i]));
  const retired = await retireImages(
    plan.retire,
    imageById,
    { act, outOfTime, journal, warnings },
    deps,
  );

  // 4. Report.
  const report = amiReport(base, { created, images, plan, retired, cap, warnings }, input, deps);
  return closeRun(report, {
    label: 'AMI run',
    metrics,
    logger,
    counts: amiRunCounts(report),
    runs: { succeeded: 'AmiRunsSucceeded', failed: 'AmiRunsFailed' },
  });
}

/** The metrics an AMI run counts, in the order they are counted. */
function amiRunCounts(report: AmiReport): Record<string, number> {
  return {
    AmisCreated: report.counts.created,
    AmisDeregistered: report.counts.deregistered,
    SnapshotsDeleted: report.counts.snapshotsDeleted,
  };
}

/**
 * Reads the schedule's AMIs, what holds them and who created them, and plans their
 * retention with the pure planner; the plan's warnings join the run's. Throws when the
 * images or their holders cannot be read.
 */
async function planRetirement(
  instances: readonly InstanceFacts[],
  schedule: ScheduleDefinition,
  scope: Readonly<Record<string, string>>,
  now: Date,
  deps: AmiJobDependencies,
  warnings: string[],
): Promise<{ images: ImageFacts[]; plan: ImageRetentionPlan }> {
  const { config } = deps;
  const images = await deps.images.listImagesTagged(scope);
  const usage = await imageUsage(images, deps);
  const ownership = await readOwnership(
    deps.ledger,
    images.map((i) => ({ id: i.imageId, createdByEc2At: i.creationDate ?? now })),
    now,
    deps.logger,
  );
  if (ownership.kind === 'unreadable') {
    warnings.push(`the run history could not be read (${ownership.reason}); nothing deregistered`);
  }
  const plan = planImageRetention({
    images,
    instances,
    usage,
    ownership,
    schedule,
    catalog: config.catalog,
    keys: config.keys,
    deployment: config.deployment,
    now,
  });
  warnings.push(...plan.warnings);
  return { images, plan };
}

/** The fields of a report known when the run starts. */
type ReportBase = Pick<
  AmiReport,
  'runId' | 'job' | 'deployment' | 'schedule' | 'slot' | 'trigger' | 'dryRun' | 'startedAt'
>;

/** The report of a run that got to the end: counts, status and every outcome. */
function amiReport(
  base: ReportBase,
  outcome: {
    readonly created: readonly ImageCreateResult[];
    readonly images: readonly ImageFacts[];
    readonly plan: ImageRetentionPlan;
    readonly retired: readonly ImageRetireResult[];
    readonly cap: CapCheck;
    readonly warnings: readonly string[];
  },
  input: AmiJobInput,
  deps: AmiJobDependencies,
): AmiReport {
  const { created, images, plan, retired, cap, warnings } = outcome;
  const snapshotResults = retired.flatMap((r) => r.snapshots);
  const counts = {
    due: created.length,
    created: created.filter((c) => c.outcome === 'created').length,
    failed:
      created.filter((c) => c.outcome === 'failed').length +
      retired.filter((r) => r.outcome === 'failed').length,
    imagesInScope: images.length,
    plannedDeregistrations: plan.retire.length,
    deregistered: retired.filter((r) => r.outcome === 'deregistered').length,
    blocked: plan.blocked.length,
    snapshotsDeleted: snapshotResults.filter((s) => s.outcome === 'deleted').length,
    snapshotsKept: snapshotResults.filter((s) => s.outcome === 'kept').length,
    blockedGiB: plan.blocked.reduce((n, b) => n + (b.sizeGiB ?? 0), 0),
  };
  const hasErrors =
    counts.failed > 0 ||
    snapshotResults.some((s) => s.outcome === 'failed') ||
    created.some((c) => c.error !== undefined || (c.problems?.length ?? 0) > 0) ||
    warnings.length > 0;
  const nothingDone = created.length > 0 && created.every((c) => c.outcome === 'failed');
  const remaining = [
    ...created.filter((c) => c.outcome === 'deferred').map((c) => c.instanceId),
    ...retired.filter((r) => r.outcome === 'deferred').map((r) => r.imageId),
  ];
  return {
    ...base,
    status: runStatus({
      failed: (cap.exceeded && !input.dryRun) || nothingDone,
      incomplete: remaining.length > 0,
      hasErrors,
    }),
    endedAt: deps.clock().toISOString(),
    counts,
    created,
    retired,
    kept: plan.kept,
    blocked: plan.blocked,
    cap,
    warnings,
    ...(remaining.length > 0 ? { remaining } : {}),
    ...(cap.exceeded ? { error: { code: 'DeletionCapExceeded', message: cap.reason ?? '' } } : {}),
  };
}

/** What holds each image: instances launched from it, launch templates, Auto Scaling. */
async function imageUsage(
  images: readonly ImageFacts[],
  deps: AmiJobDependencies,
): Promise<Map<string, string[]>> {
  const usage = new Map<string, string[]>();
  const merge = (source: ReadonlyMap<string, readonly string[]>) => {
    for (const [imageId, holders] of source)
      usage.set(imageId, [...(usage.get(imageId) ?? []), ...holders]);
  };
  if (images.length === 0) return usage;
  merge(await deps.images.instancesUsingImages(images.map((i) => i.imageId)));
  const asg = deps.autoScaling ? await deps.autoScaling.imageHolders() : undefined;
  merge(await deps.images.imagesInLaunchTemplates(asg?.pinned ?? [], asg?.followed ?? []));
  if (asg) merge(asg.launchConfigurationImages);
  return usage;
}

/** The report of a run that could not read the fleet or the images: nothing retired. */
function failedReport(
  base: ReportBase,
  error: unknown,
  logger: LoggerPort,
  metrics: MetricsPort,
  created: readonly ImageCreateResult[] = [],
): AmiReport {
  const failure = toAwsCallError('Describe', error);
  const report: AmiReport = {
    ...base,
    status: created.some((c) => c.outcome === 'created') ? 'partial' : 'failed',
    endedAt: new Date().toISOString(),
    counts: {
      due: created.length,
      created: created.filter((c) => c.outcome === 'created').length,
      failed: created.filter((c) => c.outcome === 'failed').length,
      imagesInScope: 0,
      plannedDeregistrations: 0,
      deregistered: 0,
      blocked: 0,
      snapshotsDeleted: 0,
      snapshotsKept: 0,
      blockedGiB: 0,
    },
    created,
    retired: [],
    kept: [],
    blocked: [],
    cap: { limit: 0, planned: 0, exceeded: false },
    warnings: [],
    error: { code: failure.code, message: failure.message },
  };
  logger.error(`AMI run ${report.status}: could not read images or fleet`, { report });
  metrics.count('AmiRunsFailed', 1);
  return report;
}
