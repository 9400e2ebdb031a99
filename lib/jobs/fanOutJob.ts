import type { Ec2Gateway } from '../aws/Ec2Gateway.ts';
import { toAwsCallError } from '../aws/errors.ts';
import type { FanOutQueueGateway } from '../aws/FanOutQueueGateway.ts';
import type { RunHistoryGateway } from '../aws/RunHistoryGateway.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import { planInstanceBackup } from '../domain/backupPlan.ts';
import { SnapkeeperError } from '../domain/errors.ts';
import {
  type BatchMessage,
  type BatchSpec,
  type BatchStatus,
  batchCountFor,
  type FanOutJob,
  type FanOutProgress,
  fanOutProgress,
  planInstanceBatches,
  type Target,
  targetLabel,
} from '../domain/fanOut.ts';
import { resolveJobSchedule } from '../domain/schedules.ts';
import { nearMissProblems } from '../domain/tagKeyTypos.ts';
import { ANY_TAG_KEY, type BackupReport, runBackupJob } from './backupJob.ts';
import type { CreationLedger } from './ownership.ts';
import type { ActionJournal, LoggerPort, MetricsPort, ReportedError, RunTrigger } from './ports.ts';
import { type RetentionReport, runRetentionJob } from './retentionJob.ts';
import { noMetrics } from './runReport.ts';
import { problemSummary, type RunEventsPort } from './slotRun.ts';

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
  ) => Pick<Ec2Gateway, 'listInstancesWithTagKey' | 'volumeTagsWithKey'>;
  readonly queue: Pick<FanOutQueueGateway, 'send'>;
  readonly history: Pick<RunHistoryGateway, 'putBatches' | 'finishBatch'>;
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

/**
 * Counts a fan-out run's outcome as the job's own run would (`BackupRunsFailed`,
 * `RetentionRunsSucceeded`, ...), once per run, through the job's metrics: the failure
 * alarms watch `job=backup` and `job=retention`, not the planner's or the worker's.
 *
 * @example
 * runOutcomeMetric('backup', 'failed', metrics); // BackupRunsFailed 1
 */
export function runOutcomeMetric(job: FanOutJob, status: string, metrics: MetricsPort): void {
  const prefix = job === 'backup' ? 'Backup' : 'Retention';
  metrics.count(`${prefix}Runs${status === 'failed' ? 'Failed' : 'Succeeded'}`, 1);
}

/** A batch is not a run: its job's run-outcome counts are left to the run's end. */
function batchMetrics(metrics: MetricsPort): MetricsPort {
  return {
    count: (name, value) => {
      if (!/Runs(Failed|Succeeded)$/.test(name)) metrics.count(name, value);
    },
    ...(metrics.seconds ? { seconds: metrics.seconds.bind(metrics) } : {}),
  };
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
  const dispatches: TargetDispatch[] = [];
  const batches: BatchSpec[] = [];
  const failedTargets: { batchId: string; target: Target; error: ReportedError }[] = [];

  for (const target of deps.targets) {
    if (input.job === 'retention') {
      // One batch per target, at the whole DeleteSnapshot rate (a bucket of its own).
      batches.push({ batchId: `${targetLabel(target)}/0001`, target, rateShare: 1 });
      dispatches.push({ ...target, batches: 1 });
      continue;
    }
    try {
      const ec2 = deps.ec2For(target);
      const volumeTags = await ec2.volumeTagsWithKey(config.keys.skip);
      const due: { instanceId: string; volumeIds: string[] }[] = [];
      const context = {
        keys: config.keys,
        catalog: config.catalog,
        schedule: schedule.name,
        slot: input.slot,
        deployment: config.deployment,
        runId: deps.runId,
        createdAt: startedAt.toISOString(),
        copyTags: config.copyTags,
        volumeTags,
      };
      for await (const instance of ec2.listInstancesWithTagKey(config.keys.backup)) {
        // Only the ids and volume ids are kept: memory stays flat in fleet size.
        if (planInstanceBackup(instance, context).kind === 'not-due') continue;
        due.push({
          instanceId: instance.instanceId,
          volumeIds: instance.volumes.map((v) => v.volumeId),
        });
      }
      // An instance whose opt-in key misses ours (`Snapkeeper:backup`, `Snapkeeper:ami`)
      // is not listed above: it goes to a batch too, whose run reports it by instance and
      // key (never backs it up), as a single backup run reports both opt-in keys.
      const listed = new Set(due.map((d) => d.instanceId));
      try {
        for await (const instance of ec2.listInstancesWithTagKey(ANY_TAG_KEY)) {
          if (listed.has(instance.instanceId)) continue;
          if (instance.tags[config.keys.backup] !== undefined) continue;
          const misses = nearMissProblems(instance.instanceId, instance.tags, config.keys, [
            config.keys.backup,
            config.keys.ami,
          ]);
          if (misses.length === 0) continue;
          listed.add(instance.instanceId);
          due.push({ instanceId: instance.instanceId, volumeIds: [] });
        }
      } catch (error) {
        logger.warn('tag keys that miss the opt-in key could not be checked', {
          target,
          error: toAwsCallError('DescribeInstances', error).message,
        });
      }
      const count = batchCountFor(due.length, config.fanOutBatchSize, config.fanOutWorkers);
      const planned = planInstanceBatches(target, due, volumeTags, count, config.fanOutWorkers);
      batches.push(...planned);
      dispatches.push({ ...target, instances: due.length, batches: planned.length });
    } catch (error) {
      const failure = toAwsCallError('DescribeInstances', error);
      const reported = { code: failure.code, message: failure.message };
      logger.error('fan-out target could not be read', { target, error: reported });
      failedTargets.push({ batchId: `${targetLabel(target)}/list`, target, error: reported });
      dispatches.push({ ...target, batches: 0, error: reported });
    }
  }

  const expected = batches.length + failedTargets.length;
  const base = {
    runId: deps.runId,
    job: input.job,
    deployment: config.deployment,
    schedule: schedule.name,
    slot: input.slot,
    trigger: input.trigger,
    dryRun: input.dryRun,
    startedAt: startedAt.toISOString(),
  };
  const counts = {
    targets: deps.targets.length,
    targetsFailed: failedTargets.length,
    instances: dispatches.reduce((n, d) => n + (d.instances ?? 0), 0),
    batches: expected,
  };
  const finish = (
    status: FanOutReport['status'],
    error?: ReportedError | undefined,
  ): FanOutReport => {
    // A run the planner ends itself (nothing to send, or nothing could be) counts here.
    if (status !== 'running')
      runOutcomeMetric(input.job, status, deps.metricsFor?.(input.job) ?? metrics);
    return {
      ...base,
      status,
      endedAt: deps.clock().toISOString(),
      counts,
      targets: dispatches,
      ...(error ? { error } : {}),
    };
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

  try {
    await deps.history.putBatches(
      deps.runId,
      [
        ...batches.map((b) => ({
          batchId: b.batchId,
          target: b.target,
          instances: b.instanceIds?.length,
        })),
        ...failedTargets.map((f) => ({ batchId: f.batchId, target: f.target })),
      ],
      startedAt,
    );
    // A target that could not be read is a batch that failed at once.
    for (const failed of failedTargets) {
      await deps.history.finishBatch(deps.runId, failed.batchId, {
        status: 'failed',
        endedAt: deps.clock().toISOString(),
        errorSummary: failed.error.message,
      });
    }
  } catch (error) {
    const failure = toAwsCallError('BatchWriteItem', error);
    const report = finish('failed', {
      code: failure.code,
      message: `the batches could not be recorded, so none was sent: ${failure.message}`,
    });
    logger.error('fan-out run failed', { report });
    return report;
  }

  const messages: BatchMessage[] = batches.map((batch) => ({
    ...batch,
    runId: deps.runId,
    job: input.job,
    schedule: schedule.name,
    slot: input.slot,
    dryRun: input.dryRun,
    batches: expected,
    ...(input.resuming ? { reconcile: true } : {}),
  }));
  let unsent: string[];
  try {
    unsent = await deps.queue.send(messages);
  } catch (error) {
    const failure = toAwsCallError('SendMessageBatch', error);
    unsent = messages.map((m) => m.batchId);
    logger.error('fan-out batches could not be sent', { error: failure.message });
  }
  if (unsent.length === messages.length) {
    const report = finish('failed', {
      code: 'FanOutNotSent',
      message: `none of the ${messages.length} batches could be sent to the queue`,
    });
    logger.error('fan-out run failed', { report });
    return report;
  }
  if (unsent.length > 0) {
    logger.error('some fan-out batches could not be sent: the run stays incomplete', {
      unsent,
    });
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

/** How long a batch running in another worker waits before it is looked at again. */
export const BUSY_RECHECK_SECONDS = 300;

/** A batch the worker could not finish this time: the queue delivers it again. */
export class BatchRetryError extends SnapkeeperError {
  public readonly batchId: string;

  public constructor(batchId: string, reason: string) {
    super(`batch ${batchId} will be retried: ${reason}`);
    this.name = 'BatchRetryError';
    this.batchId = batchId;
  }
}

/** What a worker did with one batch message. */
export interface BatchOutcome {
  readonly runId: string;
  readonly batchId: string;
  /**
   * `duplicate`: the batch was already final; nothing was done again. `running`: another
   * worker has it now; a new message looks again later.
   */
  readonly status: BatchStatus | 'duplicate';
  readonly attempt: number;
  readonly counts?: Readonly<Record<string, number>> | undefined;
  readonly errorSummary?: string | undefined;
  /** Set when this batch was the run's last: the run's final status. */
  readonly run?: FanOutProgress | undefined;
}

/** What a worker reads and acts through. */
export interface BatchDependencies {
  readonly history: Pick<
    RunHistoryGateway,
    'claimBatch' | 'finishBatch' | 'runBatches' | 'completeRun' | 'renewLease' | 'getRun'
  >;
  readonly ec2For: (target: Target, rateShare?: number) => Ec2Gateway;
  /**
   * Sends a batch again as a new message: a batch that made progress but ran out of
   * time continues in the next delivery without using up its attempts.
   */
  readonly requeue?: ((message: BatchMessage, delaySeconds?: number) => Promise<void>) | undefined;
  readonly config: SnapkeeperConfig;
  readonly clock: () => Date;
  readonly logger: LoggerPort;
  readonly metrics?: MetricsPort;
  /**
   * The batch's job metrics under that job's own `job` dimension, so the backup and
   * retention alarms see a fan-out run as they see a single one; without it, `metrics`.
   */
  readonly metricsFor?: ((job: FanOutJob) => MetricsPort) | undefined;
  readonly journal?: ActionJournal;
  /** The history's creation records: a retention batch deletes only what it recorded. */
  readonly ledger?: CreationLedger | undefined;
  readonly events?: RunEventsPort | undefined;
  readonly remainingMs?: (() => number) | undefined;
}

/**
 * A worker's handling of one batch, checkpointed in the run history:
 * 1. claims the batch (`pending`/`retry` → `running`, one more attempt); a batch
 *    already final is a duplicate delivery and is not run again;
 * 2. runs the job for the batch under the fan-out's run id; a second attempt (or a
 *    batch of a run that took its slot over) first reads the slot's snapshots of its
 *    instances by the slot tag and skips those already backed up, so a retry never
 *    repeats a create;
 * 3. writes the batch's outcome; a failed or unfinished batch is marked `retry` and
 *    throws {@link BatchRetryError} so that the queue delivers it again, until the
 *    last attempt, after which its failure is final;
 * 4. when every batch of the run is final, finishes the run once and announces it.
 *
 * @throws {BatchRetryError} when the batch must be delivered again.
 */
export async function runFanOutBatch(
  message: BatchMessage,
  deps: BatchDependencies,
): Promise<BatchOutcome> {
  const { config, logger, history } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const now = deps.clock();
  const staleBefore = new Date(now.getTime() - config.functionTimeoutMs - 120_000);
  const claim = await history.claimBatch(message.runId, message.batchId, now, staleBefore);
  if (claim.kind === 'final') {
    logger.info('duplicate delivery of a finished batch: nothing done again', {
      batchId: message.batchId,
      status: claim.checkpoint.status,
    });
    // The first delivery may have died between its checkpoint and finishing the run.
    const run = await completeIfLast(message, deps);
    return {
      runId: message.runId,
      batchId: message.batchId,
      status: 'duplicate',
      attempt: claim.checkpoint.attempts,
      ...(run ? { run } : {}),
    };
  }
  if (claim.kind === 'busy') {
    // Another worker runs it now: look again later in a new message, rather than use up
    // one of this message's deliveries (the queue would dead-letter a healthy batch).
    if (deps.requeue) {
      await deps.requeue(message, BUSY_RECHECK_SECONDS);
      logger.info('batch is running in another worker: checking again later', {
        batchId: message.batchId,
        delaySeconds: BUSY_RECHECK_SECONDS,
      });
      return {
        runId: message.runId,
        batchId: message.batchId,
        status: 'running',
        attempt: claim.checkpoint.attempts,
      };
    }
    throw new BatchRetryError(message.batchId, 'another worker is running it now');
  }
  const attempt = claim.checkpoint.attempts;
  await history.renewLease(message.runId, now).catch(() => undefined);
  const resuming = message.reconcile === true || attempt > 1;
  // DRY_RUN=true on the worker plans only, as at every other entry point, whatever the
  // message says (one sent before DRY_RUN was set, a retry, a requeued batch).
  const dryRun = message.dryRun || config.dryRun;
  if (dryRun && !message.dryRun) {
    logger.warn('DRY_RUN is set: the batch plans only, although its message asked for a live run', {
      batchId: message.batchId,
    });
  }
  const ec2 = deps.ec2For(message.target, message.rateShare);
  const common = {
    ec2,
    config,
    clock: deps.clock,
    runId: message.runId,
    logger,
    metrics: batchMetrics(deps.metricsFor?.(message.job) ?? metrics),
    ...(deps.journal ? { journal: deps.journal } : {}),
  };
  let report: BackupReport | RetentionReport;
  try {
    report =
      message.job === 'backup'
        ? await runBackupJob(
            {
              schedule: message.schedule,
              scheduledTime: new Date(message.slot),
              dryRun,
              trigger: resuming ? 'retry' : 'schedule',
              resuming,
              batch: {
                instanceIds: message.instanceIds ?? [],
                ...(message.volumeTags ? { volumeTags: message.volumeTags } : {}),
              },
              remainingMs: deps.remainingMs,
              safetyMarginMs: config.safetyMarginMs,
            },
            common,
          )
        : await runRetentionJob(
            {
              schedule: message.schedule,
              dryRun,
              trigger: resuming ? 'retry' : 'schedule',
              remainingMs: deps.remainingMs,
              safetyMarginMs: config.safetyMarginMs,
            },
            { ...common, ledger: deps.ledger },
          );
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return finishBatch(message, attempt, 'failed', true, {}, reason, deps, metrics);
  }
  const summary = report.error
    ? `${report.error.code}: ${report.error.message}`
    : problemSummary(report);
  const counts = numericCounts(report.counts);
  const status: BatchStatus =
    report.status === 'succeeded'
      ? 'succeeded'
      : report.status === 'partial'
        ? 'partial'
        : 'failed';
  const why =
    report.status === 'incomplete'
      ? `incomplete: ${report.remaining?.length ?? 0} left for the next delivery`
      : summary;
  // Out of time after some progress: continue in a new message, attempts not used up.
  const progressed = (counts.backedUp ?? 0) + (counts.covered ?? 0) + (counts.deleted ?? 0) > 0;
  if (report.status === 'incomplete' && progressed && deps.requeue) {
    await history.finishBatch(message.runId, message.batchId, {
      status: 'retry',
      endedAt: deps.clock().toISOString(),
      counts,
      errorSummary: why,
    });
    await deps.requeue(message);
    metrics.count('FanOutBatchesContinued', 1);
    logger.info('batch out of time: continued in a new message', {
      batchId: message.batchId,
      remaining: report.remaining?.length ?? 0,
    });
    return { runId: message.runId, batchId: message.batchId, status: 'retry', attempt, counts };
  }
  // Failed instances or deletions are worth another delivery; bad tags are not.
  const retriable = status === 'failed' || (counts.failed ?? 0) > 0;
  return finishBatch(message, attempt, status, retriable, counts, why, deps, metrics);
}

async function finishBatch(
  message: BatchMessage,
  attempt: number,
  outcome: 'succeeded' | 'partial' | 'failed',
  retriable: boolean,
  counts: Record<string, number>,
  errorSummary: string | undefined,
  deps: BatchDependencies,
  metrics: MetricsPort,
): Promise<BatchOutcome> {
  const { history, logger } = deps;
  const lastAttempt = attempt >= deps.config.fanOutMaxAttempts;
  const retry = retriable && !lastAttempt;
  const status: BatchStatus = retry ? 'retry' : outcome;
  await history.finishBatch(message.runId, message.batchId, {
    status,
    endedAt: deps.clock().toISOString(),
    counts,
    ...(errorSummary ? { errorSummary } : {}),
  });
  await history.renewLease(message.runId, deps.clock()).catch(() => undefined);
  metrics.count(retry ? 'FanOutBatchesRetried' : 'FanOutBatchesFinished', 1);
  if (retry) {
    logger.warn('batch not finished: it will be delivered again', {
      batchId: message.batchId,
      attempt,
      reason: errorSummary,
    });
    throw new BatchRetryError(message.batchId, errorSummary ?? 'failed');
  }
  const run = await completeIfLast(message, deps);
  return {
    runId: message.runId,
    batchId: message.batchId,
    status,
    attempt,
    counts,
    ...(errorSummary ? { errorSummary } : {}),
    ...(run ? { run } : {}),
  };
}

/**
 * Finishes the run when every batch is final, once (a conditional write only the first
 * caller wins), and announces it.
 *
 * @returns the run's final progress when this call finished it.
 */
async function completeIfLast(
  message: BatchMessage,
  deps: BatchDependencies,
): Promise<FanOutProgress | undefined> {
  const { history, logger } = deps;
  const progress = fanOutProgress(message.batches, await history.runBatches(message.runId));
  if (progress.status === 'running') return undefined;
  const endedAt = deps.clock().toISOString();
  const won = await history.completeRun(message.runId, {
    status: progress.status,
    endedAt,
    counts: progress.counts,
    errorSummary: progress.errorSummary,
  });
  if (!won) return undefined;
  logger.info(`fan-out ${message.job} run ${progress.status}`, { progress });
  runOutcomeMetric(
    message.job,
    progress.status,
    deps.metricsFor?.(message.job) ?? deps.metrics ?? noMetrics,
  );
  const startedAt = (await history.getRun(message.runId).catch(() => undefined))?.startedAt;
  await deps.events
    ?.publishRunFinished({
      runId: message.runId,
      deployment: deps.config.deployment,
      job: message.job,
      trigger: 'schedule',
      schedule: message.schedule,
      slot: message.slot,
      dryRun: message.dryRun,
      status: progress.status,
      startedAt: startedAt ?? message.slot,
      endedAt,
      counts: progress.counts,
      errorSummary: progress.errorSummary,
    })
    .catch((error: unknown) =>
      logger.error('could not publish the run-finished event', {
        error: error instanceof Error ? error.message : String(error),
      }),
    );
  return progress;
}

function numericCounts(counts: object): Record<string, number> {
  return Object.fromEntries(
    Object.entries(counts).filter(
      (entry): entry is [string, number] => typeof entry[1] === 'number',
    ),
  );
}
