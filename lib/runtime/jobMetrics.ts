import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MetricsPort } from '../jobs/ports.ts';
import type { LambdaRuntime } from './lambdaRuntime.ts';

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

/**
 * The metrics port of a fan-out function under another job's `job` dimension (a fan-out
 * run's backup or retention), with the function's service and deployment. Only the
 * fan-out functions use it, so it stays out of the other bundles.
 *
 * @example
 * planFanOut(params, { ...deps, metricsFor: jobMetricsFor(runtime) });
 */
export function jobMetricsFor(
  runtime: Pick<LambdaRuntime, 'metrics' | 'serviceName' | 'config'>,
): (job: string) => MetricsPort {
  const defaults = { service: runtime.serviceName, deployment: runtime.config.deployment };
  return (job) => jobMetricsPort(runtime.metrics, job, defaults);
}
