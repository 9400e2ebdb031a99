import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { RunFailedError } from '../lib/domain/errors.ts';
import { parseRetentionEvent } from '../lib/jobs/events.ts';
import { type RetentionReport, runRetentionJob } from '../lib/jobs/retentionJob.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';

const runtime = createLambdaRuntime('retention', process.env);

/**
 * Retention for one schedule: `{ "schedule": "daily" }`, optionally `"dryRun": true`,
 * or a one-run `"maxDeletions": 500, "confirm": true`. Returns the run report (the plan
 * in a dry run); throws when the run failed, the deletion cap included.
 */
async function retention(event: unknown, _context: Context): Promise<RetentionReport> {
  const invocation = parseRetentionEvent(event, runtime.config.catalog);
  const report = await runRetentionJob(
    {
      schedule: invocation.schedule,
      dryRun: invocation.dryRun || runtime.config.dryRun,
      trigger: 'schedule',
      maxDeletions: invocation.maxDeletions,
    },
    {
      ec2: runtime.ec2,
      config: runtime.config,
      clock: runtime.clock,
      runId: runtime.newRunId(),
      logger: runtime.logger,
      metrics: runtime.metricsPort,
    },
  );
  if (report.status === 'failed') {
    throw new RunFailedError(
      'retention',
      report.runId,
      report.error?.message ?? 'retention failed',
      report,
    );
  }
  return report;
}

export const handler = middy(retention)
  .use(injectLambdaContext(runtime.logger, { resetKeys: true }))
  .use(logMetrics(runtime.metrics, { captureColdStartMetric: true }));
