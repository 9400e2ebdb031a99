import type { SnapkeeperConfig } from '../config/environment.ts';
import {
  type BatchCheckpoint,
  type BatchMessage,
  type BatchStatus,
  type FanOutJob,
  type FanOutProgress,
  fanOutProgress,
  type Target,
} from '../domain/fanOut.ts';
import { type BackupReport, runBackupJob } from './backupJob.ts';
import { runOutcomeMetric } from './fanOutMetrics.ts';
import { followRunRateShare } from './fanOutRateShare.ts';
import type { CreationLedger } from './ownership.ts';
import type {
  ActionJournal,
  Ec2Port,
  LoggerPort,
  MetricsPort,
  RateShareControl,
  RunCommandPort,
  RunHistoryPort,
  SnapshotTiersPort,
} from './ports.ts';
import { type RetentionReport, runRetentionJob } from './retentionJob.ts';
import { noMetrics } from './runReport.ts';
import { problemSummary, type RunEventsPort } from './slotRun.ts';

/** How long a batch running in another worker waits before it is looked at again. */
export const BUSY_RECHECK_SECONDS = 300;

export { BatchRetryError } from './errors.ts';

import { BatchRetryError } from './errors.ts';

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
    RunHistoryPort,
    'claimBatch' | 'finishBatch' | 'runBatches' | 'completeRun' | 'renewLease' | 'getRun'
  >;
  readonly ec2For: (target: Target, rateShare?: number) => Ec2Port;
  /**
   * The share control of the client `ec2For` gives for the same target and share (issue
   * 19): the batch follows its run's unfinished batches of its target
   * (`tailRateShare`). None: the batch keeps its share.
   */
  readonly rateShareFor?: ((target: Target, rateShare?: number) => RateShareControl) | undefined;
  /** How often the share is read again (`SHARE_REFRESH_MS` when absent). */
  readonly shareRefreshMs?: number | undefined;
  /** Run Command for a target's consistent sets (issue 21); none: they fall back, reported. */
  readonly runCommandFor?: ((target: Target) => RunCommandPort | undefined) | undefined;
  /**
   * Snapshot locks and tiers of a batch's own account and region (issue 21): the backup
   * batch locks what it made, the retention batch re-checks locks and archives. None:
   * nothing is locked, re-checked or archived (the worker always gives one).
   */
  readonly tiersFor?:
    | ((target: Target, rateShare?: number) => SnapshotTiersPort | undefined)
    | undefined;
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
  if (claim.kind !== 'claimed') return answerUnclaimed(message, claim, deps);
  const attempt = claim.checkpoint.attempts;
  await history.renewLease(message.runId, now).catch(() => undefined);
  let report: BackupReport | RetentionReport;
  let stopFollowing = (): void => undefined;
  try {
    // Inside the try: a target that cannot be reached fails the batch as ec2For would.
    stopFollowing = followShare(message, deps);
    report = await runBatchJob(message, attempt, deps);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return finishBatch(message, attempt, 'failed', true, {}, reason, deps, metrics);
  } finally {
    stopFollowing();
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

/** Follows the run's unfinished batches of the target, when the worker gave a share control. */
function followShare(message: BatchMessage, deps: BatchDependencies): () => void {
  const control = deps.rateShareFor?.(message.target, message.rateShare);
  if (!control) return () => undefined;
  return followRunRateShare(message, {
    history: deps.history,
    control,
    baseShare: message.rateShare ?? deps.config.ec2RateShare,
    logger: deps.logger,
    refreshMs: deps.shareRefreshMs,
  });
}

/**
 * A batch this worker did not claim: one already final is a duplicate delivery (nothing
 * is done again, but the run is finished if the first delivery died before it could);
 * one running in another worker is looked at again later in a new message, rather than
 * use up one of this message's deliveries (the queue would dead-letter a healthy batch).
 *
 * @throws {BatchRetryError} when the batch is busy and cannot be requeued.
 */
async function answerUnclaimed(
  message: BatchMessage,
  claim: { readonly kind: 'final' | 'busy'; readonly checkpoint: BatchCheckpoint },
  deps: BatchDependencies,
): Promise<BatchOutcome> {
  const { logger } = deps;
  const answer = { runId: message.runId, batchId: message.batchId };
  if (claim.kind === 'final') {
    logger.info('duplicate delivery of a finished batch: nothing done again', {
      batchId: message.batchId,
      status: claim.checkpoint.status,
    });
    const run = await completeIfLast(message, deps);
    return {
      ...answer,
      status: 'duplicate',
      attempt: claim.checkpoint.attempts,
      ...(run ? { run } : {}),
    };
  }
  if (!deps.requeue) throw new BatchRetryError(message.batchId, 'another worker is running it now');
  await deps.requeue(message, BUSY_RECHECK_SECONDS);
  logger.info('batch is running in another worker: checking again later', {
    batchId: message.batchId,
    delaySeconds: BUSY_RECHECK_SECONDS,
  });
  return { ...answer, status: 'running', attempt: claim.checkpoint.attempts };
}

/**
 * Runs the batch's job under the fan-out's run id. A second attempt (or a batch of a run
 * that took its slot over) is a retry that first reconciles by the slot tag. DRY_RUN=true
 * on the worker plans only, as at every other entry point, whatever the message says (one
 * sent before DRY_RUN was set, a retry, a requeued batch).
 */
async function runBatchJob(
  message: BatchMessage,
  attempt: number,
  deps: BatchDependencies,
): Promise<BackupReport | RetentionReport> {
  const { config, logger } = deps;
  const resuming = message.reconcile === true || attempt > 1;
  const dryRun = message.dryRun || config.dryRun;
  if (dryRun && !message.dryRun) {
    logger.warn('DRY_RUN is set: the batch plans only, although its message asked for a live run', {
      batchId: message.batchId,
    });
  }
  const tiers = deps.tiersFor?.(message.target, message.rateShare);
  const common = {
    ec2: deps.ec2For(message.target, message.rateShare),
    ...(tiers ? { tiers } : {}),
    config,
    clock: deps.clock,
    runId: message.runId,
    logger,
    metrics: batchMetrics(deps.metricsFor?.(message.job) ?? deps.metrics ?? noMetrics),
    ...(deps.journal ? { journal: deps.journal } : {}),
  };
  const run = {
    dryRun,
    trigger: resuming ? ('retry' as const) : ('schedule' as const),
    remainingMs: deps.remainingMs,
    safetyMarginMs: config.safetyMarginMs,
  };
  if (message.job !== 'backup') {
    return runRetentionJob(
      { schedule: message.schedule, ...run },
      { ...common, ledger: deps.ledger },
    );
  }
  return runBackupJob(
    {
      schedule: message.schedule,
      scheduledTime: new Date(message.slot),
      resuming,
      batch: {
        instanceIds: message.instanceIds ?? [],
        ...(message.volumeTags ? { volumeTags: message.volumeTags } : {}),
      },
      ...run,
    },
    { ...common, runCommand: deps.runCommandFor?.(message.target) },
  );
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

/** A batch is not a run: its job's run-outcome counts are left to the run's end. */
function batchMetrics(metrics: MetricsPort): MetricsPort {
  return {
    count: (name, value) => {
      if (!/Runs(Failed|Succeeded)$/.test(name)) metrics.count(name, value);
    },
    ...(metrics.seconds ? { seconds: metrics.seconds.bind(metrics) } : {}),
  };
}
