/**
 * Reads the run history: `npm run history -- [--job backup] [--schedule daily]
 * [--instance i-...] [--resource snap-...] [--run <runId>] [--since 7d] [--limit 50] [--json]`.
 *
 * Works against the kept-up local AWS when `npm run local-aws` runs, the local AWS that
 * AWS_ENDPOINT_URL points at, or else the deployed table with your AWS credentials
 * (HISTORY_TABLE, or `--table`, or `snapkeeper-<--stage>-runs`).
 */
import { createRunHistoryGateway, type QueryOptions } from '../lib/aws/RunHistoryGateway.ts';
import { type CliSpec, helpText, isMain, parseCommandLine, runCommand, UsageError } from './cli.ts';

/** The command line of `npm run history`. */
export const HISTORY_COMMAND: CliSpec = {
  command: 'npm run history --',
  summary:
    'Reads the run history: the latest runs, the runs of a job or schedule, one run with its actions\nand batches, or everything that happened to an instance, volume, snapshot or AMI.',
  options: {
    job: {
      type: 'string',
      value: '<job>',
      description: 'runs of one job: backup, retention, amis, sweep, copy, ops',
    },
    schedule: {
      type: 'string',
      value: '<name>',
      description: 'runs of one schedule (daily, weekly, ...)',
    },
    run: {
      type: 'string',
      value: '<runId>',
      description: 'one run: its record, batches and every action',
    },
    instance: {
      type: 'string',
      value: '<i-...>',
      description: 'everything that happened to an instance',
    },
    resource: {
      type: 'string',
      value: '<id>',
      description: 'everything that happened to a volume, snapshot or AMI',
    },
    since: {
      type: 'string',
      value: '<7d|24h|30m|ISO>',
      description: 'only what started since then',
    },
    limit: {
      type: 'string',
      value: '<n>',
      default: '50',
      description: 'at most this many rows (1-1000)',
    },
    stage: {
      type: 'string',
      value: '<stage>',
      description: 'the deployment (default $DEPLOYMENT, else dev)',
    },
    table: {
      type: 'string',
      value: '<name>',
      description: 'the table (default $HISTORY_TABLE, else snapkeeper-<stage>-runs)',
    },
    region: {
      type: 'string',
      value: '<region>',
      description: "the table's region (default $AWS_REGION)",
    },
  },
  notes: [
    'Reads the local AWS when `npm run local-aws` runs (or AWS_ENDPOINT_URL points at one); otherwise\nthe deployed table with your AWS credentials (AWS_PROFILE). SNAPKEEPER_LOCAL_AWS=off ignores the local AWS.',
  ],
  examples: [
    'npm run history                                  # the latest runs',
    'npm run history -- --job backup --since 7d',
    'npm run history -- --run 20261123T030002Z-9f3a12bc',
    'npm run history -- --instance i-0123456789abcdef0 --since 1d --limit 20',
    'npm run history -- --stage prod --region eu-west-1 --json',
  ],
};

/** Parses `7d`, `24h`, `30m` or an ISO time into an ISO time. */
export function sinceToIso(since: string, now = new Date()): string {
  const match = /^(\d+)([dhm])$/.exec(since.trim());
  if (match?.[1] && match[2]) {
    const ms =
      Number(match[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[match[2] as 'd' | 'h' | 'm'];
    return new Date(now.getTime() - ms).toISOString();
  }
  const parsed = Date.parse(since);
  if (Number.isNaN(parsed))
    throw new UsageError(`--since ${JSON.stringify(since)}: use 7d, 24h, 30m or an ISO time`);
  return new Date(parsed).toISOString();
}

/** Runs the command with the given arguments; returns what it printed. */
export async function history(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const cli = parseCommandLine(HISTORY_COMMAND, argv);
  if (cli.help) return helpText(HISTORY_COMMAND);
  const values = cli.values as Record<string, string | undefined> & { json?: boolean };
  const json = cli.json;
  const limit = Number(values.limit ?? '50');
  if (!/^\d+$/.test(values.limit ?? '50') || limit < 1 || limit > 1000)
    throw new UsageError(
      `--limit ${JSON.stringify(values.limit)}: use a whole number from 1 to 1000`,
    );
  const stage = values.stage ?? env.DEPLOYMENT ?? 'dev';
  const table = values.table ?? env.HISTORY_TABLE ?? `snapkeeper-${stage}-runs`;
  const region = values.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const gateway = createRunHistoryGateway(
    { region, maxAttempts: 3, requestTimeoutMs: 10_000, endpoint: env.AWS_ENDPOINT_URL },
    table,
    400,
  );
  const options: QueryOptions = {
    ...(values.since ? { since: sinceToIso(values.since) } : {}),
    limit,
  };
  const resource = values.instance ?? values.resource;
  let rows: Record<string, unknown>[];
  if (values.run) {
    const run = await gateway.getRun(values.run);
    const actions = await gateway.runActions(values.run);
    const batches = await gateway.runBatches(values.run);
    if (json) return JSON.stringify({ run, batches, actions }, null, 2);
    rows = actions.map((a) => ({
      at: a.at,
      action: a.action,
      resource: a.resourceId,
      phase: a.phase,
      outcome: a.outcome ?? '',
      reason: a.reason,
      error: a.error ? `${a.error.code}: ${a.error.message}` : '',
    }));
    // A fan-out run: its batches, each with its status and attempts.
    const batchTable =
      batches.length > 0
        ? `${formatTable(
            batches.map((b) => ({
              batch: b.batchId,
              status: b.status,
              attempts: b.attempts,
              counts: Object.entries(b.counts ?? {})
                .filter(([, n]) => n > 0)
                .map(([k, n]) => `${k} ${n}`)
                .join(', '),
              problems: b.errorSummary ?? '',
            })),
          )}\n`
        : '';
    return `${formatRun(run ? { ...run } : { runId: values.run, status: 'not found' })}\n${batchTable}${formatTable(rows)}`;
  }
  if (resource) {
    const actions = await gateway.resourceHistory(resource, options);
    if (json) return JSON.stringify(actions, null, 2);
    rows = actions.map((a) => ({
      at: a.at,
      run: a.runId,
      job: a.job,
      action: a.action,
      resource: a.resourceId,
      phase: a.phase,
      outcome: a.outcome ?? '',
      reason: a.reason,
    }));
    return formatTable(rows);
  }
  const runs = values.job
    ? await gateway.runsOfJob(stage, values.job, options)
    : values.schedule
      ? await gateway.runsOfSchedule(stage, values.schedule, options)
      : await gateway.latestRuns(stage, options);
  if (json)
    return JSON.stringify(
      runs.map(({ report: _report, ...run }) => run),
      null,
      2,
    );
  rows = runs.map((r) => ({
    started: r.startedAt,
    run: r.runId,
    job: r.job,
    schedule: r.schedule ?? '',
    slot: r.slot ?? '',
    trigger: r.trigger,
    status: r.status,
    counts: r.counts
      ? Object.entries(r.counts)
          .filter(([, v]) => v)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')
      : '',
    error: r.errorSummary ?? '',
  }));
  return formatTable(rows);
}

function formatRun(run: Record<string, unknown>): string {
  return Object.entries(run)
    .filter(([key]) => !['report', 'PK', 'SK'].includes(key) && !key.startsWith('GSI'))
    .map(
      ([key, value]) =>
        `${key}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`,
    )
    .join('\n');
}

/** Aligns rows into columns, cutting long cells. */
export function formatTable(rows: readonly Record<string, unknown>[]): string {
  if (rows.length === 0) return '(nothing found)';
  const columns = Object.keys(rows[0] ?? {});
  const cell = (value: unknown) => {
    const text = value === undefined || value === null ? '' : String(value);
    return text.length > 80 ? `${text.slice(0, 79)}…` : text;
  };
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [
    line(columns),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(columns.map((c) => cell(r[c])))),
  ].join('\n');
}

if (isMain(import.meta.url)) {
  process.exitCode = await runCommand(HISTORY_COMMAND, process.argv.slice(2), async () => ({
    output: await history(process.argv.slice(2)),
  }));
}
