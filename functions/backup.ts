import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { RunFailedError } from '../lib/domain/errors.ts';
import { type BackupReport, runBackupJob } from '../lib/jobs/backupJob.ts';
import { parseScheduledEvent } from '../lib/jobs/events.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';

const runtime = createLambdaRuntime('backup', process.env);

/**
 * Scheduled backup: `{ "schedule": "daily", "scheduledTime": "..." }` → one snapshot
 * set per opted-in instance. Returns the run report; throws when the run failed.
 */
async function backup(event: unknown, _context: Context): Promise<BackupReport> {
  const invocation = parseScheduledEvent(event, runtime.config.catalog);
  const report = await runBackupJob(
    {
      schedule: invocation.schedule,
      scheduledTime: invocation.scheduledTime,
      dryRun: invocation.dryRun || runtime.config.dryRun,
      trigger: 'schedule',
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
      'backup',
      report.runId,
      report.error?.message ?? 'nothing could be backed up',
      report,
    );
  }
  return report;
}

export const handler = middy(backup)
  .use(injectLambdaContext(runtime.logger, { resetKeys: true }))
  .use(logMetrics(runtime.metrics, { captureColdStartMetric: true }));
