import { runAmiJob } from '../lib/jobs/amiJob.ts';
import { parseAmiEvent } from '../lib/jobs/events.ts';
import { runSweepJob } from '../lib/jobs/sweepJob.ts';
import { autoScalingGateway, imageGateway, recycleBinGateway } from '../lib/runtime/gateways.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { scheduledJobHandler } from '../lib/runtime/scheduledHandler.ts';

const runtime = createLambdaRuntime('amis', process.env);
const gateways = {
  ec2: runtime.ec2,
  images: imageGateway(runtime),
  autoScaling: autoScalingGateway(runtime),
  recycleBin: recycleBinGateway(runtime),
};

/**
 * AMIs: `{ "schedule": "daily", "scheduledTime": "..." }` creates the due AMIs, then
 * retires that schedule's AMIs per retention; `{ "sweep": true }` runs the orphan sweep.
 * Returns the run report; throws when the run failed.
 */
export const handler = scheduledJobHandler(runtime, parseAmiEvent, (delivery) => {
  const { invocation } = delivery;
  const { maxDeletions } = invocation;
  if (invocation.kind === 'sweep') {
    return delivery.runOnce({ job: 'sweep', historyRequired: true }, (run) =>
      runSweepJob(
        { dryRun: run.dryRun, trigger: run.trigger, maxDeletions },
        { ...run.dependencies, ec2: gateways.ec2, images: gateways.images },
      ),
    );
  }
  const { schedule, slot } = delivery.slot('amis');
  return delivery.runOnce({ job: 'amis', schedule, slot, historyRequired: true }, (run) =>
    runAmiJob(
      {
        schedule,
        scheduledTime: new Date(slot),
        dryRun: run.dryRun,
        trigger: run.trigger,
        maxDeletions,
        remainingMs: run.remainingMs,
        safetyMarginMs: run.safetyMarginMs,
      },
      { ...run.dependencies, ...gateways },
    ),
  );
});
