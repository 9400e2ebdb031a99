import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MetricsPort } from '../jobs/ports.ts';

/**
 * Metrics published under another job's `job` dimension than the function's own: a
 * fan-out worker runs backup and retention batches, and the alarms watch `job=backup`
 * and `job=retention`. Each count is published at once as a single metric carrying the
 * function's default dimensions (service, deployment) with `job` replaced.
 *
 * @example
 * const backupMetrics = jobMetricsPort(runtime.metrics, 'backup');
 * backupMetrics.count('BackupRunsFailed', 1); // dimensions service, deployment, job=backup
 */
export function jobMetricsPort(metrics: Pick<Metrics, 'singleMetric'>, job: string): MetricsPort {
  const single = (dimensions: Readonly<Record<string, string>> = {}) => {
    const metric = metrics.singleMetric();
    metric.setDefaultDimensions({ job, ...dimensions });
    return metric;
  };
  return {
    count: (name, value) => single().addMetric(name, MetricUnit.Count, value),
    seconds: (name, value, dimensions) =>
      single(dimensions).addMetric(name, MetricUnit.Seconds, value),
  };
}
