import type { Context } from 'aws-lambda';
import { createRateLimitedEc2Client } from '../lib/aws/clients.ts';
import { Ec2CopyGateway } from '../lib/aws/Ec2CopyGateway.ts';
import { Ec2Gateway } from '../lib/aws/Ec2Gateway.ts';
import { Ec2ImageGateway } from '../lib/aws/Ec2ImageGateway.ts';
import { type RegionGateways, runCopyJob } from '../lib/jobs/copyJob.ts';
import { parseCopyEvent } from '../lib/jobs/events.ts';
import { runOnce } from '../lib/jobs/slotRun.ts';
import { answer, slotRunDependencies } from '../lib/runtime/invocation.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { powertoolsHandler } from '../lib/runtime/powertoolsHandler.ts';

const runtime = createLambdaRuntime('copy', process.env);
const images = new Ec2ImageGateway(runtime.ec2.client, {
  tagAfterCreate: runtime.config.localTagAfterCreate,
});
const sharing = new Ec2CopyGateway(runtime.ec2.client);
const destinations = new Map<string, RegionGateways>();
const destination = (region: string): RegionGateways => {
  let gateways = destinations.get(region);
  if (!gateways) {
    // Each destination region has its own EC2 buckets.
    const client = createRateLimitedEc2Client(runtime.config, { region });
    gateways = {
      ec2: new Ec2Gateway(client),
      images: new Ec2ImageGateway(client, { tagAfterCreate: runtime.config.localTagAfterCreate }),
      copies: new Ec2CopyGateway(client),
    };
    destinations.set(region, gateways);
  }
  return gateways;
};

/**
 * Disaster recovery: an `EBS Snapshot Notification` copies what it names to the
 * instance's `snapkeeper:copy-to` regions; `{ "copy": true }` (scheduled) catches up,
 * copies AMIs, applies retention to the copies, shares, and reports public backups.
 */
async function copy(event: unknown, _context: Context): Promise<unknown> {
  const invocation = parseCopyEvent(event);
  if (invocation.ignore) return { status: 'ignored', reason: invocation.ignore };
  const dryRun = invocation.dryRun || runtime.config.dryRun;
  const runId = runtime.newRunId();
  const outcome = await runOnce(
    { job: 'copy', runId, trigger: 'schedule', dryRun },
    slotRunDependencies(runtime, { historyRequired: true }),
    (run) =>
      runCopyJob(
        { trigger: run.trigger, dryRun, snapshotIds: invocation.snapshotIds },
        {
          ec2: runtime.ec2,
          images,
          sharing,
          destination,
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

export const handler = powertoolsHandler(runtime, copy);
