import type { FanOutJob } from '../domain/fanOut.ts';
import type { MetricsPort } from './ports.ts';

// What the fan-out planner and its workers share: a fan-out run counts its outcome as
// the job's own run would.

/**
 * Counts a fan-out run's outcome as the job's own run would (`BackupRunsFailed`,
 * `RetentionRunsSucceeded`, ...), once per run, through the job's metrics: the failure
 * alarms watch `job=backup` and `job=retention`, not the planner's or the worker's.
 *
 * @example
 * runOutcomeMetric('backup', 'failed', metrics); // BackupRunsFailed 1
 */
export function runOutcomeMetric(job: FanOutJob, status: string, metrics: MetricsPort): void {
  const prefix = job === 'backup' ? 'Backup' : 'Retention';
  metrics.count(`${prefix}Runs${status === 'failed' ? 'Failed' : 'Succeeded'}`, 1);
}
