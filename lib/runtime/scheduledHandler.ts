import type { Context } from 'aws-lambda';
import { InvalidEventError } from '../domain/errors.ts';
import {
  resolveSchedule,
  type ScheduleCatalog,
  type ScheduleDefinition,
} from '../domain/schedules.ts';
import { type RunContext, type RunReportLike, runOnce } from '../jobs/slotRun.ts';
import {
  answer,
  dryRunOf,
  jobDependencies,
  remainingTime,
  scheduledSlot,
  slotRunDependencies,
} from './invocation.ts';
import type { LambdaRuntime } from './lambdaRuntime.ts';
import { powertoolsHandler } from './powertoolsHandler.ts';

/** What every job reads and records through, for the run it is in. */
export type JobDependencies = ReturnType<typeof jobDependencies>;

/** The run a job body is in: {@link runOnce}'s context, with the dry-run rule applied. */
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

/** One validated delivery of a job's event, as the handler's declaration sees it. */
export interface Delivery<I> {
  readonly invocation: I;
  /** The event's `dryRun` or the deployment's `DRY_RUN`. */
  readonly dryRun: boolean;
  /**
   * Runs the job once under the claim (a new run id; the slot claimed when there is
   * one) and answers: the report, or a thrown error for a failed or incomplete run and
   * for a slot a live run holds (see {@link answer}).
   */
  runOnce<R extends RunReportLike>(
    claim: RunClaim,
    work: (run: JobRun) => Promise<R>,
  ): Promise<unknown>;
}

/** A scheduled job's invocation: it may name a schedule and the time it was scheduled for. */
interface ScheduledInvocationLike {
  readonly dryRun: boolean;
  readonly schedule?: string | undefined;
  readonly scheduledTime?: Date | undefined;
}

/** A delivery of a scheduled job: its schedule resolved once, and its slot. */
export interface ScheduledDelivery<I> extends Delivery<I> {
  /** The schedule the invocation names, resolved in the catalog. */
  readonly schedule: I extends { readonly schedule: string }
    ? ScheduleDefinition
    : ScheduleDefinition | undefined;
  /**
   * The slot this delivery serves on the timetable of `job` (see {@link scheduledSlot}).
   *
   * @throws {InvalidEventError} naming `scheduledTime`, or `schedule` when none is named.
   */
  slot(job: Parameters<typeof scheduledSlot>[3]): { schedule: string; slot: string };
}

/**
 * The one shape of a job's handler: parses the event (a typed error names the field),
 * applies the dry-run rule of every entry point (the event's `dryRun` or the
 * deployment's `DRY_RUN`), and hands the delivery to the declaration, which says what
 * runs once and under which claim; the answer goes back through the Powertools/middy
 * wrapper. A scheduled job uses {@link scheduledJobHandler}, which adds its schedule and
 * slot; this one serves an event-driven job (copy).
 *
 * @example
 * export const handler = jobHandler(runtime, parseCopyEvent, (delivery) =>
 *   delivery.runOnce({ job: 'copy', historyRequired: true }, (run) => runCopyJob(...)),
 * );
 */
export function jobHandler<I extends { readonly dryRun: boolean }>(
  runtime: LambdaRuntime,
  parse: (event: unknown, catalog: ScheduleCatalog) => I,
  declaration: (delivery: Delivery<I>) => Promise<unknown>,
) {
  return powertoolsHandler(runtime, async (event: unknown, context: Context) => {
    const invocation = parse(event, runtime.config.catalog);
    const dryRun = dryRunOf(invocation.dryRun, runtime.config);
    return declaration({
      invocation,
      dryRun,
      runOnce: async (claim, work) => {
        const runId = runtime.newRunId();
        const outcome = await runOnce(
          { ...claim, runId, trigger: 'schedule', dryRun },
          slotRunDependencies(runtime, claim),
          (run) =>
            work({
              ...run,
              dryRun,
              remainingMs: remainingTime(context),
              safetyMarginMs: runtime.config.safetyMarginMs,
              dependencies: jobDependencies(runtime, runId),
            }),
        );
        return answer(outcome, runtime.metricsPort);
      },
    });
  });
}

/**
 * The one shape of a scheduled job's handler: {@link jobHandler}, with the schedule the
 * event names resolved once and the slot it serves on the job's timetable. Adding a
 * scheduled job is one handler file declaring what runs, and one job.
 *
 * @example
 * export const handler = scheduledJobHandler(runtime, parseScheduledEvent, (delivery) => {
 *   const { schedule, slot } = delivery.slot('backup');
 *   return delivery.runOnce({ job: 'backup', schedule, slot, historyRequired: false }, (run) =>
 *     runBackupJob({ schedule, scheduledTime: new Date(slot), dryRun: run.dryRun, trigger: run.trigger }, { ec2: runtime.ec2, ...run.dependencies }),
 *   );
 * });
 */
export function scheduledJobHandler<I extends ScheduledInvocationLike>(
  runtime: LambdaRuntime,
  parse: (event: unknown, catalog: ScheduleCatalog) => I,
  declaration: (delivery: ScheduledDelivery<I>) => Promise<unknown>,
) {
  return jobHandler(runtime, parse, (delivery) => {
    const { schedule: name, scheduledTime } = delivery.invocation;
    const schedule = name === undefined ? undefined : resolveSchedule(runtime.config.catalog, name);
    return declaration({
      ...delivery,
      schedule: schedule as ScheduledDelivery<I>['schedule'],
      slot: (job) => {
        if (!schedule) throw new InvalidEventError('field "schedule" is required');
        const slot = scheduledSlot(runtime, schedule, scheduledTime, job);
        return { schedule: schedule.name, slot };
      },
    });
  });
}
