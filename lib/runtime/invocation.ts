import type { Context } from 'aws-lambda';
import type { SnapkeeperConfig } from '../config/environment.ts';
import { deliveredSlot, jobTimetable, type ScheduleDefinition } from '../domain/schedules.ts';
import { RunFailedError, RunIncompleteError, SlotInProgressError } from '../jobs/errors.ts';
import type { MetricsPort } from '../jobs/ports.ts';
import type { RunOnceDependencies, RunReportLike, SlotOutcome } from '../jobs/slotRun.ts';
import type { LambdaRuntime } from './lambdaRuntime.ts';

/**
 * The dependencies of {@link runOnce} for a function's runtime.
 *
 * @example
 * await runOnce(params, slotRunDependencies(runtime, { historyRequired: false }), work);
 */
export function slotRunDependencies(
  runtime: LambdaRuntime,
  options: { readonly historyRequired: boolean },
): RunOnceDependencies {
  return {
    history: runtime.history,
    events: runtime.events,
    deployment: runtime.config.deployment,
    clock: runtime.clock,
    logger: runtime.logger,
    functionTimeoutMs: runtime.config.functionTimeoutMs,
    duplicateWaitMs: runtime.config.duplicateWaitMs,
    historyRequired: options.historyRequired,
  };
}

/**
 * Turns a slot outcome into the handler's answer: the report (or the first run's, for a
 * duplicate), or a thrown error for a failed run (so Lambda's error metric and failure
 * destination see it), for an incomplete one (so Lambda's retry resumes it), and for a
 * slot held by a live run (so Lambda's retry comes back: it takes the slot over if the
 * holder has died by then, or gets the holder's report if it finished).
 *
 * @throws {SlotInProgressError} when a live run holds the slot.
 * @example
 * return answer(await runOnce(...));
 */
export function answer<R extends RunReportLike>(
  outcome: SlotOutcome<R>,
  metrics?: MetricsPort,
): R | unknown {
  if (outcome.kind !== 'ran') metrics?.count('DuplicateDeliveries', 1);
  if (outcome.kind === 'in-progress') {
    throw new SlotInProgressError(outcome.message, outcome.heldBy);
  }
  if (outcome.kind === 'duplicate') return outcome.report;
  const { report } = outcome;
  if (report.status === 'failed') {
    throw new RunFailedError(
      report.job,
      report.runId,
      report.error?.message ?? `${report.job} run failed`,
      report,
    );
  }
  if (report.status === 'incomplete') {
    throw new RunIncompleteError(report.job, report.runId, report.remaining?.length ?? 0, report);
  }
  return report;
}

/**
 * The slot a scheduled delivery serves, held to the job's timetable (the retention cron
 * for retention): a `scheduledTime` ahead of the clock, or past its catch-up window
 * (one interval, or SLOT_CATCH_UP_SECONDS if longer), is rejected by name; an
 * off-schedule time maps to the fire time it belongs to.
 *
 * @throws {InvalidEventError} naming `scheduledTime`.
 * @example
 * const slot = scheduledSlot(runtime, schedule, invocation.scheduledTime, 'backup');
 */
export function scheduledSlot(
  runtime: Pick<LambdaRuntime, 'clock' | 'config'>,
  schedule: ScheduleDefinition,
  scheduledTime: Date | undefined,
  job: 'backup' | 'amis' | 'retention' | 'restore-test',
): string {
  return deliveredSlot(jobTimetable(schedule, job), scheduledTime, runtime.clock(), {
    catchUpMs: runtime.config.slotCatchUpMs,
  });
}

/**
 * What every job reads and records through, for the run `runId` (the console's and the
 * scheduled jobs' alike): the configuration, clock, logger, metrics, the action journal
 * and the run history as the creations' ledger.
 *
 * @example
 * runRetentionJob(params, { ec2: runtime.ec2, ...jobDependencies(runtime, runId) });
 */
export function jobDependencies(runtime: LambdaRuntime, runId: string) {
  return {
    config: runtime.config,
    clock: runtime.clock,
    runId,
    logger: runtime.logger,
    metrics: runtime.metricsPort,
    journal: runtime.journal,
    ledger: runtime.history,
  };
}

/**
 * The dry-run rule of every entry point, scheduled or console: a run plans only when
 * its event asks for it (`dryRun`) or the deployment's `DRY_RUN` is set.
 *
 * @example
 * dryRunOf(invocation.dryRun, runtime.config); // true under DRY_RUN=true, whatever the event
 */
export function dryRunOf(
  requested: boolean | undefined,
  config: Pick<SnapkeeperConfig, 'dryRun'>,
): boolean {
  return requested === true || config.dryRun;
}

/** Milliseconds left in the invocation, from the Lambda context. */
export function remainingTime(context: Context): () => number {
  return () => context.getRemainingTimeInMillis();
}
