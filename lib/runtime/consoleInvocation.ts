import { createHash } from 'node:crypto';
import { InvalidEventError } from '../domain/errors.ts';
import { type OpsDependencies, type OpsReport, runConsoleOperation } from '../jobs/consoleOps.ts';
import { OPS_ACTIONS, parseOpsPayload } from '../jobs/opsPayload.ts';
import { runOnce } from '../jobs/slotRun.ts';
import { collectCoverageData } from '../report/coverageData.ts';
import { type CoverageData, renderCoverageHtml } from '../report/htmlReport.ts';
import { reportBucketGateway } from './gateways.ts';
import { dryRunOf, jobDependencies, slotRunDependencies } from './invocation.ts';
import type { LambdaRuntime } from './lambdaRuntime.ts';

/** A validated console payload. */
type OpsPayload = ReturnType<typeof parseOpsPayload>;

/** The gateways the console's handler builds once, beside the runtime's clients. */
type ConsoleGateways = Pick<
  OpsDependencies,
  'images' | 'restore' | 'autoScaling' | 'recycleBin' | 'runCommand' | 'restoreTests' | 'tiers'
>;

/** What the console gets back for a payload it must fix: nothing was changed. */
export interface RejectedPayload {
  readonly status: 'rejected';
  readonly runId: string;
  readonly error: { readonly code: 'InvalidPayload'; readonly message: string };
  readonly actions: readonly string[];
}

/** The recorded run of a rejected payload. */
interface RejectedRun {
  readonly runId: string;
  readonly job: string;
  readonly status: 'rejected';
  readonly startedAt: string;
  readonly endedAt: string;
  readonly dryRun: boolean;
  readonly error: { readonly code: 'InvalidPayload'; readonly message: string };
}

function rejectedRun(
  runId: string,
  job: string,
  startedAt: string,
  now: Date,
  dryRun: boolean,
  error: InvalidEventError,
): RejectedRun {
  return {
    runId,
    job,
    status: 'rejected',
    startedAt,
    endedAt: now.toISOString(),
    dryRun,
    error: { code: 'InvalidPayload', message: error.message },
  };
}

/**
 * Handles one console payload: validates it, runs the action as a recorded console run,
 * and answers with its report. A payload to fix (bad field, unknown id, nothing to
 * restore) is answered with a rejection naming the field, logged, counted
 * (`ConsolePayloadsRejected`) and recorded as a `rejected` run, not a failed one: the
 * failed-run alerts and the page's failed runs leave it out; nothing is changed.
 *
 * @example
 * return handleConsolePayload(event, runtime, gateways);
 */
export async function handleConsolePayload(
  event: unknown,
  runtime: LambdaRuntime,
  gateways: ConsoleGateways,
): Promise<OpsReport | RejectedPayload> {
  const runId = runtime.newRunId();
  runtime.metricsPort.count('ConsoleOperations', 1);
  const reject = (error: InvalidEventError, recorded = false) =>
    rejectPayload(runtime, runId, error, recorded);
  let parsed: OpsPayload;
  try {
    parsed = parseOpsPayload(event, runtime.config.catalog);
  } catch (error) {
    if (error instanceof InvalidEventError) return reject(error);
    throw error;
  }
  const { payload, dryRun } = withDryRunRule(parsed, runtime);
  // A button pressed twice: the same changing payload within CONSOLE_DEDUPE_SECONDS
  // runs once, wherever the window falls: the claim is keyed on the payload alone and
  // lapses CONSOLE_DEDUPE_SECONDS after it was made (one conditional write decides).
  const dedupe = dryRun
    ? {}
    : {
        schedule: 'console',
        slot: consoleSlot(payload),
        claimLapsesAfterMs: runtime.config.consoleDedupeMs,
      };
  try {
    const outcome = await runOnce(
      { job: `ops:${payload.action}`, runId, trigger: 'console', dryRun, ...dedupe },
      slotRunDependencies(runtime, { historyRequired: payload.action === 'retention' && !dryRun }),
      async (): Promise<OpsReport | RejectedRun> => {
        const startedAt = runtime.clock().toISOString();
        try {
          return await runConsoleOperation(payload, consoleDependencies(runtime, gateways, runId));
        } catch (error) {
          // Found while the action ran (an unknown id, nothing to restore): its run is rejected.
          if (error instanceof InvalidEventError)
            return rejectedRun(
              runId,
              `ops:${payload.action}`,
              startedAt,
              runtime.clock(),
              dryRun,
              error,
            );
          throw error;
        }
      },
    );
    if (outcome.kind === 'ran' && outcome.report.status === 'rejected') {
      const { error } = outcome.report as RejectedRun;
      return reject(new InvalidEventError(error.message), true);
    }
    if (outcome.kind === 'duplicate') return outcome.report as OpsReport;
    if (outcome.kind === 'in-progress') {
      return {
        status: 'in-progress',
        heldBy: outcome.heldBy,
        message: outcome.message,
      } as unknown as OpsReport;
    }
    if (payload.action === 'report' && payload.page) {
      return await withCoveragePage(
        outcome.report as OpsReport,
        payload.days ?? 14,
        runtime,
        gateways,
        runId,
      );
    }
    return outcome.report as OpsReport;
  } catch (error) {
    if (error instanceof InvalidEventError) return reject(error, true);
    throw error;
  }
}

/**
 * Answers a payload to fix: logged, counted (`ConsolePayloadsRejected`), recorded as a
 * `rejected` run unless it already is (`recorded`: a rejection found while the action
 * ran is in its rejected run), and nothing changed.
 */
async function rejectPayload(
  runtime: LambdaRuntime,
  runId: string,
  error: InvalidEventError,
  recorded: boolean,
): Promise<RejectedPayload> {
  runtime.logger.warn('console payload rejected', { runId, error: error.message });
  runtime.metricsPort.count('ConsolePayloadsRejected', 1);
  const startedAt = runtime.clock().toISOString();
  if (!recorded)
    await runOnce(
      { job: 'ops', runId, trigger: 'console', dryRun: true },
      slotRunDependencies(runtime, { historyRequired: false }),
      async () => rejectedRun(runId, 'ops', startedAt, runtime.clock(), true, error),
    ).catch(() => undefined);
  return {
    status: 'rejected',
    runId,
    error: { code: 'InvalidPayload', message: error.message },
    actions: OPS_ACTIONS,
  };
}

/**
 * The dry-run rule of every entry point applied to a console payload: under DRY_RUN=true
 * every changing action plans only; `plan` and `report` are dry by nature.
 */
function withDryRunRule(
  parsed: OpsPayload,
  runtime: Pick<LambdaRuntime, 'config' | 'logger'>,
): { payload: OpsPayload; dryRun: boolean } {
  let payload = parsed;
  if (hasDryRun(payload) && payload.dryRun !== true && dryRunOf(payload.dryRun, runtime.config)) {
    runtime.logger.info('DRY_RUN is set: the console operation plans only');
    payload = { ...payload, dryRun: true };
  }
  const dryRun =
    ('dryRun' in payload && payload.dryRun === true) ||
    payload.action === 'plan' ||
    payload.action === 'report';
  return { payload, dryRun };
}

/** Whether a console action takes `dryRun` (plan and report are dry by nature). */
function hasDryRun(
  payload: OpsPayload,
): payload is Exclude<OpsPayload, { action: 'plan' | 'report' }> {
  return payload.action !== 'plan' && payload.action !== 'report';
}

/**
 * The dedupe slot of a changing console payload: a hash of its canonical JSON (key order
 * does not matter). The claim on it lapses after CONSOLE_DEDUPE_SECONDS, so no fixed
 * bucket edge splits two presses.
 *
 * @example
 * consoleSlot({ action: 'backup', instanceIds: ['i-1'] }); // 'payload-3f2a9c…'
 */
export function consoleSlot(payload: unknown): string {
  const canonical = JSON.stringify(payload, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(
          Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : value,
  );
  const hash = createHash('sha256').update(canonical).digest('hex').slice(0, 32);
  return `payload-${hash}`;
}

/** What a console run works through: the runtime's clients and the console's gateways. */
function consoleDependencies(runtime: LambdaRuntime, gateways: ConsoleGateways, runId: string) {
  return {
    ...gateways,
    ec2: runtime.ec2,
    history: runtime.history,
    // The cost ledger's recorded sizes (read only: the console never measures).
    ...(runtime.config.historyTable ? { sizes: runtime.history.sizes } : {}),
    ...jobDependencies(runtime, runId),
  };
}

/**
 * The `report` action with `"page": true`: the coverage page's data (the report and the
 * runs of the last `days`), and, when REPORT_BUCKET is set, the page itself written there.
 */
async function withCoveragePage(
  report: OpsReport,
  days: number,
  runtime: LambdaRuntime,
  gateways: ConsoleGateways,
  runId: string,
): Promise<OpsReport & { page: CoverageData; pageUri?: string }> {
  const page = await collectCoverageData(
    { ...consoleDependencies(runtime, gateways, runId), destination: runtime.ec2In },
    { days },
  );
  const bucket = reportBucketGateway(runtime);
  if (!bucket) return { ...report, page };
  const key = `${runtime.config.reportPrefix}coverage-${runtime.clock().toISOString().slice(0, 10)}.html`;
  const pageUri = await bucket.putPage(key, renderCoverageHtml(page));
  runtime.logger.info('coverage page written', { pageUri });
  return { ...report, page, pageUri };
}
