import { createHash } from 'node:crypto';
import { createReportBucketGateway } from '../aws/ReportBucketGateway.ts';
import { InvalidEventError } from '../domain/errors.ts';
import { type OpsDependencies, type OpsReport, runConsoleOperation } from '../jobs/consoleOps.ts';
import { OPS_ACTIONS, parseOpsPayload } from '../jobs/opsPayload.ts';
import { runOnce } from '../jobs/slotRun.ts';
import { collectCoverageData } from '../report/coverageData.ts';
import { type CoverageData, renderCoverageHtml } from '../report/htmlReport.ts';
import { slotRunDependencies } from './invocation.ts';
import type { LambdaRuntime } from './lambdaRuntime.ts';

/** What the console gets back for a payload it must fix: nothing was changed. */
export interface RejectedPayload {
  readonly status: 'rejected';
  readonly runId: string;
  readonly error: { readonly code: 'InvalidPayload'; readonly message: string };
  readonly actions: readonly string[];
}

/**
 * Handles one console payload: validates it, runs the action as a recorded console run,
 * and answers with its report. A payload to fix (bad field, unknown id, nothing to
 * restore) is answered with a rejection naming the field, logged, and recorded as a
 * failed run; nothing is changed.
 *
 * @example
 * return handleConsolePayload(event, runtime, gateways);
 */
export async function handleConsolePayload(
  event: unknown,
  runtime: LambdaRuntime,
  gateways: Pick<OpsDependencies, 'images' | 'restore' | 'autoScaling' | 'recycleBin'>,
): Promise<OpsReport | RejectedPayload> {
  const runId = runtime.newRunId();
  runtime.metricsPort.count('ConsoleOperations', 1);
  // `recorded`: a rejection found while the action ran is already in its failed run.
  const reject = async (error: InvalidEventError, recorded = false): Promise<RejectedPayload> => {
    runtime.logger.warn('console payload rejected', { runId, error: error.message });
    const startedAt = runtime.clock().toISOString();
    if (!recorded)
      await runOnce(
        { job: 'ops', runId, trigger: 'console', dryRun: true },
        slotRunDependencies(runtime, { historyRequired: false }),
        async () => ({
          runId,
          job: 'ops',
          status: 'failed' as const,
          startedAt,
          endedAt: runtime.clock().toISOString(),
          dryRun: true,
          error: { code: 'InvalidPayload', message: error.message },
        }),
      ).catch(() => undefined);
    return {
      status: 'rejected',
      runId,
      error: { code: 'InvalidPayload', message: error.message },
      actions: OPS_ACTIONS,
    };
  };
  let payload: ReturnType<typeof parseOpsPayload>;
  try {
    payload = parseOpsPayload(event, runtime.config.catalog);
  } catch (error) {
    if (error instanceof InvalidEventError) return reject(error);
    throw error;
  }
  const dryRun =
    ('dryRun' in payload && payload.dryRun === true) ||
    payload.action === 'plan' ||
    payload.action === 'report';
  // A button pressed twice: the same changing payload within one window runs once, and
  // the second press gets the first one's report (a duplicate of a console action).
  const dedupe = dryRun
    ? {}
    : {
        schedule: 'console',
        slot: consoleSlot(payload, runtime.clock(), runtime.config.consoleDedupeMs),
      };
  try {
    const outcome = await runOnce(
      { job: `ops:${payload.action}`, runId, trigger: 'console', dryRun, ...dedupe },
      slotRunDependencies(runtime, { historyRequired: payload.action === 'retention' && !dryRun }),
      () =>
        runConsoleOperation(payload, {
          ...gateways,
          ec2: runtime.ec2,
          history: runtime.history,
          ledger: runtime.history,
          config: runtime.config,
          clock: runtime.clock,
          runId,
          logger: runtime.logger,
          metrics: runtime.metricsPort,
          journal: runtime.journal,
        }),
    );
    if (outcome.kind === 'duplicate') return outcome.report as OpsReport;
    if (outcome.kind === 'in-progress') {
      return {
        status: 'in-progress',
        heldBy: outcome.heldBy,
        message: outcome.message,
      } as unknown as OpsReport;
    }
    if (payload.action === 'report' && payload.page) {
      return await withCoveragePage(outcome.report, payload.days ?? 14, runtime, gateways, runId);
    }
    return outcome.report;
  } catch (error) {
    if (error instanceof InvalidEventError) return reject(error, true);
    throw error;
  }
}

/**
 * The dedupe slot of a changing console payload: a hash of its canonical JSON and the
 * start of the current window.
 *
 * @example
 * consoleSlot({ action: 'backup', instanceIds: ['i-1'] }, now, 300_000); // '3f2a…@2026-11-23T11:55:00Z'
 */
export function consoleSlot(payload: unknown, now: Date, windowMs: number): string {
  const canonical = JSON.stringify(payload, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(
          Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : value,
  );
  const hash = createHash('sha256').update(canonical).digest('hex').slice(0, 16);
  const bucket = new Date(Math.floor(now.getTime() / windowMs) * windowMs);
  return `${hash}@${bucket.toISOString().slice(0, 19)}Z`;
}

/**
 * The `report` action with `"page": true`: the coverage page's data (the report and the
 * runs of the last `days`), and, when REPORT_BUCKET is set, the page itself written there.
 */
async function withCoveragePage(
  report: OpsReport,
  days: number,
  runtime: LambdaRuntime,
  gateways: Pick<OpsDependencies, 'images' | 'restore' | 'autoScaling' | 'recycleBin'>,
  runId: string,
): Promise<OpsReport & { page: CoverageData; pageUri?: string }> {
  const page = await collectCoverageData(
    {
      ...gateways,
      ec2: runtime.ec2,
      destination: runtime.ec2In,
      history: runtime.history,
      config: runtime.config,
      clock: runtime.clock,
      runId,
      logger: runtime.logger,
      metrics: runtime.metricsPort,
      journal: runtime.journal,
    },
    { days },
  );
  const { reportBucket, reportPrefix } = runtime.config;
  if (!reportBucket) return { ...report, page };
  const key = `${reportPrefix}coverage-${runtime.clock().toISOString().slice(0, 10)}.html`;
  const pageUri = await createReportBucketGateway(runtime.config, reportBucket).putPage(
    key,
    renderCoverageHtml(page),
  );
  runtime.logger.info('coverage page written', { pageUri });
  return { ...report, page, pageUri };
}
