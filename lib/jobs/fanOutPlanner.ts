import { toAwsCallError } from '../aws/errors.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import { planInstanceBackup } from '../domain/backupPlan.ts';
import {
  type BatchMessage,
  type BatchSpec,
  batchCountFor,
  type FanOutJob,
  planInstanceBatches,
  type Target,
  targetLabel,
} from '../domain/fanOut.ts';
import { resolveJobSchedule } from '../domain/schedules.ts';
import { nearMissProblems } from '../domain/tagKeyTypos.ts';
import { ANY_TAG_KEY } from './backupJob.ts';
import { runOutcomeMetric } from './fanOutMetrics.ts';
import type {
  BatchCheckpointsPort,
  FanOutQueuePort,
  InstancesPort,
  LoggerPort,
  MetricsPort,
  ReportedError,
  RunTrigger,
} from './ports.ts';
import { noMetrics } from './runReport.ts';

/** What the fan-out planner is asked to do: one scheduled run of a job, over every target. */
export interface FanOutInput {
  readonly job: FanOutJob;
  readonly schedule: string;
  /** The slot served, ISO 8601 UTC. */
  readonly slot: string;
  readonly dryRun: boolean;
  readonly trigger: RunTrigger;
  /** The planner took the slot over from an earlier run: workers reconcile by the slot tag. */
  readonly resuming: boolean;
}

/** What the planner found and sent for one target. */
export interface TargetDispatch {
  readonly account: string;
  readonly region: string;
  readonly instances?: number | undefined;
  readonly batches: number;
  readonly error?: ReportedError | undefined;
}

/** The planner's report: the run is `running` until its workers finish every batch. */
export interface FanOutReport {
  readonly runId: string;
  readonly job: FanOutJob;
  readonly deployment: string;
  readonly schedule: string;
  readonly slot: string;
  readonly trigger: RunTrigger;
  readonly dryRun: boolean;
  /**
   * `running`: batches sent; `succeeded`: nothing to do; `partial`: nothing to do where
   * the targets could be read, and some could not; `failed`: nothing could be sent.
   */
  readonly status: 'running' | 'succeeded' | 'partial' | 'failed';
  readonly startedAt: string;
  readonly endedAt: string;
  readonly counts: {
    readonly targets: number;
    readonly targetsFailed: number;
    readonly instances: number;
    readonly batches: number;
  };
  readonly targets: readonly TargetDispatch[];
  readonly error?: ReportedError | undefined;
}

/** What the planner reads and sends through. */
export interface FanOutDependencies {
  readonly targets: readonly Target[];
  readonly ec2For: (
    target: Target,
  ) => Pick<InstancesPort, 'listInstancesWithTagKey' | 'volumeTagsWithKey'>;
  readonly queue: FanOutQueuePort;
  readonly history: Pick<BatchCheckpointsPort, 'putBatches' | 'finishBatch'>;
  readonly config: Pick<
    SnapkeeperConfig,
    | 'deployment'
    | 'keys'
    | 'catalog'
    | 'copyTags'
    | 'fanOutBatchSize'
    | 'fanOutWorkers'
    | 'manualRetainDays'
  >;
  readonly clock: () => Date;
  readonly runId: string;
  readonly logger: LoggerPort;
  readonly metrics?: MetricsPort;
  /** The run's job metrics under that job's own `job` dimension (see {@link runOutcomeMetric}). */
  readonly metricsFor?: ((job: FanOutJob) => MetricsPort) | undefined;
}

/** The planner's report of a run, ended now with `status`. */
function fanOutReport(
  input: FanOutInput,
  schedule: string,
  startedAt: Date,
  end: {
    readonly status: FanOutReport['status'];
    readonly counts: FanOutReport['counts'];
    readonly dispatches: readonly TargetDispatch[];
    readonly error?: ReportedError | undefined;
  },
  deps: FanOutDependencies,
): FanOutReport {
  return {
    runId: deps.runId,
    job: input.job,
    deployment: deps.config.deployment,
    schedule,
    slot: input.slot,
    trigger: input.trigger,
    dryRun: input.dryRun,
    startedAt: startedAt.toISOString(),
    status: end.status,
    endedAt: deps.clock().toISOString(),
    counts: end.counts,
    targets: end.dispatches,
    ...(end.error ? { error: end.error } : {}),
  };
}

/** What the planner found over every target: the batches to send and the targets it could not read. */
interface TargetsRead {
  readonly dispatches: TargetDispatch[];
  readonly batches: BatchSpec[];
  readonly failedTargets: { batchId: string; target: Target; error: ReportedError }[];
}

/**
 * The fan-out planner: for every (account, region) target, reads the opted-in instances
 * once (one paginated, filtered describe of instances and one of skip-tagged volumes),
 * keeps those due for the slot, splits them into batches, records every batch `pending`
 * in the run history, then sends one queue message per batch. A retention run is one
 * batch per target. A target that cannot be read (a role that cannot be assumed, say)
 * is recorded as a failed batch, so the run ends `partial`, and the others go on.
 *
 * @example
 * const report = await planFanOut({ job: 'backup', schedule: 'daily', slot, dryRun: false, trigger: 'schedule', resuming: false }, deps);
 */
export async function planFanOut(
  input: FanOutInput,
  deps: FanOutDependencies,
): Promise<FanOutReport> {
  const { config, logger } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const startedAt = deps.clock();
  const schedule = resolveJobSchedule(config.catalog, input.schedule, config.manualRetainDays);
  const { dispatches, batches, failedTargets } = await readTargets(
    input,
    schedule.name,
    startedAt,
    deps,
  );
  const expected = batches.length + failedTargets.length;
  const counts = {
    targets: deps.targets.length,
    targetsFailed: failedTargets.length,
    instances: dispatches.reduce((n, d) => n + (d.instances ?? 0), 0),
    batches: expected,
  };
  const finish = (status: FanOutReport['status'], error?: ReportedError): FanOutReport => {
    // A run the planner ends itself (nothing to send, or nothing could be) counts here.
    if (status !== 'running')
      runOutcomeMetric(input.job, status, deps.metricsFor?.(input.job) ?? metrics);
    return fanOutReport(
      input,
      schedule.name,
      startedAt,
      { status, counts, dispatches, error },
      deps,
    );
  };

  if (batches.length === 0) {
    const error = failedTargets[0]?.error;
    const status = !error
      ? 'succeeded'
      : failedTargets.length < deps.targets.length
        ? 'partial'
        : 'failed';
    const report = finish(status, error);
    logger.info(`fan-out ${input.job} run: nothing to send`, { report });
    return report;
  }
  const unrecorded = await recordBatches({ batches, failedTargets }, startedAt, deps);
  if (unrecorded) {
    const report = finish('failed', unrecorded);
    logger.error('fan-out run failed', { report });
    return report;
  }
  const messages = batches.map((batch) =>
    batchMessage(batch, input, { runId: deps.runId, schedule: schedule.name, batches: expected }),
  );
  const unsent = await sendBatches(messages, deps);
  if (unsent.length === messages.length) {
    const report = finish('failed', {
      code: 'FanOutNotSent',
      message: `none of the ${messages.length} batches could be sent to the queue`,
    });
    logger.error('fan-out run failed', { report });
    return report;
  }
  metrics.count('FanOutBatchesSent', messages.length - unsent.length);
  const report = finish(
    'running',
    unsent.length > 0
      ? {
          code: 'FanOutPartlySent',
          message: `${unsent.length} of ${messages.length} batches could not be sent: ${unsent.slice(0, 5).join(', ')}`,
        }
      : undefined,
  );
  logger.info(`fan-out ${input.job} run dispatched`, { counts, targets: dispatches });
  return report;
}

/**
 * Reads every target: a retention run is one batch per target; a backup run lists the
 * instances due for the slot and splits them into batches. A target that cannot be read
 * is a failed batch of its own (`<target>/list`).
 */
async function readTargets(
  input: FanOutInput,
  schedule: string,
  startedAt: Date,
  deps: FanOutDependencies,
): Promise<TargetsRead> {
  const { config } = deps;
  const read: TargetsRead = { dispatches: [], batches: [], failedTargets: [] };
  for (const target of deps.targets) {
    if (input.job === 'retention') {
      // One batch per target, at the whole DeleteSnapshot rate (a bucket of its own).
      read.batches.push({ batchId: `${targetLabel(target)}/0001`, target, rateShare: 1 });
      read.dispatches.push({ ...target, batches: 1 });
      continue;
    }
    try {
      const ec2 = deps.ec2For(target);
      const volumeTags = await ec2.volumeTagsWithKey(config.keys.skip);
      const due = await dueInstances(
        ec2,
        target,
        {
          keys: config.keys,
          catalog: config.catalog,
          schedule,
          slot: input.slot,
          deployment: config.deployment,
          runId: deps.runId,
          createdAt: startedAt.toISOString(),
          copyTags: config.copyTags,
          volumeTags,
        },
        deps,
      );
      const count = batchCountFor(due.length, config.fanOutBatchSize, config.fanOutWorkers);
      const planned = planInstanceBatches(
        target,
        due,
        volumeTags,
        count,
        config.fanOutWorkers,
        config.fanOutBatchSize,
      );
      read.batches.push(...planned);
      read.dispatches.push({ ...target, instances: due.length, batches: planned.length });
    } catch (error) {
      const failure = toAwsCallError('DescribeInstances', error);
      const reported = { code: failure.code, message: failure.message };
      deps.logger.error('fan-out target could not be read', { target, error: reported });
      read.failedTargets.push({ batchId: `${targetLabel(target)}/list`, target, error: reported });
      read.dispatches.push({ ...target, batches: 0, error: reported });
    }
  }
  return read;
}

/**
 * The instances of one target due for the slot, by id and volume ids only (memory stays
 * flat in fleet size), then those whose opt-in key misses ours (`Snapkeeper:backup`,
 * `Snapkeeper:ami`): they go to a batch too, whose run reports them by instance and key
 * (never backs them up), as a single backup run reports both opt-in keys.
 */
async function dueInstances(
  ec2: ReturnType<FanOutDependencies['ec2For']>,
  target: Target,
  context: Parameters<typeof planInstanceBackup>[1],
  deps: FanOutDependencies,
): Promise<{ instanceId: string; volumeIds: string[] }[]> {
  const { keys } = deps.config;
  const due: { instanceId: string; volumeIds: string[] }[] = [];
  for await (const instance of ec2.listInstancesWithTagKey(keys.backup)) {
    if (planInstanceBackup(instance, context).kind === 'not-due') continue;
    due.push({
      instanceId: instance.instanceId,
      volumeIds: instance.volumes.map((v) => v.volumeId),
    });
  }
  const listed = new Set(due.map((d) => d.instanceId));
  try {
    for await (const instance of ec2.listInstancesWithTagKey(ANY_TAG_KEY)) {
      if (listed.has(instance.instanceId)) continue;
      if (instance.tags[keys.backup] !== undefined) continue;
      const misses = nearMissProblems(instance.instanceId, instance.tags, keys, [
        keys.backup,
        keys.ami,
      ]);
      if (misses.length === 0) continue;
      listed.add(instance.instanceId);
      due.push({ instanceId: instance.instanceId, volumeIds: [] });
    }
  } catch (error) {
    deps.logger.warn('tag keys that miss the opt-in key could not be checked', {
      target,
      error: toAwsCallError('DescribeInstances', error).message,
    });
  }
  return due;
}

/**
 * Records every batch `pending` in the run history, and each target that could not be
 * read as a batch that failed at once. Returns the run's error when they could not be
 * recorded: then nothing is sent.
 */
async function recordBatches(
  read: Pick<TargetsRead, 'batches' | 'failedTargets'>,
  startedAt: Date,
  deps: FanOutDependencies,
): Promise<ReportedError | undefined> {
  try {
    await deps.history.putBatches(
      deps.runId,
      [
        ...read.batches.map((b) => ({
          batchId: b.batchId,
          target: b.target,
          instances: b.instanceIds?.length,
        })),
        ...read.failedTargets.map((f) => ({ batchId: f.batchId, target: f.target })),
      ],
      startedAt,
    );
    for (const failed of read.failedTargets) {
      await deps.history.finishBatch(deps.runId, failed.batchId, {
        status: 'failed',
        endedAt: deps.clock().toISOString(),
        errorSummary: failed.error.message,
      });
    }
    return undefined;
  } catch (error) {
    const failure = toAwsCallError('BatchWriteItem', error);
    return {
      code: failure.code,
      message: `the batches could not be recorded, so none was sent: ${failure.message}`,
    };
  }
}

/** The queue message of one batch: what a worker needs to run it, and how many the run has. */
function batchMessage(
  batch: BatchSpec,
  input: FanOutInput,
  run: { readonly runId: string; readonly schedule: string; readonly batches: number },
): BatchMessage {
  return {
    ...batch,
    runId: run.runId,
    job: input.job,
    schedule: run.schedule,
    slot: input.slot,
    dryRun: input.dryRun,
    batches: run.batches,
    ...(input.resuming ? { reconcile: true } : {}),
  };
}

/** Sends one message per batch; returns the batch ids that could not be sent. */
async function sendBatches(
  messages: readonly BatchMessage[],
  deps: FanOutDependencies,
): Promise<string[]> {
  let unsent: string[];
  try {
    unsent = await deps.queue.send(messages);
  } catch (error) {
    const failure = toAwsCallError('SendMessageBatch', error);
    unsent = messages.map((m) => m.batchId);
    deps.logger.error('fan-out batches could not be sent', { error: failure.message });
  }
  if (unsent.length > 0 && unsent.length < messages.length) {
    deps.logger.error('some fan-out batches could not be sent: the run stays incomplete', {
      unsent,
    });
  }
  return unsent;
}
