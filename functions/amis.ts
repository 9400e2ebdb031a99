import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { createAutoScalingGateway } from '../lib/aws/AutoScalingGateway.ts';
import { Ec2ImageGateway } from '../lib/aws/Ec2ImageGateway.ts';
import { createRecycleBinGateway } from '../lib/aws/RecycleBinGateway.ts';
import { RunFailedError } from '../lib/domain/errors.ts';
import { type AmiReport, runAmiJob } from '../lib/jobs/amiJob.ts';
import { parseAmiEvent } from '../lib/jobs/events.ts';
import { runSweepJob, type SweepReport } from '../lib/jobs/sweepJob.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';

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
async function amis(event: unknown, _context: Context): Promise<AmiReport | SweepReport> {
  const invocation = parseAmiEvent(event, runtime.config.catalog);
  const common = {
    config: runtime.config,
    clock: runtime.clock,
    runId: runtime.newRunId(),
    logger: runtime.logger,
    metrics: runtime.metricsPort,
  };
  const report =
    invocation.kind === 'sweep'
      ? await runSweepJob(
          {
            dryRun: invocation.dryRun || runtime.config.dryRun,
            trigger: 'schedule',
            maxDeletions: invocation.maxDeletions,
          },
          { ...common, ec2: runtime.ec2, images },
        )
      : await runAmiJob(
          {
            schedule: invocation.schedule,
            scheduledTime: invocation.scheduledTime,
            dryRun: invocation.dryRun || runtime.config.dryRun,
            trigger: 'schedule',
            maxDeletions: invocation.maxDeletions,
          },
          { ...common, ec2: runtime.ec2, images, autoScaling, recycleBin },
        );
  if (report.status === 'failed') {
    throw new RunFailedError(
      report.job,
      report.runId,
      report.error?.message ?? `${report.job} run failed`,
      report,
    );
  }
  return report;
}

export const handler = middy(amis)
  .use(injectLambdaContext(runtime.logger, { resetKeys: true }))
  .use(logMetrics(runtime.metrics, { captureColdStartMetric: true }));
