import { runBackupJob } from '../lib/jobs/backupJob.ts';
import { parseScheduledEvent } from '../lib/jobs/events.ts';
import { runCommandGateway, snapshotTierGateway } from '../lib/runtime/gateways.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { scheduledJobHandler } from '../lib/runtime/scheduledHandler.ts';
import { dispatchTagSchedules } from '../lib/runtime/tagDispatch.ts';
import { withTagSchedules } from '../lib/runtime/tagSchedules.ts';

const runtime = createLambdaRuntime('backup', process.env);
// Pre/post scripts of application-consistent sets (snapkeeper:consistency).
const runCommand = runCommandGateway(runtime);
const tiers = snapshotTierGateway(runtime);

/**
 * Scheduled backup: `{ "schedule": "daily", "scheduledTime": "..." }` → one snapshot
 * set per opted-in instance, once per slot. Returns the run report (the first run's for
 * a duplicate delivery); throws when the run failed, or stopped short of the deadline
 * (Lambda's retry then resumes it).
 */
// `{"schedule": "tag"}` goes to the schedules written in instances' tags (tagDispatch.ts).
export const handler = withTagSchedules(
  runtime,
  (rt, event, context) => dispatchTagSchedules(rt, event, context, { runCommand, tiers }),
  scheduledJobHandler(runtime, parseScheduledEvent, (delivery) => {
    const { schedule, slot } = delivery.slot('backup');
    return delivery.runOnce({ job: 'backup', schedule, slot, historyRequired: false }, (run) =>
      runBackupJob(
        {
          schedule,
          scheduledTime: new Date(slot),
          dryRun: run.dryRun,
          trigger: run.trigger,
          resuming: run.resuming,
          historyUnavailable: run.historyUnavailable,
          remainingMs: run.remainingMs,
          safetyMarginMs: run.safetyMarginMs,
        },
        { ec2: runtime.ec2, runCommand, tiers, ...run.dependencies },
      ),
    );
  }),
);
