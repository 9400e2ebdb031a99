import type { Context } from 'aws-lambda';
import type { RunHistoryGateway } from '../aws/RunHistoryGateway.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import { InvalidEventError } from '../domain/errors.ts';
import {
  resolveSchedule,
  type ScheduleCatalog,
  type ScheduleDefinition,
} from '../domain/schedules.ts';
import type { ActionJournal, MetricsPort } from '../jobs/ports.ts';
import { type RunContext, type RunReportLike, runOnce } from '../jobs/slotRun.ts';
import {
  answer,
  dryRunOf,
  remainingTime,
  scheduledSlot,
  slotRunDependencies,
} from './invocation.ts';
import type { LambdaRuntime } from './lambdaRuntime.ts';
import { powertoolsHandler } from './powertoolsHandler.ts';

/** The timetables a delivery's slot is held to. */
type Timetable = Parameters<typeof scheduledSlot>[3];

/** The schedule an invocation names, resolved in the catalog (undefined when it names none). */
type ResolvedSchedule<I> = I extends { readonly schedule: string }
  ? ScheduleDefinition
  : ScheduleDefinition | undefined;

/** What every job reads and records through, for the run it is in. */
export interface JobDependencies {
  readonly config: SnapkeeperConfig;
  readonly clock: () => Date;
  readonly runId: string;
  readonly logger: LambdaRuntime['logger'];
  readonly metrics: MetricsPort;
  readonly journal: ActionJournal;
  /** The run history, as the creations' ledger (which jobs that delete read). */
  readonly ledger: RunHistoryGateway;
}

/** The run a job body is in: {@link runOnce}'s context, the dry-run rule applied. */
export interface JobRun extends RunContext {
  /** The event's `dryRun` or the deployment's `DRY_RUN`. */
  readonly dryRun: boolean;
  /** Milliseconds left in the invocation. */
  readonly remainingMs: () => number;
  readonly safetyMarginMs: number;
  readonly dependencies: JobDependencies;
}

/** The run a delivery claims. */
export interface RunClaim {
  readonly job: string;
  /** The schedule served; with `slot`, the run is once per slot. */
  readonly schedule?: string | undefined;
  readonly slot?: string | undefined;
  /** A job that deletes refuses to run without the history; a backup goes on. */
  readonly historyRequired: boolean;
}

/** One validated delivery of a scheduled job's event, as the handler's declaration sees it. */
export interface Delivery<I> {
  readonly invocation: I;
  /** The event's `dryRun` or the deployment's `DRY_RUN`. */
  readonly dryRun: boolean;
  /** The schedule the invocation names, resolved once. */
  readonly schedule: ResolvedSchedule<I>;
  /**
   * The slot this delivery serves on the timetable of `job` (see {@link scheduledSlot}).
   *
   * @throws {InvalidEventError} naming `scheduledTime`, or `schedule` when none is named.
   */
  slot(job: Timetable): { readonly schedule: string; readonly slot: string };
  /**
   * Runs the job once under the claim (a new run id, the slot claimed when there is
   * one) and answers: the report, or a thrown error for a failed or incomplete run and
   * for a slot held by a live run (see {@link answer}).
   */
  runOnce<R extends RunReportLike>(
    claim: RunClaim,
    work: (run: JobRun) => Promise<R>,
  ): Promise<unknown>;
}

/**
 * The one shape of a scheduled job's handler: parses the event (a typed error names the
 * field), resolves its schedule once, applies the dry-run rule (the event's `dryRun` or
 * the deployment's `DRY_RUN`), and hands the delivery to the declaration, which says
 * which slot it serves and what runs once under it; the answer goes back through the
 * Powertools/middy wrapper. Adding a scheduled job is one handler file and one job.
 *
 * @example
 * export const handler = scheduledJobHandler(runtime, parseScheduledEvent, (delivery) => {
 *   const { schedule, slot } = delivery.slot('backup');
 *   return delivery.runOnce({ job: 'backup', schedule, slot, historyRequired: false }, (run) =>
 *     runBackupJob({ schedule, scheduledTime: new Date(slot), dryRun: run.dryRun, trigger: run.trigger }, run.dependencies),
 *   );
 * });
 */
export function scheduledJobHandler<I extends { readonly dryRun: boolean }>(
  runtime: LambdaRuntime,
  parse: (event: unknown, catalog: ScheduleCatalog) => I,
  declaration: (delivery: Delivery<I>, context: Context) => Promise<unknown>,
) {
  return powertoolsHandler(runtime, async (event: unknown, context: Context) => {
    const invocation = parse(event, runtime.config.catalog);
    return declaration(delivery(runtime, invocation, context), context);
  });
}

function delivery<I extends { readonly dryRun: boolean }>(
  runtime: LambdaRuntime,
  invocation: I,
  context: Context,
): Delivery<I> {
  const named = 'schedule' in invocation ? invocation.schedule : undefined;
  const schedule =
    typeof named === 'string' ? resolveSchedule(runtime.config.catalog, named) : undefined;
  const scheduledTime =
    'scheduledTime' in invocation && invocation.scheduledTime instanceof Date
      ? invocation.scheduledTime
      : undefined;
  const dryRun = dryRunOf(invocation.dryRun, runtime.config);
  return {
    invocation,
    dryRun,
    schedule: schedule as ResolvedSchedule<I>,
    slot: (job) => {
      if (!schedule) throw new InvalidEventError('field "schedule" is required');
      return {
        schedule: schedule.name,
        slot: scheduledSlot(runtime, schedule, scheduledTime, job),
      };
    },
    runOnce: async (claim, work) => {
      const runId = runtime.newRunId();
      const outcome = await runOnce(
        { ...claim, runId, trigger: 'schedule', dryRun },
        slotRunDependencies(runtime, { historyRequired: claim.historyRequired }),
        (run) =>
          work({
            ...run,
            dryRun,
            remainingMs: remainingTime(context),
            safetyMarginMs: runtime.config.safetyMarginMs,
            dependencies: {
              config: runtime.config,
              clock: runtime.clock,
              runId,
              logger: runtime.logger,
              metrics: runtime.metricsPort,
              journal: runtime.journal,
              ledger: runtime.history,
            },
          }),
      );
      return answer(outcome, runtime.metricsPort);
    },
  };
}
