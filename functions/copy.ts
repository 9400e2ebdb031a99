import { runCopyJob } from '../lib/jobs/copyJob.ts';
import { parseCopyEvent } from '../lib/jobs/events.ts';
import { copyGateway, destinationGateways, imageGateway } from '../lib/runtime/gateways.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { jobHandler } from '../lib/runtime/scheduledHandler.ts';

const runtime = createLambdaRuntime('copy', process.env);
const images = imageGateway(runtime);
const sharing = copyGateway(runtime);
// Each destination region has its own EC2 client and buckets, from the runtime's cache.
const destination = destinationGateways(runtime);

/**
 * Disaster recovery: an `EBS Snapshot Notification` copies what it names to the
 * instance's `snapkeeper:copy-to` regions; `{ "copy": true }` (scheduled) catches up,
 * copies AMIs, applies retention to the copies, shares, and reports public backups.
 */
export const handler = jobHandler(runtime, parseCopyEvent, async (delivery) => {
  const { invocation } = delivery;
  if (invocation.ignore) return { status: 'ignored', reason: invocation.ignore };
  return delivery.runOnce({ job: 'copy', historyRequired: true }, (run) =>
    runCopyJob(
      { trigger: run.trigger, dryRun: run.dryRun, snapshotIds: invocation.snapshotIds },
      { ...run.dependencies, ec2: runtime.ec2, images, sharing, destination },
    ),
  );
});
