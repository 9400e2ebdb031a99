import type { Context } from 'aws-lambda';
import { RunFailedError } from '../jobs/errors.ts';
import {
  isTagDispatchEvent,
  parseTagDispatchEvent,
  runTagDispatch,
  type TagDispatchReport,
} from '../jobs/tagScheduleDispatch.ts';
import { runTagRetention, type TagRetentionReport } from '../jobs/tagScheduleRetention.ts';
import { dryRunOf, remainingTime, slotRunDependencies } from './invocation.ts';
import type { LambdaRuntime } from './lambdaRuntime.ts';
import { powertoolsHandler } from './powertoolsHandler.ts';

/**
 * A function's handler that also answers `{"schedule": "tag"}`: that event goes to
 * `tagJob` (the dispatcher, or the retention of tag lineages) in the same Powertools
 * wrapper; every other event to the function's own handler.
 *
 * @example
 * export const handler = withTagSchedules(runtime, dispatchTagSchedules, scheduledJobHandler(...));
 */
export function withTagSchedules<R>(
  runtime: LambdaRuntime,
  tagJob: (runtime: LambdaRuntime, event: unknown, context: Context) => Promise<unknown>,
  handler: (event: unknown, context: Context) => Promise<R>,
): (event: unknown, context: Context) => Promise<unknown> {
  const tag = powertoolsHandler(runtime, (event: unknown, context: Context) =>
    tagJob(runtime, event, context),
  );
  return (event, context) =>
    isTagDispatchEvent(event) ? tag(event, context) : handler(event, context);
}

/**
 * The backup function's answer to `{"schedule": "tag", "scheduledTime": ...}`: one
 * dispatch of the schedules written in instances' `snapkeeper:backup` tags, each
 * expression's slot a backup run of its own through the exactly-once claim. Returns the
 * dispatch report; throws when every run of the dispatch failed (or the fleet could not
 * be read), so that Lambda's error metric and alarm see it.
 *
 * @throws {InvalidEventError} for a malformed event.
 * @example
 * if (isTagDispatchEvent(event)) return dispatchTagSchedules(runtime, event, context);
 */
export async function dispatchTagSchedules(
  runtime: LambdaRuntime,
  event: unknown,
  context: Context,
): Promise<TagDispatchReport> {
  const invocation = parseTagDispatchEvent(event);
  const dryRun = dryRunOf(invocation.dryRun, runtime.config);
  const report = await runTagDispatch(
    { ...invocation, dryRun },
    {
      backup: {
        ec2: runtime.ec2,
        config: runtime.config,
        clock: runtime.clock,
        logger: runtime.logger,
        metrics: runtime.metricsPort,
        journal: runtime.journal,
      },
      slotRun: slotRunDependencies(runtime, { historyRequired: false }),
      newRunId: runtime.newRunId,
      logger: runtime.logger,
      metrics: runtime.metricsPort,
      remainingMs: remainingTime(context),
      safetyMarginMs: runtime.config.safetyMarginMs,
    },
  );
  if (report.status === 'failed') {
    const reason =
      report.error?.message ?? `${report.counts.failed} tag schedule run(s) failed, none succeeded`;
    throw new RunFailedError('tag-dispatch', report.dispatchedAt, reason, report);
  }
  return report;
}

/**
 * The retention function's answer to `{"schedule": "tag", "scheduledTime": ...}`: one
 * retention run per expression lineage of this deployment (see tagScheduleRetention.ts).
 * Throws when every run failed, so that Lambda's error metric and alarm see it.
 *
 * @throws {InvalidEventError} for a malformed event.
 * @example
 * if (isTagDispatchEvent(event)) return retainTagSchedules(runtime, event, context);
 */
export async function retainTagSchedules(
  runtime: LambdaRuntime,
  event: unknown,
  context: Context,
): Promise<TagRetentionReport> {
  const invocation = parseTagDispatchEvent(event);
  const dryRun = dryRunOf(invocation.dryRun, runtime.config);
  const report = await runTagRetention(
    { ...invocation, dryRun },
    {
      retention: {
        ec2: runtime.ec2,
        config: runtime.config,
        clock: runtime.clock,
        logger: runtime.logger,
        metrics: runtime.metricsPort,
        journal: runtime.journal,
        ledger: runtime.history,
      },
      slotRun: slotRunDependencies(runtime, { historyRequired: true }),
      newRunId: runtime.newRunId,
      logger: runtime.logger,
      remainingMs: remainingTime(context),
      safetyMarginMs: runtime.config.safetyMarginMs,
    },
  );
  if (report.status === 'failed') {
    const reason = report.error?.message ?? `${report.counts.failed} tag retention run(s) failed`;
    throw new RunFailedError('tag-retention', report.deployment, reason, report);
  }
  return report;
}
