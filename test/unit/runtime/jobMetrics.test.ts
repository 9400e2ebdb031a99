import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { jobMetricsFor, jobMetricsPort } from '../../../lib/runtime/jobMetrics.ts';

/** The worker's default dimensions, as the runtime passes them. */
const DEFAULTS = { service: 'snapkeeper', deployment: 'prod' };

/** The worker's metrics: each single metric it makes is kept to read its EMF back. */
function workerMetrics() {
  const made: Metrics[] = [];
  const make = () =>
    new Metrics({
      namespace: 'Snapkeeper',
      serviceName: 'snapkeeper',
      defaultDimensions: { deployment: 'prod', job: 'worker' },
    });
  return {
    made,
    metrics: {
      singleMetric: () => {
        const metric = make();
        made.push(metric);
        return metric;
      },
    },
  };
}

/** The dimensions and values of a metric as CloudWatch would read its EMF. */
function emf(metric: Metrics) {
  const output = metric.serializeMetrics() as unknown as Record<string, unknown> & {
    _aws: { CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string }[] }[] };
  };
  const [directive] = output._aws.CloudWatchMetrics;
  const dimensions = Object.fromEntries(
    (directive?.Dimensions[0] ?? []).map((name) => [name, output[name]]),
  );
  const values = Object.fromEntries(
    (directive?.Metrics ?? []).map((m) => [m.Name, output[m.Name]]),
  );
  return { dimensions, values };
}

describe('Function: jobMetricsPort', () => {
  it("publishes a count under the job's own dimension, keeping service and deployment", () => {
    // Prepare
    const { made, metrics } = workerMetrics();

    // Act
    jobMetricsPort(metrics, 'backup', DEFAULTS).count('BackupRunsFailed', 1);

    // Assess
    expect(made).toHaveLength(1);
    expect(emf(made[0] as Metrics)).toEqual({
      dimensions: { service: 'snapkeeper', deployment: 'prod', job: 'backup' },
      values: { BackupRunsFailed: 1 },
    });
  });

  it('publishes a duration with its extra dimensions too', () => {
    // Prepare
    const { made, metrics } = workerMetrics();

    // Act
    jobMetricsPort(metrics, 'retention', DEFAULTS).seconds?.('RecoveryPointAge', 60, {
      schedule: 'daily',
    });

    // Assess
    expect(emf(made[0] as Metrics).dimensions).toEqual({
      service: 'snapkeeper',
      deployment: 'prod',
      job: 'retention',
      schedule: 'daily',
    });
  });

  it('replaces the job dimension without the warning Powertools logs for an overwritten one', () => {
    // Prepare: the worker's real Metrics, whose single metrics share its logger.
    const warnings: string[] = [];
    const quiet = () => undefined;
    const worker = new Metrics({
      namespace: 'Snapkeeper',
      serviceName: 'snapkeeper',
      defaultDimensions: { deployment: 'prod', job: 'worker' },
      logger: {
        debug: quiet,
        info: quiet,
        error: quiet,
        warn: (m: unknown) => void warnings.push(String(m)),
      },
    });

    // Act
    jobMetricsPort(worker, 'backup', DEFAULTS).count('BackupRunsFailed', 1);

    // Assess
    expect(warnings.filter((w) => /already been added/.test(w))).toEqual([]);
  });
});

describe('Function: jobMetricsFor', () => {
  it("gives a fan-out function's runtime the port of each job, with its service and deployment", () => {
    // Prepare
    const { made, metrics } = workerMetrics();
    const metricsFor = jobMetricsFor({
      metrics: metrics as unknown as Metrics,
      serviceName: 'snapkeeper',
      config: { deployment: 'prod' } as Parameters<typeof jobMetricsFor>[0]['config'],
    });

    // Act
    metricsFor('retention').count('RetentionRunsFailed', 1);

    // Assess
    const [metric] = made;
    expect(metric && emf(metric)).toEqual({
      dimensions: { service: 'snapkeeper', deployment: 'prod', job: 'retention' },
      values: { RetentionRunsFailed: 1 },
    });
  });
});
