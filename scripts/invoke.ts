/**
 * Invokes one Lambda handler locally, against the local AWS that `npm run local-aws`
 * keeps up: `npm run invoke -- backup events/backup-daily.json`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { lambdaContext } from '../harness/lambdaContext.ts';
import { PROJECT_ROOT } from '../harness/localAws.ts';
import { type CliSpec, isMain, runCommand, UsageError } from './cli.ts';

/** The functions of serverless.yml, each `functions/<name>.ts`. */
export const FUNCTIONS = [
  'backup',
  'retention',
  'amis',
  'ops',
  'copy',
  'fanout',
  'worker',
] as const;

/** The command line of `npm run invoke`. */
export const INVOKE_COMMAND: CliSpec = {
  command: 'npm run invoke --',
  summary:
    'Invokes one function’s handler here, against the local AWS that `npm run local-aws` keeps up, with\nan event from events/ (a file, a sample’s name, or inline JSON), and prints its report.',
  positionals: `<${FUNCTIONS.join('|')}> <event>`,
  options: {},
  notes: [
    'The event: a path (events/backup-daily.json), a sample’s name without .json (backup-daily), or\ninline JSON. Exits 1 when the run failed or the payload was rejected. Runs locally only: start\nthe local AWS first (npm run local-aws).',
  ],
  examples: [
    'npm run invoke -- backup events/backup-daily-dry-run.json',
    'npm run invoke -- backup backup-daily',
    'npm run invoke -- retention \'{"schedule": "daily", "dryRun": true}\'',
    'npm run invoke -- amis amis-sweep-dry-run --json',
  ],
};

/**
 * Reads an event given as a file, a sample's name in events/ (with or without a prefix
 * such as `ops-`), or inline JSON.
 *
 * @throws {UsageError} when it is none of these or not JSON
 * @example
 * readEvent('backup-daily'); // events/backup-daily.json
 */
export function readEvent(argument: string, prefix = ''): unknown {
  const text = argument.trim();
  const candidates = [
    argument,
    join(PROJECT_ROOT, argument),
    join(PROJECT_ROOT, 'events', `${argument}.json`),
    join(PROJECT_ROOT, 'events', `${prefix}${argument}.json`),
  ];
  const file = text.startsWith('{') ? undefined : candidates.find((c) => existsSync(c));
  if (!text.startsWith('{') && !file)
    throw new UsageError(
      `${JSON.stringify(argument)} is neither a file, a sample in events/, nor inline JSON`,
    );
  const source = file ? readFileSync(file, 'utf8') : text;
  try {
    return JSON.parse(source);
  } catch (error) {
    throw new UsageError(
      `${file ?? 'the inline event'} is not valid JSON: ${(error as Error).message}`,
    );
  }
}

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

/**
 * Loads `functions/<name>.ts` (after the environment is set: each builds its runtime at
 * import) and invokes its handler. A run that failed is answered with its report, as the
 * handler's error carries it.
 *
 * @example
 * const report = await invokeFunction('backup', { schedule: 'daily', dryRun: true });
 */
export async function invokeFunction(
  name: string,
  event: unknown,
): Promise<Record<string, unknown>> {
  const module = (await import(`../functions/${name}.ts`)) as { handler: Handler };
  try {
    return ((await module.handler(event, lambdaContext(`snapkeeper-local-${name}`))) ??
      {}) as Record<string, unknown>;
  } catch (error) {
    const report = (error as { report?: Record<string, unknown> }).report;
    if (report) return report;
    throw error;
  }
}

/**
 * The report as text: a headline (run, job, status) and the rest as YAML, which reads as
 * plain indented text (the `yaml` package, already used for serverless.yml).
 *
 * @example
 * console.log(describeReport(report));
 */
export function describeReport(report: Record<string, unknown>): string {
  const headline = [
    report.runId ? `run ${String(report.runId)}` : undefined,
    report.job ? `job ${String(report.job)}` : undefined,
    report.action ? `action ${String(report.action)}` : undefined,
    report.status ? `status ${String(report.status)}` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  const body = stringify(report, { lineWidth: 0 }).trimEnd();
  return headline ? `${headline}\n\n${body}` : body;
}

/** Whether a report says the run did not succeed in full (the command then exits 1). */
export function reportFailed(report: Record<string, unknown>): boolean {
  return ['failed', 'rejected', 'incomplete'].includes(String(report.status));
}

if (isMain(import.meta.url)) {
  process.exitCode = await runCommand(INVOKE_COMMAND, process.argv.slice(2), async (cli, local) => {
    const [name, eventArgument, ...rest] = cli.positionals;
    if (!name || !eventArgument || rest.length > 0)
      throw new UsageError(
        'give a function and an event, e.g. "npm run invoke -- backup backup-daily" (see --help)',
      );
    if (!(FUNCTIONS as readonly string[]).includes(name))
      throw new UsageError(
        `unknown function ${JSON.stringify(name)}; known: ${FUNCTIONS.join(', ')}`,
      );
    const event = readEvent(eventArgument, `${name}-`);
    if (!local?.state)
      throw new Error(
        'no local AWS is running: start it with "npm run local-aws" (invoke runs the functions locally only)',
      );
    const report = await invokeFunction(name, event);
    return {
      output: cli.json ? JSON.stringify(report, null, 2) : describeReport(report),
      exitCode: reportFailed(report) ? 1 : 0,
    };
  });
}
