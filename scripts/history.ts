/**
 * Reads the run history: `npm run history -- [--job backup] [--schedule daily]
 * [--instance i-...] [--resource snap-...] [--run <runId>] [--since 7d] [--limit 50] [--json]`.
 *
 * Works against the deployed table with your AWS credentials (HISTORY_TABLE, or
 * `--table`, or `snapkeeper-<--stage>-runs`), or against the local AWS when
 * AWS_ENDPOINT_URL points at it.
 */
import { parseArgs } from 'node:util';
import { createRunHistoryGateway, type QueryOptions } from '../lib/aws/RunHistoryGateway.ts';

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
    throw new Error(`--since ${JSON.stringify(since)}: use 7d, 24h, 30m or an ISO time`);
  return new Date(parsed).toISOString();
}

/** Runs the command with the given arguments; returns what it printed. */
export async function history(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      job: { type: 'string' },
      schedule: { type: 'string' },
      instance: { type: 'string' },
      resource: { type: 'string' },
      run: { type: 'string' },
      since: { type: 'string' },
      limit: { type: 'string' },
      table: { type: 'string' },
      stage: { type: 'string' },
      region: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
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
    limit: values.limit ? Number(values.limit) : 50,
  };
  const resource = values.instance ?? values.resource;
  let rows: Record<string, unknown>[];
  if (values.run) {
    const run = await gateway.getRun(values.run);
    const actions = await gateway.runActions(values.run);
    const batches = await gateway.runBatches(values.run);
    if (values.json) return JSON.stringify({ run, batches, actions }, null, 2);
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
    if (values.json) return JSON.stringify(actions, null, 2);
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
  if (values.json)
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

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '')) {
  history(process.argv.slice(2))
    .then((output) => console.log(output))
    .catch((error: unknown) => {
      console.error(error instanceof Error ? error.message : String(error));
      process.exitCode = 1;
    });
}
