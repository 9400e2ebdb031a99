/**
 * Writes the coverage and history page: `npm run report -- --html report.html
 * [--days 14] [--stage dev] [--region eu-west-1] [--table name]`.
 *
 * Works against the kept-up local AWS when `npm run local-aws` runs, the local AWS that
 * AWS_ENDPOINT_URL points at, or else the deployed account and table with your AWS
 * credentials (the stage names the deployment and, unless HISTORY_TABLE or `--table` says
 * otherwise, the table `snapkeeper-<stage>-runs`). It only reads. The schedules come from
 * SCHEDULES, else from serverless.yml.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { deploymentSchedules } from '../harness/deploymentSchedules.ts';
import { createAutoScalingGateway } from '../lib/aws/AutoScalingGateway.ts';
import { Ec2ImageGateway } from '../lib/aws/Ec2ImageGateway.ts';
import { Ec2RestoreGateway } from '../lib/aws/Ec2RestoreGateway.ts';
import { type CoverageDependencies, collectCoverageData } from '../lib/report/coverageData.ts';
import { renderCoverageHtml } from '../lib/report/htmlReport.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { type CliSpec, isMain, parseCommandLine, runCommand, UsageError } from './cli.ts';

/** The command line of `npm run report`. */
export const REPORT_COMMAND: CliSpec = {
  command: 'npm run report --',
  summary:
    'Writes the coverage page: one self-contained HTML file (no script, no outside request) with every\nopted-in instance against its RPO, the runs of the last days, blocked deletions and public findings.',
  options: {
    html: { type: 'string', value: '<file>', description: 'where to write the page (required)' },
    days: {
      type: 'string',
      value: '<n>',
      default: '14',
      description: 'days of run history on the timeline (1-400)',
    },
    stage: {
      type: 'string',
      value: '<stage>',
      description: 'the deployment (default $DEPLOYMENT, else dev)',
    },
    region: { type: 'string', value: '<region>', description: 'its region (default $AWS_REGION)' },
    table: {
      type: 'string',
      value: '<name>',
      description: 'the history table (default $HISTORY_TABLE, else snapkeeper-<stage>-runs)',
    },
  },
  notes: [
    "Reads the local AWS when `npm run local-aws` runs (or AWS_ENDPOINT_URL points at one); otherwise\nthe deployed account with your AWS credentials (AWS_PROFILE). It only reads. Prints the page's path.",
  ],
  examples: [
    'npm run report -- --html report.html',
    'npm run report -- --html reports/prod.html --days 30 --stage prod --region eu-west-1',
    'npm run report -- --html report.html --json     # {"path": "/abs/report.html"}',
  ],
};

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
    // The cost ledger's recorded sizes (read only).
    ...(runtime.config.historyTable ? { sizes: runtime.history.sizes } : {}),
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
  const cli = parseCommandLine(REPORT_COMMAND, argv);
  const values = cli.values as Record<string, string | undefined>;
  if (!values.html)
    throw new UsageError(`--html <file> is required (see npm run report -- --help)`);
  const daysText = values.days ?? '14';
  const days = Number(daysText);
  if (!/^\d+$/.test(daysText) || days < 1 || days > 400)
    throw new UsageError(`--days ${JSON.stringify(daysText)}: use a whole number from 1 to 400`);
  const stage = values.stage ?? env.DEPLOYMENT ?? 'dev';
  const region = values.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const deps = coverageDependencies({
    ...env,
    DEPLOYMENT: stage,
    AWS_REGION: region,
    HISTORY_TABLE: values.table ?? env.HISTORY_TABLE ?? `snapkeeper-${stage}-runs`,
    SCHEDULES: env.SCHEDULES?.trim() ? env.SCHEDULES : JSON.stringify(deploymentSchedules()),
    POWERTOOLS_LOG_LEVEL: env.POWERTOOLS_LOG_LEVEL ?? 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_TRACE_ENABLED: 'false',
  });
  const page = renderCoverageHtml(await collectCoverageData(deps, { days }));
  const path = resolve(values.html);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, page);
  return path;
}

if (isMain(import.meta.url)) {
  process.exitCode = await runCommand(REPORT_COMMAND, process.argv.slice(2), async (cli) => {
    const path = await writeCoverageReport(process.argv.slice(2));
    return {
      output: cli.json
        ? JSON.stringify({ path }, null, 2)
        : `wrote ${path}\nopen it in a browser: file://${path}`,
    };
  });
}
