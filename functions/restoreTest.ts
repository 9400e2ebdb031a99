import { parseRestoreTestEvent } from '../lib/jobs/restoreTestEvent.ts';
import { RESTORE_TEST_JOB, runRestoreTestJob } from '../lib/jobs/restoreTestJob.ts';
import { restoreGateway, restoreTestGateway } from '../lib/runtime/gateways.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { scheduledJobHandler } from '../lib/runtime/scheduledHandler.ts';

const runtime = createLambdaRuntime('restoreTest', process.env);

/**
 * A scheduled restore test of one schedule's sets: `{ "schedule": "weekly",
 * "scheduledTime": "..." }` (optionally `"dryRun": true`), for a schedule with a
 * `restoreTests` option; once per slot of its timetable (`restoreTests.cron`, else the
 * retention cron). Returns the run report; throws when every test failed (the alarm
 * watches `RestoreTestsFailed` in any case).
 */
export const handler = scheduledJobHandler(runtime, parseRestoreTestEvent, (delivery) => {
  const { invocation, schedule } = delivery;
  const slot = invocation.scheduledTime ? delivery.slot('restore-test').slot : undefined;
  const claim = { job: RESTORE_TEST_JOB, schedule: schedule.name, slot, historyRequired: false };
  return delivery.runOnce(claim, (run) =>
    runRestoreTestJob(
      {
        schedule: schedule.name,
        options: invocation.options,
        dryRun: run.dryRun,
        remainingMs: run.remainingMs,
      },
      {
        ...run.dependencies,
        ec2: runtime.ec2,
        instances: restoreGateway(runtime),
        tests: restoreTestGateway(runtime),
        history: runtime.history,
      },
    ),
  );
});
