import type { AutoScalingGateway } from '../aws/AutoScalingGateway.ts';
import type { Ec2Gateway } from '../aws/Ec2Gateway.ts';
import { type Ec2ImageGateway, ImageNameTakenError } from '../aws/Ec2ImageGateway.ts';
import { ImageGoneError, toAwsCallError } from '../aws/errors.ts';
import type { RecycleBinGateway } from '../aws/RecycleBinGateway.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import { formatSlot, type InstanceFacts } from '../domain/backupPlan.ts';
import { type CapCheck, checkDeletionCap } from '../domain/deletionCap.ts';
import {
  type ImageFacts,
  type ImageRequest,
  type InstanceImageDecision,
  planInstanceImage,
  withUniqueNames,
} from '../domain/imagePlan.ts';
import { recordedImagePolicy, toImagePoint } from '../domain/imageRetirement.ts';
import { isDisasterRecoveryCopy, ownershipOf } from '../domain/provenance.ts';
import { type RecycleBinRule, recycleBinRuleFor } from '../domain/recycleBin.ts';
import { keepAll, planRetention, type RetentionPlan } from '../domain/retentionPlan.ts';
import { retentionRuleFor } from '../domain/retentionPolicy.ts';
import {
  previousFireTime,
  resolveSchedule,
  type ScheduleDefinition,
  scheduleIntervalMs,
} from '../domain/schedules.ts';
import { isManagedBy, type SnapshotFacts } from '../domain/snapshotFacts.ts';
import { parseScheduleList } from '../domain/tagPolicy.ts';
import { Behind } from './historyPipeline.ts';
import { type CreationLedger, readOwnership } from './ownership.ts';
import { DEFAULT_MAX_IN_FLIGHT, isThrottleCode, PacedPool } from './pacedPool.ts';
import type {
  ActionJournal,
  LoggerPort,
  MetricsPort,
  ReportedError,
  RunStatus,
  RunTrigger,
} from './ports.ts';
import { type DeletionAttempt, deleteSnapshotRecorded } from './recordedDeletion.ts';
import { logJournal, noMetrics, reportForLog, runStatus } from './runReport.ts';

/** What an AMI run is asked to do. */
export interface AmiJobInput {
  readonly schedule: string;
  readonly scheduledTime?: Date | undefined;
  readonly dryRun: boolean;
  readonly trigger: RunTrigger;
  readonly maxDeletions?: number | undefined;
  /** Time left in the invocation, in ms; nothing new starts below the safety margin. */
  readonly remainingMs?: (() => number) | undefined;
  readonly safetyMarginMs?: number | undefined;
}

/** The outcome of creating one AMI. */
export interface ImageCreateResult {
  readonly instanceId: string;
  readonly name?: string | undefined;
  /** deferred: not started, too little time left; the retry of the run does it. */
  readonly outcome: 'created' | 'planned' | 'exists' | 'skipped' | 'failed' | 'deferred';
  readonly imageId?: string | undefined;
  readonly imageName?: string | undefined;
  readonly noReboot?: boolean | undefined;
  readonly reason?: string | undefined;
  readonly error?: ReportedError | undefined;
  readonly problems?: readonly string[] | undefined;
  /**
   * `exists` because this run's own CreateImage met its name taken by the slot's image: an
   * earlier attempt of this delivery made it and its answer was lost, so nothing recorded it.
   */
  readonly madeByLostAttempt?: boolean | undefined;
}

/** The fate of one snapshot behind a deregistered AMI. */
export interface ImageSnapshotResult {
  readonly snapshotId: string;
  readonly outcome: 'deleted' | 'planned' | 'kept' | 'skipped' | 'failed';
  readonly reason: string;
  readonly sizeGiB?: number | undefined;
  readonly error?: ReportedError | undefined;
}

/** The outcome of retiring one AMI. */
export interface ImageRetireResult {
  readonly imageId: string;
  readonly instanceId?: string | undefined;
  readonly reason: string;
  readonly outcome: 'deregistered' | 'planned' | 'gone' | 'failed' | 'deferred';
  readonly snapshots: readonly ImageSnapshotResult[];
  readonly error?: ReportedError | undefined;
}

/** The JSON report of an AMI run. */
export interface AmiReport {
  readonly runId: string;
  readonly job: 'amis';
  readonly deployment: string;
  readonly schedule: string;
  readonly slot: string;
  readonly trigger: RunTrigger;
  readonly dryRun: boolean;
  readonly status: RunStatus;
  readonly startedAt: string;
  readonly endedAt: string;
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
export interface AmiJobDependencies {
  readonly ec2: Pick<
    Ec2Gateway,
    'listInstancesWithTagKey' | 'describeSnapshotsByIds' | 'deleteSnapshot'
  >;
  readonly images: Pick<
    Ec2ImageGateway,
    | 'listImagesTagged'
    | 'listOwnImages'
    | 'createImage'
    | 'findImageByName'
    | 'deregisterImage'
    | 'instancesUsingImages'
    | 'imagesInLaunchTemplates'
  >;
  readonly autoScaling?: Pick<AutoScalingGateway, 'imageHolders'> | undefined;
  /** Absent when Recycle Bin checks are off (the local AWS has no Recycle Bin). */
  readonly recycleBin?: Pick<RecycleBinGateway, 'imageRules'> | undefined;
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
  readonly clock: () => Date;
  readonly runId: string;
  readonly logger: LoggerPort;
  readonly metrics?: MetricsPort;
  readonly journal?: ActionJournal;
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
 *    skipping instances that already have one for this slot (a retried slot);
 * 2. retire that schedule's AMIs per retention with the shared planner, never one an
 *    instance, launch template, Auto Scaling group, deregistration protection or the
 *    disabled state holds;
 * 3. for each retired AMI: record its snapshots, deregister, then delete those snapshots
 *    unless another AMI uses them, a Recycle Bin rule keeps the image restorable, or
 *    this deployment did not create them.
 *
 * @example
 * const report = await runAmiJob({ schedule: 'daily', dryRun: false, trigger: 'schedule' }, deps);
 */
export async function runAmiJob(input: AmiJobInput, deps: AmiJobDependencies): Promise<AmiReport> {
  const { config, logger } = deps;
  const { keys } = config;
  const metrics = deps.metrics ?? noMetrics;
  const journal = deps.journal ?? logJournal(logger);
  const startedAt = deps.clock();
  const schedule = resolveSchedule(config.catalog, input.schedule);
  const slot = formatSlot(input.scheduledTime ?? previousFireTime(schedule, startedAt));
  const base = {
    runId: deps.runId,
    job: 'amis' as const,
    deployment: config.deployment,
    schedule: schedule.name,
    slot,
    trigger: input.trigger,
    dryRun: input.dryRun,
    startedAt: startedAt.toISOString(),
  };
  logger.info('AMI run started', base);
  const scope = {
    [keys.managed]: 'true',
    [keys.deployment]: config.deployment,
    [keys.schedule]: schedule.name,
  };

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
  const covered = new Map(existingForSlot.map((image) => [image.tags[keys.instanceId], image]));
  const context = {
    keys,
    catalog: config.catalog,
    schedule: schedule.name,
    slot,
    deployment: config.deployment,
    runId: deps.runId,
    createdAt: startedAt.toISOString(),
    copyTags: config.copyTags,
  };
  const decisions = withUniqueNames(
    instances.map((instance) => planInstanceImage(instance, context)),
    context,
  ).filter((d): d is Exclude<InstanceImageDecision, { kind: 'not-due' }> => d.kind !== 'not-due');
  // The bucket sets the pace (see PacedPool): from BACKUP_CONCURRENCY up to MAX_IN_FLIGHT.
  const createPool = new PacedPool({
    initial: config.backupConcurrency,
    ceiling: config.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
  });
  const created = await Promise.all(
    decisions.map((decision) =>
      createPool.run(() =>
        outOfTime(input) && decision.kind === 'create' && !covered.has(decision.instanceId)
          ? Promise.resolve<ImageCreateResult>({
              instanceId: decision.instanceId,
              name: decision.name,
              outcome: 'deferred',
              reason: 'not started: too little time left in this invocation',
            })
          : createOne(decision, covered.get(decision.instanceId), input.dryRun, deps),
      ),
    ),
  );

  // Every AMI made is recorded as created (retirement deregisters only what the history
  // holds), and every skip and failure as an item of its instance.
  const unrecordedWarnings = input.dryRun
    ? []
    : await recordCreations(created, slot, deps, journal);

  // 2. Retire.
  let images: ImageFacts[];
  let usage: Map<string, string[]>;
  try {
    images = await deps.images.listImagesTagged(scope);
    usage = await imageUsage(images, deps);
  } catch (error) {
    return failedReport(base, error, logger, metrics, created);
  }
  const now = startedAt;
  const intervalMs = scheduleIntervalMs(schedule, now);
  const amiSchedule: ScheduleDefinition = {
    ...schedule,
    retain: schedule.amiRetain ?? schedule.retain,
  };
  const live = new Map(instances.map((i) => [i.instanceId, i]));
  const byInstance = new Map<string, ImageFacts[]>();
  for (const image of images) {
    if (!isManagedBy(image.tags, keys, config.deployment)) continue;
    const owner = image.tags[keys.instanceId] ?? 'unknown';
    byInstance.set(owner, [...(byInstance.get(owner) ?? []), image]);
  }
  const warnings: string[] = [...unrecordedWarnings];
  const ownership = await readOwnership(
    deps.ledger,
    images.map((i) => ({ id: i.imageId, createdByEc2At: i.creationDate ?? now })),
    now,
    logger,
  );
  if (ownership.kind === 'unreadable') {
    warnings.push(`the run history could not be read (${ownership.reason}); nothing deregistered`);
  }
  /** AMIs tagged as ours that this job may not deregister, by id with the reason. */
  const notOwned = new Map<string, string>();
  for (const image of images) {
    if (!isManagedBy(image.tags, keys, config.deployment)) continue;
    // A disaster-recovery copy carries its source's managed, stage and schedule tags: it
    // belongs to the copy job's retention only, never to this region's AMI retirement.
    if (isDisasterRecoveryCopy(image.tags, keys)) {
      notOwned.set(
        image.imageId,
        "kept: a disaster-recovery copy (the copy job's retention owns it)",
      );
      continue;
    }
    const verdict = ownershipOf(image.imageId, 'image', image.creationDate ?? now, ownership);
    if (!verdict.owned) notOwned.set(image.imageId, verdict.reason);
  }
  const plans: { instanceId: string; plan: RetentionPlan }[] = [];
  for (const [instanceId, history] of byInstance) {
    const instance = live.get(instanceId);
    const optIn = instance
      ? parseScheduleList(instanceId, keys.ami, instance.tags[keys.ami], config.catalog)
      : { schedules: [], problems: [] };
    const optedIn = instance !== undefined && optIn.schedules.includes(schedule.name);
    const points = history.map((image) => {
      const point = toImagePoint(image, keys, config.deployment, usage, now);
      return notOwned.has(image.imageId) ? { ...point, managed: false } : point;
    });
    if (optIn.problems.length > 0) {
      // A typo in the opt-in tag must not turn a live instance's AMIs into orphans.
      const messages = optIn.problems.map((p) => p.message).join('; ');
      warnings.push(`${instanceId}: ${messages}; nothing deregistered`);
      plans.push({
        instanceId,
        plan: keepAll(points, `kept: the instance's opt-in tag cannot be read (${messages})`),
      });
      continue;
    }
    // A live opted-in instance's tags are the operator's intent; an orphan keeps the policy
    // recorded on its AMIs at creation (when there is one), never a smaller default.
    const recordedPolicy = optedIn ? undefined : recordedImagePolicy(history, keys);
    const rule = retentionRuleFor(
      amiSchedule,
      recordedPolicy ?? instance?.tags,
      instanceId,
      keys,
      config.catalog,
      keys.amiRetain,
    );
    if (!rule.rule) {
      const messages = rule.problems.map((p) => p.message).join('; ');
      warnings.push(
        `${instanceId}: AMI retention tags cannot be read (${messages}); nothing deregistered`,
      );
      plans.push({
        instanceId,
        plan: keepAll(points, `kept: retention tags cannot be read (${messages})`),
      });
      continue;
    }
    const plan = planRetention(points, rule.rule, {
      now,
      timezone: schedule.timezone,
      orphan: !optedIn,
      expireOrphansAfterDays: schedule.expireOrphansAfterDays,
      intervalMs,
    });
    if (plan.failing)
      warnings.push(`${instanceId}: AMIs failing (${plan.failing}); nothing deregistered`);
    plans.push({ instanceId, plan });
  }
  const toRetire = plans.flatMap(({ instanceId, plan }) =>
    plan.decisions.flatMap((d) =>
      d.action === 'delete' ? [{ instanceId, imageId: d.id, reason: d.reason }] : [],
    ),
  );
  const cap = checkDeletionCap(
    toRetire.length,
    images.length,
    config.maxDeletions,
    input.maxDeletions,
  );
  if (cap.exceeded) logger.error('deregistration cap exceeded: nothing deregistered', { cap });
  const act = !input.dryRun && !cap.exceeded;
  const imageById = new Map(images.map((i) => [i.imageId, i]));

  // 3. Deregister, then the snapshots behind.
  const retired: ImageRetireResult[] = [];
  // Deregistrations and the snapshot deletions behind them are paced by their buckets
  // (see PacedPool); their "after" records are written behind them, in batches.
  const deletePool = new PacedPool({
    initial: config.deleteConcurrency,
    ceiling: config.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
  });
  const behind = new Behind();
  const deleting = new Map<string, Promise<ImageSnapshotResult>>();
  const deregistered = await Promise.all(
    toRetire.map((item) =>
      deletePool.run(() =>
        act && outOfTime(input)
          ? Promise.resolve<Omit<ImageRetireResult, 'snapshots'>>({
              ...item,
              outcome: 'deferred',
              reason: `${item.reason}; deferred: too little time left in this invocation`,
            })
          : deregisterOne(item, imageById.get(item.imageId), act, deps, journal, behind),
      ),
    ),
  );
  let rules: RecycleBinRule[] | undefined = [];
  if (act && deregistered.some((r) => r.outcome === 'deregistered' || r.outcome === 'gone')) {
    if (deps.recycleBin) {
      try {
        rules = await deps.recycleBin.imageRules();
      } catch (error) {
        rules = undefined;
        warnings.push(
          `Recycle Bin rules could not be read (${toAwsCallError('ListRules', error).message}); snapshots of deregistered AMIs kept`,
        );
      }
    }
  }
  const holdersAfter = act ? await snapshotHoldersSafe(deps, warnings) : undefined;
  retired.push(
    ...(await Promise.all(
      deregistered.map(async (result) => ({
        ...result,
        snapshots: await retireSnapshots(
          result,
          imageById.get(result.imageId),
          act,
          rules,
          holdersAfter,
          deps,
          journal,
          warnings,
          { pool: deletePool, behind, deleting },
        ),
      })),
    )),
  );
  await behind.settled(journal);

  const kept = plans.flatMap(({ instanceId, plan }) =>
    plan.decisions.flatMap((d) =>
      d.action === 'keep'
        ? [{ imageId: d.id, instanceId, reason: notOwned.get(d.id) ?? d.reason }]
        : [],
    ),
  );
  const blocked = plans.flatMap(({ instanceId, plan }) =>
    plan.decisions.flatMap((d) =>
      d.action === 'blocked'
        ? [
            {
              imageId: d.id,
              instanceId,
              reason: d.reason,
              heldBy: d.heldBy,
              sizeGiB: imageById.get(d.id)?.sizeGiB,
            },
          ]
        : [],
    ),
  );
  const snapshotResults = retired.flatMap((r) => r.snapshots);
  const counts = {
    due: created.length,
    created: created.filter((c) => c.outcome === 'created').length,
    failed:
      created.filter((c) => c.outcome === 'failed').length +
      retired.filter((r) => r.outcome === 'failed').length,
    imagesInScope: images.length,
    plannedDeregistrations: toRetire.length,
    deregistered: retired.filter((r) => r.outcome === 'deregistered').length,
    blocked: blocked.length,
    snapshotsDeleted: snapshotResults.filter((s) => s.outcome === 'deleted').length,
    snapshotsKept: snapshotResults.filter((s) => s.outcome === 'kept').length,
    blockedGiB: blocked.reduce((n, b) => n + (b.sizeGiB ?? 0), 0),
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
  const status = runStatus({
    failed: (cap.exceeded && !input.dryRun) || nothingDone,
    incomplete: remaining.length > 0,
    hasErrors,
  });
  const report: AmiReport = {
    ...base,
    status,
    endedAt: deps.clock().toISOString(),
    counts,
    created,
    retired,
    kept,
    blocked,
    cap,
    warnings,
    ...(remaining.length > 0 ? { remaining } : {}),
    ...(cap.exceeded ? { error: { code: 'DeletionCapExceeded', message: cap.reason ?? '' } } : {}),
  };
  metrics.count('AmisCreated', counts.created);
  metrics.count('AmisDeregistered', counts.deregistered);
  metrics.count('SnapshotsDeleted', counts.snapshotsDeleted);
  metrics.count(status === 'failed' ? 'AmiRunsFailed' : 'AmiRunsSucceeded', 1);
  (status === 'succeeded' ? logger.info : logger.warn).call(logger, `AMI run ${status}`, {
    report: reportForLog(report),
  });
  return report;
}

async function createOne(
  decision: Exclude<InstanceImageDecision, { kind: 'not-due' }>,
  existing: ImageFacts | undefined,
  dryRun: boolean,
  deps: AmiJobDependencies,
): Promise<ImageCreateResult> {
  const problems = decision.problems.map((p) => p.message);
  const withProblems = problems.length > 0 ? { problems } : {};
  if (decision.kind === 'skip') {
    return {
      instanceId: decision.instanceId,
      name: decision.name,
      outcome: 'skipped',
      reason: decision.reason,
      ...(decision.isError ? { error: { code: 'InvalidTag', message: decision.reason } } : {}),
      ...withProblems,
    };
  }
  const { request } = decision;
  if (existing) {
    return {
      instanceId: decision.instanceId,
      name: decision.name,
      outcome: 'exists',
      imageId: existing.imageId,
      imageName: existing.name,
      reason: `already has ${existing.imageId} for this slot`,
      ...withProblems,
    };
  }
  if (dryRun) {
    return {
      instanceId: decision.instanceId,
      name: decision.name,
      outcome: 'planned',
      imageName: request.name,
      noReboot: request.noReboot,
      ...withProblems,
    };
  }
  try {
    const { imageId } = await deps.images.createImage(request);
    deps.logger.info('AMI created', {
      instanceId: decision.instanceId,
      imageId,
      imageName: request.name,
    });
    return {
      instanceId: decision.instanceId,
      name: decision.name,
      outcome: 'created',
      imageId,
      imageName: request.name,
      noReboot: request.noReboot,
      ...withProblems,
    };
  } catch (error) {
    if (error instanceof ImageNameTakenError) {
      const made = await slotImageNamed(request, deps);
      if (made) {
        deps.logger.info('AMI already made for this slot (CreateImage: name taken by it)', {
          instanceId: decision.instanceId,
          imageId: made.imageId,
          imageName: request.name,
        });
        return {
          instanceId: decision.instanceId,
          name: decision.name,
          outcome: 'exists',
          imageId: made.imageId,
          imageName: request.name,
          reason: `already has ${made.imageId} for this slot (CreateImage answered InvalidAMIName.Duplicate: an earlier attempt made it)`,
          madeByLostAttempt: true,
          ...withProblems,
        };
      }
    }
    const failure = toAwsCallError('CreateImage', error);
    deps.logger.error('AMI creation failed', {
      instanceId: decision.instanceId,
      code: failure.code,
      error: failure.message,
    });
    return {
      instanceId: decision.instanceId,
      name: decision.name,
      outcome: 'failed',
      imageName: request.name,
      error: { code: failure.code, message: failure.message },
      ...withProblems,
    };
  }
}

/**
 * The image that holds a refused name, when it is this slot's own: managed, of this
 * deployment, schedule and slot, and of this instance (the tags `CreateImage` set on
 * it). Anything else holding the name (another stage's or a person's image, or one EC2
 * does not show yet) is not claimed: the creation then stays failed and is reported.
 */
async function slotImageNamed(
  request: ImageRequest,
  deps: AmiJobDependencies,
): Promise<ImageFacts | undefined> {
  const { keys } = deps.config;
  const identity = [keys.managed, keys.deployment, keys.schedule, keys.slot, keys.instanceId];
  const expected = request.tags.filter((t) => identity.includes(t.Key));
  let image: ImageFacts | undefined;
  try {
    image = await deps.images.findImageByName(request.name);
  } catch (error) {
    deps.logger.warn('could not look up the image holding the AMI name', {
      imageName: request.name,
      error: toAwsCallError('DescribeImages', error).message,
    });
    return undefined;
  }
  if (!image || expected.length !== identity.length) return undefined;
  return expected.every((t) => image.tags[t.Key] === t.Value) ? image : undefined;
}

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

async function deregisterOne(
  item: { instanceId: string; imageId: string; reason: string },
  image: ImageFacts | undefined,
  act: boolean,
  deps: AmiJobDependencies,
  journal: ActionJournal,
  behind: Behind,
): Promise<Omit<ImageRetireResult, 'snapshots'>> {
  const base = { imageId: item.imageId, instanceId: item.instanceId, reason: item.reason };
  if (!act) return { ...base, outcome: 'planned' };
  const record = {
    runId: deps.runId,
    job: 'amis',
    action: 'deregister-image',
    resourceId: item.imageId,
    reason: item.reason,
    details: {
      instanceId: item.instanceId,
      snapshotIds: image?.snapshotIds ?? [],
      sizeGiB: image?.sizeGiB,
    },
  };
  try {
    await journal.record({ ...record, phase: 'before' });
  } catch (error) {
    const failure = toAwsCallError('RecordAction', error);
    return {
      ...base,
      outcome: 'failed',
      error: { code: 'JournalUnavailable', message: failure.message },
    };
  }
  let result: Omit<ImageRetireResult, 'snapshots'>;
  try {
    await deps.images.deregisterImage(item.imageId);
    result = { ...base, outcome: 'deregistered' };
  } catch (error) {
    if (error instanceof ImageGoneError) {
      result = {
        ...base,
        outcome: 'gone',
        reason: `${item.reason}; already deregistered (${error.code})`,
      };
    } else {
      const failure = toAwsCallError('DeregisterImage', error);
      result = {
        ...base,
        outcome: 'failed',
        error: { code: failure.code, message: failure.message },
      };
    }
  }
  const after = journal
    .record({
      ...record,
      phase: 'after',
      outcome: result.outcome === 'failed' ? 'failed' : 'done',
      reason: result.reason,
      ...(result.error ? { error: result.error } : {}),
    })
    .catch((error: unknown) =>
      deps.logger.error('deregistration done but its record could not be written', {
        imageId: item.imageId,
        error: error instanceof Error ? error.message : String(error),
      }),
    );
  behind.add(after);
  return result;
}

async function snapshotHoldersSafe(
  deps: AmiJobDependencies,
  warnings: string[],
): Promise<Map<string, string[]> | undefined> {
  try {
    const holders = new Map<string, string[]>();
    for (const image of await deps.images.listOwnImages()) {
      for (const snapshotId of image.snapshotIds)
        holders.set(snapshotId, [...(holders.get(snapshotId) ?? []), image.imageId]);
    }
    return holders;
  } catch (error) {
    warnings.push(
      `images could not be listed after deregistering (${toAwsCallError('DescribeImages', error).message}); their snapshots kept`,
    );
    return undefined;
  }
}

async function retireSnapshots(
  result: Omit<ImageRetireResult, 'snapshots'>,
  image: ImageFacts | undefined,
  act: boolean,
  rules: RecycleBinRule[] | undefined,
  holders: Map<string, string[]> | undefined,
  deps: AmiJobDependencies,
  journal: ActionJournal,
  warnings: string[],
  pacing: {
    readonly pool: PacedPool;
    readonly behind: Behind;
    /** Snapshot deletions started in this run, by id: a shared snapshot is deleted once. */
    readonly deleting: Map<string, Promise<ImageSnapshotResult>>;
  },
): Promise<ImageSnapshotResult[]> {
  const ids = image?.snapshotIds ?? [];
  if (ids.length === 0) return [];
  if (result.outcome === 'failed' || result.outcome === 'deferred') {
    return ids.map((id) => ({
      snapshotId: id,
      outcome: 'kept' as const,
      reason: 'the AMI was not deregistered',
    }));
  }
  if (!act) {
    return ids.map((id) => ({
      snapshotId: id,
      outcome: 'planned' as const,
      reason: `behind ${result.imageId}, deleted after it is deregistered`,
    }));
  }
  if (rules === undefined) {
    return ids.map((id) => ({
      snapshotId: id,
      outcome: 'kept' as const,
      reason: 'Recycle Bin rules could not be read',
    }));
  }
  const rule = recycleBinRuleFor(image?.tags ?? {}, rules);
  if (rule) {
    return ids.map((id) => ({
      snapshotId: id,
      outcome: 'kept' as const,
      reason: `Recycle Bin rule ${rule.identifier} keeps ${result.imageId} restorable for ${rule.retentionDays} days; its snapshots stay for the bin (the orphan sweep removes them after)`,
    }));
  }
  if (!holders) {
    return ids.map((id) => ({
      snapshotId: id,
      outcome: 'kept' as const,
      reason: 'images could not be listed',
    }));
  }
  let facts: Map<string, SnapshotFacts>;
  try {
    facts = new Map((await deps.ec2.describeSnapshotsByIds(ids)).map((s) => [s.snapshotId, s]));
  } catch (error) {
    const reason = `its snapshots could not be described (${toAwsCallError('DescribeSnapshots', error).message}); kept, the orphan sweep retries`;
    warnings.push(`${result.imageId}: ${reason}`);
    return ids.map((id) => ({ snapshotId: id, outcome: 'kept' as const, reason }));
  }
  const results: (ImageSnapshotResult | Promise<ImageSnapshotResult>)[] = [];
  for (const snapshotId of ids) {
    const snapshot = facts.get(snapshotId);
    const usedBy = (holders.get(snapshotId) ?? []).filter((id) => id !== result.imageId);
    if (!snapshot) {
      results.push({ snapshotId, outcome: 'skipped', reason: 'already gone' });
    } else if (!isManagedBy(snapshot.tags, deps.config.keys, deps.config.deployment)) {
      results.push({
        snapshotId,
        outcome: 'kept',
        reason: 'not tagged as created by this deployment',
        sizeGiB: snapshot.sizeGiB,
      });
    } else if (usedBy.length > 0) {
      results.push({
        snapshotId,
        outcome: 'kept',
        reason: `still used by ${usedBy.join(', ')}`,
        sizeGiB: snapshot.sizeGiB,
      });
    } else if (snapshot.state !== 'completed') {
      results.push({
        snapshotId,
        outcome: 'kept',
        reason: `snapshot is ${snapshot.state}`,
        sizeGiB: snapshot.sizeGiB,
      });
    } else {
      const claimed = pacing.deleting.get(snapshotId);
      if (claimed) {
        // Shared with an AMI retired in the same run: deleted once, by the first.
        results.push(
          claimed.then((first) =>
            first.outcome === 'deleted' || first.outcome === 'skipped'
              ? { snapshotId, outcome: 'skipped' as const, reason: 'already gone' }
              : {
                  snapshotId,
                  outcome: 'kept' as const,
                  reason: `also behind an AMI retired in this run, whose deletion of it ended ${first.outcome}`,
                  sizeGiB: snapshot.sizeGiB,
                },
          ),
        );
        continue;
      }
      const deletion = pacing.pool.run(
        () =>
          deleteImageSnapshot(
            snapshotId,
            result.imageId,
            snapshot.sizeGiB,
            deps,
            journal,
            pacing.behind,
          ),
        (r) => r.outcome === 'failed' && isThrottleCode(r.error?.code),
      );
      pacing.deleting.set(snapshotId, deletion);
      results.push(deletion);
    }
  }
  return Promise.all(results);
}

async function deleteImageSnapshot(
  snapshotId: string,
  imageId: string,
  sizeGiB: number | undefined,
  deps: AmiJobDependencies,
  journal: ActionJournal,
  behind: Behind,
): Promise<ImageSnapshotResult> {
  const reason = `behind deregistered ${imageId}`;
  const toResult = (attempt: DeletionAttempt): ImageSnapshotResult => {
    switch (attempt.kind) {
      case 'deleted':
        return { snapshotId, outcome: 'deleted', reason, sizeGiB };
      case 'in-use':
        return {
          snapshotId,
          outcome: 'kept',
          reason: `${reason}; in use by another image (InvalidSnapshot.InUse)`,
          sizeGiB,
        };
      case 'gone':
        return { snapshotId, outcome: 'skipped', reason: `${reason}; already deleted`, sizeGiB };
      case 'unrecorded':
        return { snapshotId, outcome: 'failed', reason, error: attempt.error };
      case 'failed':
        return { snapshotId, outcome: 'failed', reason, sizeGiB, error: attempt.error };
    }
  };
  const attempt = await deleteSnapshotRecorded(
    {
      runId: deps.runId,
      job: 'amis',
      action: 'delete-snapshot',
      resourceId: snapshotId,
      reason,
      details: { imageId, sizeGiB },
    },
    () => deps.ec2.deleteSnapshot(snapshotId),
    journal,
    deps.logger,
    (a) => toResult(a).reason,
    behind,
  );
  return toResult(attempt);
}

/**
 * Writes each creation outcome to the run history as an item of its resource, so the
 * history of an AMI or an instance shows it: an AMI made (under the AMI, and the
 * instance), an instance skipped or whose creation failed (under the instance). An AMI
 * already made for the slot was recorded by the run that made it; deferred instances
 * are left to the retry that does them. A record that cannot be written is logged.
 */
async function recordCreations(
  created: readonly ImageCreateResult[],
  slot: string,
  deps: AmiJobDependencies,
  journal: ActionJournal,
): Promise<string[]> {
  const unrecorded: string[] = [];
  // Written together (a batching journal puts them in a few calls), each failure reported.
  const writes: Promise<void>[] = [];
  for (const result of created) {
    const lostAnswer = result.outcome === 'exists' && result.madeByLostAttempt === true;
    if (!['created', 'skipped', 'failed'].includes(result.outcome) && !lostAnswer) continue;
    // An AMI an attempt of this run made whose answer was lost (CreateImage then met its
    // name taken by it) is recorded as created too, or no retirement could ever take it.
    const made = (result.outcome === 'created' || lostAnswer) && result.imageId;
    const resourceId = made && result.imageId ? result.imageId : result.instanceId;
    const outcome = made ? 'done' : result.outcome === 'failed' ? 'failed' : 'skipped';
    const reason =
      result.outcome === 'created'
        ? `scheduled AMI of ${result.instanceId}`
        : result.outcome === 'exists' && made
          ? `scheduled AMI of ${result.instanceId}, already made for this slot`
          : (result.reason ?? result.error?.message ?? result.outcome);
    const write = journal
      .record({
        runId: deps.runId,
        job: 'amis',
        action: result.outcome === 'skipped' ? 'skip-instance' : 'create-image',
        resourceId,
        phase: 'after',
        outcome,
        reason,
        details: {
          instanceId: result.instanceId,
          slot,
          ...(result.imageName ? { imageName: result.imageName } : {}),
          ...(result.noReboot !== undefined ? { noReboot: result.noReboot } : {}),
          ...(result.problems && result.problems.length > 0 ? { problems: result.problems } : {}),
        },
        ...(result.error ? { error: result.error } : {}),
      })
      .catch((error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        deps.logger.error('AMI outcome not recorded in the run history', {
          instanceId: result.instanceId,
          imageId: result.imageId,
          error: message,
        });
        if (made) {
          unrecorded.push(
            `${result.imageId}: made but its creation could not be recorded (${message}); it is kept until deleted by hand`,
          );
        }
      });
    writes.push(write);
  }
  await Promise.all(writes);
  return unrecorded;
}

function failedReport(
  base: Omit<
    AmiReport,
    | 'status'
    | 'endedAt'
    | 'counts'
    | 'created'
    | 'retired'
    | 'kept'
    | 'blocked'
    | 'cap'
    | 'warnings'
    | 'error'
  >,
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

function outOfTime(input: AmiJobInput): boolean {
  return input.remainingMs !== undefined && input.remainingMs() < (input.safetyMarginMs ?? 0);
}
