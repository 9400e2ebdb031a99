import type { Context } from 'aws-lambda';
import { resolveSchedule } from '../lib/domain/schedules.ts';
import { parseRetentionEvent } from '../lib/jobs/events.ts';
import { runRetentionJob } from '../lib/jobs/retentionJob.ts';
import { runOnce } from '../lib/jobs/slotRun.ts';
import { isTagDispatchEvent } from '../lib/jobs/tagScheduleDispatch.ts';
import {
  answer,
  remainingTime,
  scheduledSlot,
  slotRunDependencies,
} from '../lib/runtime/invocation.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { powertoolsHandler } from '../lib/runtime/powertoolsHandler.ts';
import { retainTagSchedules } from '../lib/runtime/tagDispatch.ts';

const runtime = createLambdaRuntime('retention', process.env);

/**
 * Retention for one schedule: `{ "schedule": "daily" }`, optionally `"dryRun": true`,
 * or a one-run `"maxDeletions": 500, "confirm": true`. A scheduled delivery (with
 * `scheduledTime`) runs once per slot. Returns the run report (the plan in a dry run);
 * throws when the run failed, the deletion cap included.
 */
async function retention(event: unknown, context: Context): Promise<unknown> {
  // `{"schedule": "tag"}`: retention of every expression lineage (schedules from tags).
  if (isTagDispatchEvent(event)) return retainTagSchedules(runtime, event, context);
  const invocation = parseRetentionEvent(event, runtime.config.catalog);
  const schedule = resolveSchedule(runtime.config.catalog, invocation.schedule);
  const dryRun = invocation.dryRun || runtime.config.dryRun;
  const runId = runtime.newRunId();
  const slot = invocation.scheduledTime
    ? scheduledSlot(runtime, schedule, invocation.scheduledTime, 'retention')
    : undefined;
  const outcome = await runOnce(
    { job: 'retention', runId, trigger: 'schedule', dryRun, schedule: schedule.name, slot },
    slotRunDependencies(runtime, { historyRequired: true }),
    (run) =>
      runRetentionJob(
        {
          schedule: schedule.name,
          dryRun,
          trigger: run.trigger,
          maxDeletions: invocation.maxDeletions,
          remainingMs: remainingTime(context),
          safetyMarginMs: runtime.config.safetyMarginMs,
        },
        {
          ec2: runtime.ec2,
          config: runtime.config,
          clock: runtime.clock,
          runId,
          logger: runtime.logger,
          metrics: runtime.metricsPort,
          journal: runtime.journal,
          ledger: runtime.history,
        },
      ),
  );
  return answer(outcome, runtime.metricsPort);
}

export const handler = powertoolsHandler(runtime, retention);
