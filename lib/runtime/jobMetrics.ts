import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MetricsPort } from '../jobs/ports.ts';

/**
 * Metrics published under another job's `job` dimension than the function's own: a
 * fan-out worker runs backup and retention batches, and the alarms watch `job=backup`
 * and `job=retention`. Each count is published at once as a single metric carrying the
 * function's default dimensions (service, deployment) with `job` replaced.
 *
 * @example
 * const backupMetrics = jobMetricsPort(runtime.metrics, 'backup', { service: 'snapkeeper', deployment: 'prod' });
 * backupMetrics.count('BackupRunsFailed', 1); // dimensions service, deployment, job=backup
 */
export function jobMetricsPort(
  metrics: Pick<Metrics, 'singleMetric'>,
  job: string,
  defaults: Readonly<{ service: string; deployment: string }>,
): MetricsPort {
  const single = (dimensions: Readonly<Record<string, string>> = {}) => {
    const metric = metrics.singleMetric();
    // Replaced whole rather than overwritten key by key: Powertools warns on every
    // overwritten dimension, which would log a warning for each of these metrics.
    metric.clearDefaultDimensions();
    metric.setDefaultDimensions({ ...defaults, job, ...dimensions });
    return metric;
  };
  return {
    count: (name, value) => single().addMetric(name, MetricUnit.Count, value),
    seconds: (name, value, dimensions) =>
      single(dimensions).addMetric(name, MetricUnit.Seconds, value),
  };
}
