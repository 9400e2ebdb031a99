import type { Context } from 'aws-lambda';
import { RunFailedError, RunIncompleteError } from '../domain/errors.ts';
import type { MetricsPort } from '../jobs/ports.ts';
import type { RunOnceDependencies, RunReportLike, SlotOutcome } from '../jobs/slotRun.ts';
import type { LambdaRuntime } from './lambdaRuntime.ts';

/** What a handler returns for a slot delivered twice while the first is still running. */
export interface InProgressAnswer {
  readonly status: 'in-progress';
  readonly heldBy: string;
  readonly message: string;
}

/**
 * The dependencies of {@link runOnce} for a function's runtime.
 *
 * @example
 * await runOnce(params, slotRunDependencies(runtime, { historyRequired: false }), work);
 */
export function slotRunDependencies(
  runtime: LambdaRuntime,
  options: { historyRequired: boolean },
): RunOnceDependencies {
  return {
    history: runtime.history,
    events: runtime.events,
    deployment: runtime.config.deployment,
    clock: runtime.clock,
    logger: runtime.logger,
    functionTimeoutMs: runtime.config.functionTimeoutMs,
    duplicateWaitMs: runtime.config.duplicateWaitMs,
    historyRequired: options.historyRequired,
  };
}

/**
 * Turns a slot outcome into the handler's answer: the report (or the first run's, for a
 * duplicate), an in-progress note, or a thrown error for a failed run (so Lambda's error
 * metric and failure destination see it) and for an incomplete one (so Lambda's retry
 * resumes it).
 *
 * @example
 * return answer(await runOnce(...));
 */
export function answer<R extends RunReportLike>(
  outcome: SlotOutcome<R>,
  metrics?: MetricsPort,
): R | InProgressAnswer | unknown {
  if (outcome.kind !== 'ran') metrics?.count('DuplicateDeliveries', 1);
  if (outcome.kind === 'in-progress') {
    return { status: 'in-progress', heldBy: outcome.heldBy, message: outcome.message };
  }
  if (outcome.kind === 'duplicate') return outcome.report;
  const { report } = outcome;
  if (report.status === 'failed') {
    throw new RunFailedError(
      report.job,
      report.runId,
      report.error?.message ?? `${report.job} run failed`,
      report,
    );
  }
  if (report.status === 'incomplete') {
    throw new RunIncompleteError(report.job, report.runId, report.remaining?.length ?? 0, report);
  }
  return report;
}

/** Milliseconds left in the invocation, from the Lambda context. */
export function remainingTime(context: Context): () => number {
  return () => context.getRemainingTimeInMillis();
}
