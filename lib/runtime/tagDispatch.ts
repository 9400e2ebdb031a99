import type { Context } from 'aws-lambda';
import { RunFailedError } from '../jobs/errors.ts';
import {
  runTagDispatch,
  type TagDispatchDependencies,
  type TagDispatchReport,
} from '../jobs/tagScheduleDispatch.ts';
import { parseTagDispatchEvent } from '../jobs/tagScheduleEvents.ts';
import { dryRunOf, jobDependencies, remainingTime, slotRunDependencies } from './invocation.ts';
import type { LambdaRuntime } from './lambdaRuntime.ts';

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
  /** The function's own ports a backup run takes (Run Command, snapshot tiers), as its named schedules get them. */
  ports: Pick<TagDispatchDependencies['backup'], 'runCommand' | 'tiers'> = {},
): Promise<TagDispatchReport> {
  const invocation = parseTagDispatchEvent(event);
  // Each expression's run gets its own run id from the job; the rest is every job's.
  const { runId: _each, ...common } = jobDependencies(runtime, '');
  const dryRun = dryRunOf(invocation.dryRun, runtime.config);
  const report = await runTagDispatch(
    { ...invocation, dryRun },
    {
      backup: { ec2: runtime.ec2, ...ports, ...common },
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
