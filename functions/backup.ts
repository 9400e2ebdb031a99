import type { Context } from 'aws-lambda';
import { resolveSchedule } from '../lib/domain/schedules.ts';
import { runBackupJob } from '../lib/jobs/backupJob.ts';
import { parseScheduledEvent } from '../lib/jobs/events.ts';
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
import { dispatchTagSchedules } from '../lib/runtime/tagDispatch.ts';

const runtime = createLambdaRuntime('backup', process.env);

/**
 * Scheduled backup: `{ "schedule": "daily", "scheduledTime": "..." }` → one snapshot
 * set per opted-in instance, once per slot. Returns the run report (the first run's for
 * a duplicate delivery); throws when the run failed, or stopped short of the deadline
 * (Lambda's retry then resumes it).
 */
async function backup(event: unknown, context: Context): Promise<unknown> {
  // `{"schedule": "tag"}`: the dispatcher of the schedules written in instances' tags.
  if (isTagDispatchEvent(event)) return dispatchTagSchedules(runtime, event, context);
  const invocation = parseScheduledEvent(event, runtime.config.catalog);
  const schedule = resolveSchedule(runtime.config.catalog, invocation.schedule);
  const dryRun = invocation.dryRun || runtime.config.dryRun;
  const runId = runtime.newRunId();
  const slot = scheduledSlot(runtime, schedule, invocation.scheduledTime, 'backup');
  const outcome = await runOnce(
    { job: 'backup', runId, trigger: 'schedule', dryRun, schedule: schedule.name, slot },
    slotRunDependencies(runtime, { historyRequired: false }),
    (run) =>
      runBackupJob(
        {
          schedule: schedule.name,
          scheduledTime: new Date(slot),
          dryRun,
          trigger: run.trigger,
          resuming: run.resuming,
          historyUnavailable: run.historyUnavailable,
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
        },
      ),
  );
  return answer(outcome, runtime.metricsPort);
}

export const handler = powertoolsHandler(runtime, backup);
