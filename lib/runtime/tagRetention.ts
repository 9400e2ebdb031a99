import type { Context } from 'aws-lambda';
import { RunFailedError } from '../jobs/errors.ts';
import { parseTagDispatchEvent } from '../jobs/tagScheduleEvents.ts';
import {
  runTagRetention,
  type TagRetentionDependencies,
  type TagRetentionReport,
} from '../jobs/tagScheduleRetention.ts';
import { dryRunOf, jobDependencies, remainingTime, slotRunDependencies } from './invocation.ts';
import type { LambdaRuntime } from './lambdaRuntime.ts';

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
  /** The function's own ports a retention run takes (snapshot tiers, the cost ledger), as its named schedules get them. */
  ports: Pick<TagRetentionDependencies['retention'], 'tiers' | 'costs'> = {},
): Promise<TagRetentionReport> {
  const invocation = parseTagDispatchEvent(event);
  // Each expression's run gets its own run id from the job; the rest is every job's.
  const { runId: _each, ...common } = jobDependencies(runtime, '');
  const dryRun = dryRunOf(invocation.dryRun, runtime.config);
  const report = await runTagRetention(
    { ...invocation, dryRun },
    {
      retention: { ec2: runtime.ec2, ...ports, ...common },
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
