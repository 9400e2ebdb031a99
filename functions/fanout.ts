import { assumeTargetRole } from '../lib/aws/targetRoles.ts';
import { planTargets } from '../lib/domain/fanOut.ts';
import { parseFanOutEvent } from '../lib/jobs/events.ts';
import { planFanOut } from '../lib/jobs/fanOutJob.ts';
import { requiredFanOutQueueGateway } from '../lib/runtime/gateways.ts';
import { jobMetricsFor } from '../lib/runtime/jobMetrics.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { scheduledJobHandler } from '../lib/runtime/scheduledHandler.ts';

const runtime = createLambdaRuntime('fanout', process.env, { reachAccount: assumeTargetRole });
const queue = requiredFanOutQueueGateway(runtime);
const metricsFor = jobMetricsFor(runtime);
const targets = planTargets(runtime.config.targetAccounts, runtime.config.targetRegions);

/**
 * Fan-out planner: `{ "job": "backup", "schedule": "daily", "scheduledTime": "..." }` →
 * the slot's work split per (account, region, batch) onto the queue, once per slot. The
 * run stays `running` until the workers finish every batch.
 */
export const handler = scheduledJobHandler(runtime, parseFanOutEvent, (delivery) => {
  const { job } = delivery.invocation;
  const { schedule, slot } = delivery.slot(job);
  return delivery.runOnce({ job, schedule, slot, historyRequired: true }, (run) =>
    planFanOut(
      { job, schedule, slot, dryRun: run.dryRun, trigger: run.trigger, resuming: run.resuming },
      {
        ...run.dependencies,
        targets,
        ec2For: (target) => runtime.clients.ec2(target),
        queue,
        history: runtime.history,
        metricsFor,
      },
    ),
  );
});
