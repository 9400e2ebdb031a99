/**
 * Writes the coverage and history page: `npm run report -- --html report.html
 * [--days 14] [--stage dev] [--region eu-west-1] [--table name]`.
 *
 * Works against the deployed account and table with your AWS credentials (the stage
 * names the deployment and, unless HISTORY_TABLE or `--table` says otherwise, the table
 * `snapkeeper-<stage>-runs`), or against the local AWS when AWS_ENDPOINT_URL points at
 * it. It only reads. The schedules come from SCHEDULES, else from serverless.yml.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createAutoScalingGateway } from '../lib/aws/AutoScalingGateway.ts';
import { Ec2ImageGateway } from '../lib/aws/Ec2ImageGateway.ts';
import { Ec2RestoreGateway } from '../lib/aws/Ec2RestoreGateway.ts';
import { type CoverageDependencies, collectCoverageData } from '../lib/report/coverageData.ts';
import { renderCoverageHtml } from '../lib/report/htmlReport.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { deploymentSchedules } from './deploymentSchedules.ts';

const USAGE =
  'usage: npm run report -- --html report.html [--days 14] [--stage dev] [--region us-east-1] [--table name]';

/**
 * The reading dependencies of the page for an environment, built as the ops function
 * builds its own (the same configuration, gateways and history table).
 *
 * @example
 * const deps = coverageDependencies({ ...process.env, DEPLOYMENT: 'prod' });
 */
export function coverageDependencies(
  env: Readonly<Record<string, string | undefined>>,
): CoverageDependencies {
  const runtime = createLambdaRuntime('report', env);
  return {
    ec2: runtime.ec2,
    images: new Ec2ImageGateway(runtime.ec2.client, {
      tagAfterCreate: runtime.config.localTagAfterCreate,
    }),
    restore: new Ec2RestoreGateway(runtime.ec2.client),
    // Auto Scaling holds on AMIs name their group in the blocked deletions.
    autoScaling: createAutoScalingGateway(runtime.config),
    destination: runtime.ec2In,
    history: runtime.history,
    config: runtime.config,
    clock: runtime.clock,
    runId: runtime.newRunId(),
    logger: runtime.logger,
    metrics: runtime.metricsPort,
    journal: runtime.journal,
  };
}

/**
 * Runs the command with the given arguments: writes the page and returns its absolute path.
 *
 * @example
 * await writeCoverageReport(['--html', 'reports/coverage.html', '--days', '14']);
 */
export async function writeCoverageReport(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      html: { type: 'string' },
      days: { type: 'string', default: '14' },
      stage: { type: 'string' },
      region: { type: 'string' },
      table: { type: 'string' },
    },
    strict: true,
  });
  if (!values.html) throw new Error(`--html <file> is required\n${USAGE}`);
  const days = Number(values.days);
  if (!/^\d+$/.test(values.days) || days < 1 || days > 400)
    throw new Error(`--days ${JSON.stringify(values.days)}: use a whole number from 1 to 400`);
  const stage = values.stage ?? env.DEPLOYMENT ?? 'dev';
  const region = values.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const deps = coverageDependencies({
    ...env,
    DEPLOYMENT: stage,
    AWS_REGION: region,
    HISTORY_TABLE: values.table ?? env.HISTORY_TABLE ?? `snapkeeper-${stage}-runs`,
    SCHEDULES: env.SCHEDULES?.trim() ? env.SCHEDULES : JSON.stringify(deploymentSchedules()),
    POWERTOOLS_LOG_LEVEL: env.POWERTOOLS_LOG_LEVEL ?? 'ERROR',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_TRACE_ENABLED: 'false',
  });
  const page = renderCoverageHtml(await collectCoverageData(deps, { days }));
  const path = resolve(values.html);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, page);
  return path;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '')) {
  writeCoverageReport(process.argv.slice(2))
    .then((path) => console.log(path))
    .catch((error: unknown) => {
      console.error(error instanceof Error ? error.message : String(error));
      process.exitCode = 1;
    });
}
