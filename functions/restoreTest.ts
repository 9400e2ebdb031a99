import type { Context } from 'aws-lambda';
import { Ec2RestoreGateway } from '../lib/aws/Ec2RestoreGateway.ts';
import { Ec2RestoreTestGateway } from '../lib/aws/Ec2RestoreTestGateway.ts';
import { deliveredSlot, jobTimetable, resolveSchedule } from '../lib/domain/schedules.ts';
import { parseRestoreTestEvent } from '../lib/jobs/restoreTestEvent.ts';
import { RESTORE_TEST_JOB, runRestoreTestJob } from '../lib/jobs/restoreTestJob.ts';
import { runOnce } from '../lib/jobs/slotRun.ts';
import { answer, remainingTime, slotRunDependencies } from '../lib/runtime/invocation.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { powertoolsHandler } from '../lib/runtime/powertoolsHandler.ts';

const runtime = createLambdaRuntime('restoreTest', process.env);
const tests = new Ec2RestoreTestGateway(runtime.ec2.client);
const instances = new Ec2RestoreGateway(runtime.ec2.client);

/**
 * A scheduled restore test of one schedule's sets: `{ "schedule": "daily",
 * "scheduledTime": "..." }` (optionally `"dryRun": true`), for a schedule with a
 * `restoreTests` option; once per slot of its timetable. Returns the run report; throws
 * when every test failed (the alarm watches `RestoreTestsFailed` in any case).
 */
async function restoreTest(event: unknown, context: Context): Promise<unknown> {
  const invocation = parseRestoreTestEvent(event, runtime.config.catalog);
  const schedule = resolveSchedule(runtime.config.catalog, invocation.schedule);
  const dryRun = invocation.dryRun || runtime.config.dryRun;
  const runId = runtime.newRunId();
  const slot = invocation.scheduledTime
    ? deliveredSlot(
        jobTimetable(schedule, 'restore-test'),
        invocation.scheduledTime,
        runtime.clock(),
        {
          catchUpMs: runtime.config.slotCatchUpMs,
        },
      )
    : undefined;
  const outcome = await runOnce(
    { job: RESTORE_TEST_JOB, runId, trigger: 'schedule', dryRun, schedule: schedule.name, slot },
    slotRunDependencies(runtime, { historyRequired: false }),
    () =>
      runRestoreTestJob(
        {
          schedule: schedule.name,
          options: invocation.options,
          dryRun,
          remainingMs: remainingTime(context),
        },
        {
          ec2: runtime.ec2,
          instances,
          tests,
          history: runtime.history,
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

export const handler = powertoolsHandler(runtime, restoreTest);
