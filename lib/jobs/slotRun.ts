import { toAwsCallError } from '../aws/errors.ts';
import type { RunRecord } from '../aws/RunHistoryGateway.ts';
import {
  FINISHED_STATUSES,
  isDispatched,
  isLeaseDead,
  type LeaseRules,
  RESUMABLE_STATUSES,
  type RunRecordStatus,
  type SlotKey,
} from '../domain/runHistory.ts';
import type {
  LoggerPort,
  ReportedError,
  RunEventsPort,
  RunHistoryPort,
  RunSummary,
  RunTrigger,
} from './ports.ts';
import { eventCosts, type RetentionCosts } from './snapshotSizes.ts';

/** What every job report has in common, as the run history and the events see it. */
export interface RunReportLike {
  readonly runId: string;
  readonly job: string;
  readonly status: RunRecordStatus;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly dryRun: boolean;
  readonly counts?: Readonly<Record<string, number>>;
  readonly error?: ReportedError | undefined;
  /** For `incomplete` runs: what is left for the next invocation. */
  readonly remaining?: readonly string[] | undefined;
  /** A retention run's cost ledger (lib/jobs/snapshotSizes.ts): the event carries its totals. */
  readonly costs?: RetentionCosts | undefined;
}

/** Moved: `RunSummary` to `lib/domain/runRecords.ts`, `RunEventsPort` to `./ports.ts`; re-exported here. */
export type { RunEventsPort, RunSummary } from './ports.ts';

/** How a slot invocation ended. */
export type SlotOutcome<R> =
  | { readonly kind: 'ran'; readonly report: R }
  | { readonly kind: 'duplicate'; readonly heldBy: string; readonly report: unknown }
  | { readonly kind: 'in-progress'; readonly heldBy: string; readonly message: string };

/** What the job body learns about the run it is in. */
export interface RunContext {
  readonly runId: string;
  readonly trigger: RunTrigger;
  /** True when this run takes a slot over from a failed, incomplete or abandoned run. */
  readonly resuming: boolean;
  readonly previousRunId?: string | undefined;
  /** True when the history could not be written; the job reports it. */
  readonly historyUnavailable: boolean;
}

/** The parameters of one run. */
export interface RunParams {
  readonly job: string;
  readonly runId: string;
  readonly trigger: RunTrigger;
  readonly dryRun: boolean;
  readonly schedule?: string | undefined;
  /** The slot served; with `schedule`, makes the run exactly-once. */
  readonly slot?: string | undefined;
  /**
   * When set, the slot's claim lapses this long after it was made: a later run claims
   * the slot afresh instead of being its duplicate (the console's dedupe window).
   */
  readonly claimLapsesAfterMs?: number | undefined;
  readonly requestedBy?: string | undefined;
}

/** What the run wrapper works through. */
export interface RunOnceDependencies {
  readonly history: Pick<
    RunHistoryPort,
    | 'claimSlot'
    | 'takeOverSlot'
    | 'startRun'
    | 'renewLease'
    | 'finishRun'
    | 'getRun'
    | 'markAbandoned'
    | 'runsOfJob'
    | 'recordDispatch'
  >;
  readonly events?: RunEventsPort | undefined;
  readonly deployment: string;
  readonly clock: () => Date;
  readonly logger: LoggerPort;
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * How often a running run renews its lease; a lease not renewed for three periods
   * (plus a clock allowance) belongs to a dead run (see `leaseStaleAfterMs`).
   */
  readonly leaseRenewMs?: number;
  /** The function's timeout: the longest a dispatched fan-out run's lease may stand still, with the margin. */
  readonly functionTimeoutMs?: number;
  readonly abandonMarginMs?: number;
  /**
   * How long a duplicate waits for a live holder to finish before answering `in-progress`
   * (which a scheduled handler turns into a thrown `SlotInProgressError`).
   */
  readonly duplicateWaitMs?: number;
  /**
   * When true the run fails loudly if the history cannot be written at start
   * (deleting jobs); when false it goes on and reports it (backups still happen).
   */
  readonly historyRequired: boolean;
}

/**
 * Runs a job once per slot, recorded as it goes:
 * 1. marks dead runs of the job `abandoned` (lease not renewed for three renewal
 *    periods; a dispatched fan-out run: timeout plus margin);
 * 2. claims the slot with a conditional write; a duplicate of a finished slot (or of a
 *    fan-out run handed to its workers) gets the first run's report; one of a slot whose
 *    holder is alive waits briefly and then answers `in-progress` naming the holder; one
 *    of a failed, incomplete or abandoned slot, or one whose holder's lease went stale
 *    (a crashed run), takes it over and resumes;
 * 3. writes the run item (`running`) and renews its lease while the job works;
 * 4. writes the final status and report, and publishes `Snapkeeper Run Finished`.
 *
 * @example
 * const outcome = await runOnce(params, deps, (context) => runBackupJob(..., context));
 */
export async function runOnce<R extends RunReportLike>(
  params: RunParams,
  deps: RunOnceDependencies,
  work: (context: RunContext) => Promise<R>,
): Promise<SlotOutcome<R>> {
  const lease: LeaseRules = {
    renewMs: deps.leaseRenewMs ?? 30_000,
    timeoutMs: deps.functionTimeoutMs ?? 900_000,
    marginMs: deps.abandonMarginMs ?? 120_000,
  };
  try {
    await markDeadRuns(params, deps, lease);
  } catch (error) {
    deps.logger.warn('could not check for abandoned runs', {
      error: toAwsCallError('Query', error).message,
    });
  }
  const claim = await claimSlotOrGoOn<R>(params, deps, lease);
  if (claim.kind !== 'claimed') return claim;
  const { context } = claim;
  const identity = runIdentity(params, deps, context.trigger);
  const startedAt = deps.clock().toISOString();
  const run: RunContext = {
    ...context,
    historyUnavailable:
      context.historyUnavailable || !(await recordStart(identity, startedAt, context, deps)),
  };
  const timer = run.historyUnavailable ? undefined : renewLeaseEvery(lease.renewMs, params, deps);

  let report: R;
  try {
    report = await work(run);
  } catch (error) {
    if (timer) clearInterval(timer);
    await recordFailure(identity, startedAt, run, error, deps);
    throw error;
  }
  if (timer) clearInterval(timer);

  // A fan-out planner hands its work to workers: the run stays `running` (its lease
  // renewed), and the worker that finishes its last batch finishes it.
  if (report.status === 'running') {
    if (!run.historyUnavailable) {
      await deps.history.recordDispatch(params.runId, {
        counts: report.counts ?? {},
        report,
        now: deps.clock(),
      });
    }
    return { kind: 'ran', report };
  }
  await recordFinish(identity, report, run, deps);
  return { kind: 'ran', report };
}

/** Who a run is, as its run item and its run-finished event name it. */
type RunIdentity = Pick<
  RunSummary,
  'runId' | 'deployment' | 'job' | 'trigger' | 'schedule' | 'slot' | 'requestedBy' | 'dryRun'
>;

function runIdentity(
  params: RunParams,
  deps: RunOnceDependencies,
  trigger: RunTrigger,
): RunIdentity {
  return {
    runId: params.runId,
    deployment: deps.deployment,
    job: params.job,
    trigger,
    schedule: params.schedule,
    slot: params.slot,
    requestedBy: params.requestedBy,
    dryRun: params.dryRun,
  };
}

/**
 * Claims the run's slot (a real scheduled run only), or answers as the slot's duplicate
 * or `in-progress`. A history that cannot be written fails a run that requires it, and
 * is otherwise reported while the run goes on without a claim.
 */
async function claimSlotOrGoOn<R>(
  params: RunParams,
  deps: RunOnceDependencies,
  lease: LeaseRules,
): Promise<{ kind: 'claimed'; context: RunContext } | Exclude<SlotOutcome<R>, { kind: 'ran' }>> {
  const context = {
    runId: params.runId,
    trigger: params.trigger,
    resuming: false,
    previousRunId: undefined as string | undefined,
    historyUnavailable: false,
  };
  const slot: SlotKey | undefined =
    params.slot && params.schedule && !params.dryRun
      ? { job: params.job, schedule: params.schedule, slot: params.slot }
      : undefined;
  if (!slot) return { kind: 'claimed', context };
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  try {
    const claim = await claimOrResolve<R>(slot, params, deps, sleep, lease);
    if (claim.kind !== 'claimed') return claim;
    const resuming = claim.previousRunId !== undefined;
    return {
      kind: 'claimed',
      context: {
        ...context,
        resuming,
        previousRunId: claim.previousRunId,
        trigger: resuming ? 'retry' : params.trigger,
      },
    };
  } catch (error) {
    const failure = toAwsCallError('ClaimSlot', error);
    if (deps.historyRequired) throw failure;
    deps.logger.error('run history unavailable: going on without a slot claim', {
      error: failure.message,
    });
    return { kind: 'claimed', context: { ...context, historyUnavailable: true } };
  }
}

/** Writes the run item (`running`): true when written; a run that requires its history fails otherwise. */
async function recordStart(
  identity: RunIdentity,
  startedAt: string,
  context: Pick<RunContext, 'historyUnavailable' | 'previousRunId'>,
  deps: RunOnceDependencies,
): Promise<boolean> {
  if (context.historyUnavailable) return false;
  try {
    await deps.history.startRun({
      ...identity,
      startedAt,
      status: 'running',
      ...(context.previousRunId ? { resumedFrom: context.previousRunId } : {}),
    } as RunRecord);
    return true;
  } catch (error) {
    const failure = toAwsCallError('StartRun', error);
    if (deps.historyRequired) throw failure;
    deps.logger.error('run history unavailable: going on without a run record', {
      error: failure.message,
    });
    return false;
  }
}

/** Renews the run's lease every `renewMs` while the job works; a failed renewal is a warning. */
function renewLeaseEvery(
  renewMs: number,
  params: RunParams,
  deps: RunOnceDependencies,
): ReturnType<typeof setInterval> {
  const timer = setInterval(() => {
    deps.history.renewLease(params.runId, deps.clock()).catch((error: unknown) =>
      deps.logger.warn('lease renewal failed', {
        error: toAwsCallError('UpdateItem', error).message,
      }),
    );
  }, renewMs);
  timer.unref?.();
  return timer;
}

/** A job that threw: the run item says `failed` (best effort) and the event is published. */
async function recordFailure(
  identity: RunIdentity,
  startedAt: string,
  run: RunContext,
  error: unknown,
  deps: RunOnceDependencies,
): Promise<void> {
  const failure = error instanceof Error ? error.message : String(error);
  if (!run.historyUnavailable) {
    await deps.history
      .finishRun(identity.runId, {
        status: 'failed',
        endedAt: deps.clock().toISOString(),
        errorSummary: failure,
      })
      .catch(() => undefined);
  }
  await publish(deps, {
    ...identity,
    status: 'failed',
    startedAt,
    endedAt: deps.clock().toISOString(),
    errorSummary: failure,
  });
}

/** A finished run: its final status and report written, and `Snapkeeper Run Finished` published. */
async function recordFinish(
  identity: RunIdentity,
  report: RunReportLike,
  run: RunContext,
  deps: RunOnceDependencies,
): Promise<void> {
  const summary: RunSummary = {
    ...identity,
    status: report.status,
    startedAt: report.startedAt,
    endedAt: report.endedAt,
    counts: report.counts,
    errorSummary: report.error
      ? `${report.error.code}: ${report.error.message}`
      : report.status === 'succeeded'
        ? undefined
        : problemSummary(report),
    resumedFrom: run.previousRunId,
    ...(report.costs ? { costs: eventCosts(report.costs) } : {}),
  };
  if (!run.historyUnavailable) {
    try {
      await deps.history.finishRun(identity.runId, {
        status: report.status,
        endedAt: report.endedAt,
        counts: report.counts,
        errorSummary: summary.errorSummary,
        remaining: report.remaining,
        report,
      });
    } catch (error) {
      deps.logger.error('the run finished but its final record could not be written', {
        error: toAwsCallError('UpdateItem', error).message,
      });
    }
  }
  await publish(deps, summary);
}

async function claimOrResolve<R>(
  slot: SlotKey,
  params: RunParams,
  deps: RunOnceDependencies,
  sleep: (ms: number) => Promise<void>,
  lease: LeaseRules,
): Promise<{ kind: 'claimed'; previousRunId?: string } | Exclude<SlotOutcome<R>, { kind: 'ran' }>> {
  const { history } = deps;
  const waitMs = deps.duplicateWaitMs ?? 10_000;
  const deadline = deps.clock().getTime() + waitMs;
  for (;;) {
    const claimedAt = deps.clock();
    const claim =
      params.claimLapsesAfterMs === undefined
        ? await history.claimSlot(slot, params.runId, claimedAt)
        : await history.claimSlot(slot, params.runId, claimedAt, {
            lapsedBefore: new Date(claimedAt.getTime() - params.claimLapsesAfterMs),
          });
    if (claim.claimed) return { kind: 'claimed' };
    const holderId = claim.holder.runId;
    const holder = await history.getRun(holderId);
    const now = deps.clock();
    if (holder && FINISHED_STATUSES.includes(holder.status)) {
      deps.logger.info('duplicate delivery of a finished slot: returning the first run’s report', {
        heldBy: holderId,
      });
      return {
        kind: 'duplicate',
        heldBy: holderId,
        report: holder.report ? JSON.parse(holder.report) : holder,
      };
    }
    const dead =
      (holder && RESUMABLE_STATUSES.includes(holder.status)) ||
      (holder && isLeaseDead(holder, now, lease)) ||
      // A claim with no run item: its claimer may be going on without a history, so
      // only the function's timeout proves it dead.
      (!holder &&
        now.getTime() - Date.parse(claim.holder.claimedAt) > lease.timeoutMs + lease.marginMs);
    if (dead) {
      if (holder?.status === 'running' && holder.leaseRenewedAt) {
        await history.markAbandoned(holderId, holder.leaseRenewedAt, now, params.runId);
      }
      if (await history.takeOverSlot(slot, holderId, params.runId, now)) {
        deps.logger.warn('taking over the slot to resume its work', {
          previousRunId: holderId,
          status: holder?.status,
        });
        return { kind: 'claimed', previousRunId: holderId };
      }
      continue;
    }
    if (holder && isDispatched(holder) && holder.report) {
      deps.logger.info(
        'duplicate delivery of a slot handed to fan-out workers: nothing done again',
        {
          heldBy: holderId,
        },
      );
      return { kind: 'duplicate', heldBy: holderId, report: JSON.parse(holder.report) };
    }
    if (now.getTime() >= deadline) {
      const message = `slot ${slot.schedule} ${slot.slot} of ${slot.job} is held by run ${holderId}, still running; nothing done`;
      deps.logger.info(message);
      return { kind: 'in-progress', heldBy: holderId, message };
    }
    await sleep(Math.min(1_000, Math.max(50, deadline - now.getTime())));
  }
}

async function markDeadRuns(
  params: RunParams,
  deps: RunOnceDependencies,
  lease: LeaseRules,
): Promise<void> {
  const now = deps.clock();
  const recent = await deps.history.runsOfJob(deps.deployment, params.job, { limit: 50 });
  for (const run of recent) {
    if (run.runId !== params.runId && isLeaseDead(run, now, lease) && run.leaseRenewedAt) {
      if (await deps.history.markAbandoned(run.runId, run.leaseRenewedAt, now, params.runId)) {
        deps.logger.warn('marked a dead run abandoned', {
          abandonedRunId: run.runId,
          leaseRenewedAt: run.leaseRenewedAt,
        });
      }
    }
  }
}

async function publish(deps: RunOnceDependencies, summary: RunSummary): Promise<void> {
  if (!deps.events) return;
  try {
    await deps.events.publishRunFinished(summary);
  } catch (error) {
    deps.logger.error('could not publish the run-finished event', {
      error: toAwsCallError('PutEvents', error).message,
    });
  }
}

/**
 * Why a run is not `succeeded`, in one line for the history and the event: the first
 * few errors, warnings and tag problems a report carries, and how many more there are.
 *
 * @example
 * problemSummary(report); // '3 problem(s); tags: snapkeeper:backup (2), ...; i-0abc: ... (and 1 more)'
 */
export function problemSummary(report: unknown): string | undefined {
  const found: string[] = [];
  const r = report as Record<string, unknown>;
  const push = (prefix: string | undefined, message: unknown) => {
    if (typeof message === 'string' && message)
      found.push(prefix ? `${prefix}: ${message}` : message);
  };
  for (const warning of (r.warnings as unknown[] | undefined) ?? []) push(undefined, warning);
  const groups = ['instances', 'volumes', 'created', 'retired', 'deleted', 'duplicates'] as const;
  for (const group of groups) {
    for (const item of (r[group] as Record<string, unknown>[] | undefined) ?? []) {
      const id = (item.instanceId ?? item.volumeId ?? item.imageId ?? item.snapshotId) as
        | string
        | undefined;
      const error = item.error as { code?: string; message?: string } | undefined;
      if (error?.message) push(id, `${error.code ?? 'Error'}: ${error.message}`);
      else for (const p of (item.problems as unknown[] | undefined) ?? []) push(id, p);
      push(id, item.failing ? `backups failing (${String(item.failing)})` : undefined);
    }
  }
  if (found.length === 0) return undefined;
  const unique = [...new Set(found)];
  const keys = new Map<string, number>();
  for (const message of unique) {
    for (const match of message.matchAll(/([A-Za-z0-9_.-]+:[A-Za-z0-9_.:-]+)="/g)) {
      if (match[1]) keys.set(match[1], (keys.get(match[1]) ?? 0) + 1);
    }
  }
  const tags =
    keys.size > 0
      ? `tags: ${[...keys].map(([key, count]) => `${key} (${count})`).join(', ')}; `
      : '';
  const shown = unique.slice(0, 2).join('; ');
  const more = unique.length > 2 ? ` (and ${unique.length - 2} more)` : '';
  return `${unique.length} problem(s); ${tags}${shown.length > 600 ? `${shown.slice(0, 600)}…` : shown}${more}`;
}
