import { parseRetentionEvent } from '../lib/jobs/events.ts';
import { runRetentionJob } from '../lib/jobs/retentionJob.ts';
import { retentionCostLedger } from '../lib/runtime/costLedger.ts';
import { snapshotTierGateway } from '../lib/runtime/gateways.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { scheduledJobHandler } from '../lib/runtime/scheduledHandler.ts';
import { retainTagSchedules } from '../lib/runtime/tagRetention.ts';
import { withTagSchedules } from '../lib/runtime/tagSchedules.ts';

const runtime = createLambdaRuntime('retention', process.env);
const tiers = snapshotTierGateway(runtime);

/**
 * Retention for one schedule: `{ "schedule": "daily" }`, optionally `"dryRun": true`,
 * or a one-run `"maxDeletions": 500, "confirm": true`. A scheduled delivery (with
 * `scheduledTime`) runs once per slot. Returns the run report (the plan in a dry run);
 * throws when the run failed, the deletion cap included.
 */
// `{"schedule": "tag"}` goes to the schedules written in instances' tags (tagDispatch.ts).
export const handler = withTagSchedules(
  runtime,
  (rt, event, context) =>
    retainTagSchedules(rt, event, context, { tiers, costs: retentionCostLedger(runtime) }),
  scheduledJobHandler(runtime, parseRetentionEvent, (delivery) => {
    const { invocation, schedule } = delivery;
    const slot = invocation.scheduledTime ? delivery.slot('retention').slot : undefined;
    const claim = { job: 'retention', schedule: schedule.name, slot, historyRequired: true };
    return delivery.runOnce(claim, (run) =>
      runRetentionJob(
        {
          schedule: schedule.name,
          dryRun: run.dryRun,
          trigger: run.trigger,
          maxDeletions: invocation.maxDeletions,
          remainingMs: run.remainingMs,
          safetyMarginMs: run.safetyMarginMs,
        },
        { ec2: runtime.ec2, tiers, ...run.dependencies, costs: retentionCostLedger(runtime) },
      ),
    );
  }),
);
