import type { Context } from 'aws-lambda';
import { createAutoScalingGateway } from '../lib/aws/AutoScalingGateway.ts';
import { Ec2ImageGateway } from '../lib/aws/Ec2ImageGateway.ts';
import { createRecycleBinGateway } from '../lib/aws/RecycleBinGateway.ts';
import { resolveSchedule, slotOf } from '../lib/domain/schedules.ts';
import { runAmiJob } from '../lib/jobs/amiJob.ts';
import { parseAmiEvent } from '../lib/jobs/events.ts';
import { runOnce } from '../lib/jobs/slotRun.ts';
import { runSweepJob } from '../lib/jobs/sweepJob.ts';
import { answer, remainingTime, slotRunDependencies } from '../lib/runtime/invocation.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { powertoolsHandler } from '../lib/runtime/powertoolsHandler.ts';

const runtime = createLambdaRuntime('amis', process.env);
const images = new Ec2ImageGateway(runtime.ec2.client, {
  tagAfterCreate: runtime.config.localTagAfterCreate,
});
const autoScaling = createAutoScalingGateway(runtime.config);
const recycleBin = runtime.config.recycleBinCheck
  ? createRecycleBinGateway(runtime.config)
  : undefined;

/**
 * AMIs: `{ "schedule": "daily", "scheduledTime": "..." }` creates the due AMIs, then
 * retires that schedule's AMIs per retention; `{ "sweep": true }` runs the orphan sweep.
 * Returns the run report; throws when the run failed.
 */
async function amis(event: unknown, context: Context): Promise<unknown> {
  const invocation = parseAmiEvent(event, runtime.config.catalog);
  const dryRun = invocation.dryRun || runtime.config.dryRun;
  const runId = runtime.newRunId();
  const common = {
    config: runtime.config,
    clock: runtime.clock,
    runId,
    logger: runtime.logger,
    metrics: runtime.metricsPort,
    journal: runtime.journal,
    ledger: runtime.history,
  };
  const dependencies = slotRunDependencies(runtime, { historyRequired: true });
  if (invocation.kind === 'sweep') {
    const outcome = await runOnce(
      { job: 'sweep', runId, trigger: 'schedule', dryRun },
      dependencies,
      (run) =>
        runSweepJob(
          { dryRun, trigger: run.trigger, maxDeletions: invocation.maxDeletions },
          { ...common, ec2: runtime.ec2, images },
        ),
    );
    return answer(outcome, runtime.metricsPort);
  }
  const schedule = resolveSchedule(runtime.config.catalog, invocation.schedule);
  const slot = slotOf(schedule, invocation.scheduledTime, runtime.clock());
  const outcome = await runOnce(
    { job: 'amis', runId, trigger: 'schedule', dryRun, schedule: schedule.name, slot },
    dependencies,
    (run) =>
      runAmiJob(
        {
          schedule: schedule.name,
          scheduledTime: new Date(slot),
          dryRun,
          trigger: run.trigger,
          maxDeletions: invocation.maxDeletions,
          remainingMs: remainingTime(context),
          safetyMarginMs: runtime.config.safetyMarginMs,
        },
        { ...common, ec2: runtime.ec2, images, autoScaling, recycleBin },
      ),
  );
  return answer(outcome, runtime.metricsPort);
}

export const handler = powertoolsHandler(runtime, amis);
