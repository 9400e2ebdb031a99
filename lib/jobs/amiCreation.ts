import { ImageNameTakenError, toAwsCallError } from '../aws/errors.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import type { InstanceFacts } from '../domain/backupPlan.ts';
import {
  type ImageFacts,
  type ImageRequest,
  type InstanceImageDecision,
  planInstanceImage,
  withUniqueNames,
} from '../domain/imagePlan.ts';
import { DEFAULT_MAX_IN_FLIGHT, PacedPool } from './pacedPool.ts';
import type { ActionJournal, ImagesPort, LoggerPort, ReportedError } from './ports.ts';

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

/** What creating AMIs acts through (a part of the AMI job's dependencies). */
export interface AmiCreationDependencies {
  readonly images: Pick<ImagesPort, 'createImage' | 'findImageByName'>;
  readonly config: Pick<
    SnapkeeperConfig,
    'deployment' | 'keys' | 'catalog' | 'copyTags' | 'backupConcurrency'
  > &
    Partial<Pick<SnapkeeperConfig, 'maxInFlight'>>;
  readonly runId: string;
  readonly logger: LoggerPort;
}

/** The slot a creation run makes AMIs for, and how it runs. */
export interface CreationRun {
  readonly schedule: string;
  readonly slot: string;
  readonly startedAt: Date;
  readonly dryRun: boolean;
  /** True when too little time is left to start another creation. */
  readonly outOfTime: () => boolean;
}

type DueDecision = Exclude<InstanceImageDecision, { kind: 'not-due' }>;

/**
 * Creates the slot's AMIs: one `CreateImage` per instance whose opt-in tag lists the
 * schedule, paced by the bucket (from `BACKUP_CONCURRENCY` up to `MAX_IN_FLIGHT`, see
 * PacedPool). An instance that already has its AMI for the slot (a retried slot) is
 * reported `exists`; near the deadline nothing new starts (`deferred`); a dry run
 * only plans.
 *
 * @example
 * const created = await createDueImages(instances, existingForSlot, run, deps);
 */
export async function createDueImages(
  instances: readonly InstanceFacts[],
  existingForSlot: readonly ImageFacts[],
  run: CreationRun,
  deps: AmiCreationDependencies,
): Promise<ImageCreateResult[]> {
  const { config } = deps;
  const covered = new Map(
    existingForSlot.map((image) => [image.tags[config.keys.instanceId], image]),
  );
  const context = {
    keys: config.keys,
    catalog: config.catalog,
    schedule: run.schedule,
    slot: run.slot,
    deployment: config.deployment,
    runId: deps.runId,
    createdAt: run.startedAt.toISOString(),
    copyTags: config.copyTags,
  };
  const decisions = withUniqueNames(
    instances.map((instance) => planInstanceImage(instance, context)),
    context,
  ).filter((d): d is DueDecision => d.kind !== 'not-due');
  const pool = new PacedPool({
    initial: config.backupConcurrency,
    ceiling: config.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
  });
  return Promise.all(
    decisions.map((decision) =>
      pool.run(() =>
        run.outOfTime() && decision.kind === 'create' && !covered.has(decision.instanceId)
          ? Promise.resolve<ImageCreateResult>({
              instanceId: decision.instanceId,
              name: decision.name,
              outcome: 'deferred',
              reason: 'not started: too little time left in this invocation',
            })
          : createOne(decision, covered.get(decision.instanceId), run.dryRun, deps),
      ),
    ),
  );
}

async function createOne(
  decision: DueDecision,
  existing: ImageFacts | undefined,
  dryRun: boolean,
  deps: AmiCreationDependencies,
): Promise<ImageCreateResult> {
  const problems = decision.problems.map((p) => p.message);
  const base = {
    instanceId: decision.instanceId,
    name: decision.name,
    ...(problems.length > 0 ? { problems } : {}),
  };
  if (decision.kind === 'skip') {
    return {
      ...base,
      outcome: 'skipped',
      reason: decision.reason,
      ...(decision.isError ? { error: { code: 'InvalidTag', message: decision.reason } } : {}),
    };
  }
  const { request } = decision;
  if (existing) {
    return {
      ...base,
      outcome: 'exists',
      imageId: existing.imageId,
      imageName: existing.name,
      reason: `already has ${existing.imageId} for this slot`,
    };
  }
  if (dryRun) {
    return { ...base, outcome: 'planned', imageName: request.name, noReboot: request.noReboot };
  }
  try {
    const { imageId } = await deps.images.createImage(request);
    deps.logger.info('AMI created', {
      instanceId: decision.instanceId,
      imageId,
      imageName: request.name,
    });
    return {
      ...base,
      outcome: 'created',
      imageId,
      imageName: request.name,
      noReboot: request.noReboot,
    };
  } catch (error) {
    return creationRefused(error, request, base, deps);
  }
}

/**
 * A `CreateImage` that threw: the slot's own AMI when the name is taken by it (an earlier
 * attempt made it and its answer was lost), else a failure, logged.
 */
async function creationRefused(
  error: unknown,
  request: ImageRequest,
  base: Pick<ImageCreateResult, 'instanceId' | 'name' | 'problems'>,
  deps: AmiCreationDependencies,
): Promise<ImageCreateResult> {
  if (error instanceof ImageNameTakenError) {
    const made = await slotImageNamed(request, deps);
    if (made) {
      deps.logger.info('AMI already made for this slot (CreateImage: name taken by it)', {
        instanceId: base.instanceId,
        imageId: made.imageId,
        imageName: request.name,
      });
      return {
        ...base,
        outcome: 'exists',
        imageId: made.imageId,
        imageName: request.name,
        reason: `already has ${made.imageId} for this slot (CreateImage answered InvalidAMIName.Duplicate: an earlier attempt made it)`,
        madeByLostAttempt: true,
      };
    }
  }
  const failure = toAwsCallError('CreateImage', error);
  deps.logger.error('AMI creation failed', {
    instanceId: base.instanceId,
    code: failure.code,
    error: failure.message,
  });
  return {
    ...base,
    outcome: 'failed',
    imageName: request.name,
    error: { code: failure.code, message: failure.message },
  };
}

/**
 * The image that holds a refused name, when it is this slot's own: managed, of this
 * deployment, schedule and slot, and of this instance (the tags `CreateImage` set on
 * it). Anything else holding the name (another stage's or a person's image, or one EC2
 * does not show yet) is not claimed: the creation then stays failed and is reported.
 */
async function slotImageNamed(
  request: ImageRequest,
  deps: AmiCreationDependencies,
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

/**
 * Writes each creation outcome to the run history as an item of its resource, so the
 * history of an AMI or an instance shows it: an AMI made (under the AMI, and the
 * instance), an instance skipped or whose creation failed (under the instance). An AMI
 * already made for the slot was recorded by the run that made it; deferred instances
 * are left to the retry that does them. A record that cannot be written is logged, and
 * for an AMI made, returned as a warning (nothing can retire it then).
 *
 * @example
 * const warnings = await recordCreations(created, '2026-11-23T03:00Z', deps, journal);
 */
export async function recordCreations(
  created: readonly ImageCreateResult[],
  slot: string,
  deps: AmiCreationDependencies,
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
