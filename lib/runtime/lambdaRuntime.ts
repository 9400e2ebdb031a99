import { randomBytes } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { Ec2Gateway } from '../aws/Ec2Gateway.ts';
import { createRunEventsGateway } from '../aws/RunEventsGateway.ts';
import { createRunHistoryGateway, type RunHistoryGateway } from '../aws/RunHistoryGateway.ts';
import type { ReachAccount } from '../aws/targetRoles.ts';
import { loadConfig, type SnapkeeperConfig } from '../config/environment.ts';
import { HistoryPipeline } from '../jobs/historyPipeline.ts';
import type { ActionJournal, MetricsPort } from '../jobs/ports.ts';
import { logJournal, newRunId } from '../jobs/runReport.ts';
import type { RunEventsPort } from '../jobs/slotRun.ts';
import { type AwsClients, createAwsClients } from './awsClients.ts';

/**
 * Everything a handler needs, built once per Lambda container (cold start): the
 * validated configuration, the AWS gateways and Powertools' logger and metrics.
 * A bad configuration throws here, naming the variable, before any event is handled.
 */
export interface LambdaRuntime {
  /** The function this runtime belongs to (backup, retention, ...). */
  readonly functionName: string;
  /** The service name of logs, metrics and traces (`POWERTOOLS_SERVICE_NAME`). */
  readonly serviceName: string;
  readonly config: SnapkeeperConfig;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** X-Ray tracing of the handler and every AWS client (off outside Lambda). */
  readonly tracer: Tracer;
  /**
   * The one cache of the function's AWS clients and gateways (key: account and region),
   * each EC2 client rate-limited and traced; `ec2`, `ec2In`, a copy's destinations and a
   * fan-out's targets all come from it (see {@link createAwsClients}).
   */
  readonly clients: AwsClients;
  /** This account's EC2 gateway in the function's region. */
  readonly ec2: Ec2Gateway;
  /** This account's EC2 gateway in another region (its own rate limiter), built once. */
  readonly ec2In: (region: string) => Ec2Gateway;
  /** Adapts Powertools metrics to the jobs' metrics port. */
  readonly metricsPort: MetricsPort;
  readonly clock: () => Date;
  /** A new run id, also added to every later log line of the invocation. */
  readonly newRunId: () => string;
  /** The run-history table, or a stand-in that fails every write when none is configured. */
  readonly history: RunHistoryGateway;
  /** Records destructive actions in the history (and the log) before and after each call. */
  readonly journal: ActionJournal;
  readonly events?: RunEventsPort | undefined;
}

/**
 * Builds the runtime of one function: the composition root, where every client and
 * gateway is built (once, through {@link AwsClients}).
 *
 * @param options.reachAccount how the function reaches other accounts (the fan-out
 *   functions pass `assumeTargetRole`); without it only the own account is reached, and
 *   the STS credential provider stays out of the bundle.
 * @example
 * const runtime = createLambdaRuntime('backup', process.env);
 */
export function createLambdaRuntime(
  functionName: string,
  env: Readonly<Record<string, string | undefined>>,
  options: { reachAccount?: (config: SnapkeeperConfig) => ReachAccount } = {},
): LambdaRuntime {
  const serviceName = env.POWERTOOLS_SERVICE_NAME ?? 'snapkeeper';
  const logger = new Logger({ serviceName, persistentKeys: { function: functionName } });
  const config = loadConfig(env);
  logger.appendPersistentKeys({ deployment: config.deployment });
  const metrics = new Metrics({
    namespace: env.POWERTOOLS_METRICS_NAMESPACE ?? 'Snapkeeper',
    serviceName,
    defaultDimensions: { deployment: config.deployment, job: functionName },
  });
  const tracer = new Tracer({ serviceName });
  const clients = createAwsClients(config, {
    wrap: (client) => tracer.captureAWSv3Client(client),
    reachAccount: options.reachAccount?.(config),
  });
  const ec2In = (region: string): Ec2Gateway => clients.ec2({ account: 'self', region });
  const ec2 = ec2In(config.region);
  const clock = () => new Date();
  const history = config.historyTable
    ? createRunHistoryGateway(config, config.historyTable, config.historyRetentionDays)
    : unconfiguredHistory();
  const logged = logJournal(logger);
  // Records go out in batches (BatchWriteItem), written behind the EC2 work.
  const journal: ActionJournal = new HistoryPipeline({
    recordMany: async (entries) => {
      for (const entry of entries) logged.record(entry);
      await history.recordBatch(entries);
    },
  });
  if (!config.historyTable) logger.warn('HISTORY_TABLE is not set: runs are not recorded');
  return {
    functionName,
    serviceName,
    history,
    journal,
    ...(config.eventBusName ? { events: createRunEventsGateway(config, config.eventBusName) } : {}),
    config,
    logger,
    metrics,
    clients,
    ec2,
    ec2In,
    tracer,
    metricsPort: {
      count: (name, value) => metrics.addMetric(name, MetricUnit.Count, value),
      seconds: (name, value, dimensions) => {
        const single = metrics.singleMetric();
        for (const [key, dimension] of Object.entries(dimensions ?? {}))
          single.addDimension(key, dimension);
        single.addMetric(name, MetricUnit.Seconds, value);
      },
    },
    clock,
    // Every log line of the invocation carries the run id from here on.
    newRunId: () => {
      const runId = newRunId(clock(), () => randomBytes(4).toString('hex'));
      logger.appendKeys({ runId });
      return runId;
    },
  };
}

/** A history that refuses every call: deleting jobs then refuse to delete, backups go on. */
function unconfiguredHistory(): RunHistoryGateway {
  return new Proxy({} as RunHistoryGateway, {
    get: () => async () => {
      throw new Error('no run-history table is configured (HISTORY_TABLE)');
    },
  });
}
