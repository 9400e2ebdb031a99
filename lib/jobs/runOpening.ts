/**
 * The opening of a job's run, in one place: what every job reads its time, its id and
 * its outputs through ({@link RunEssentials}), and the run's header (its id, job,
 * deployment, trigger, dry run and start), logged as `<label> started`. A job opens
 * with {@link openRun} and ends with `closeRun` (`runReport.ts`).
 */
import type { ActionJournal, LoggerPort, MetricsPort, RunStatus, RunTrigger } from './ports.ts';
import { logJournal, noMetrics } from './runReport.ts';

/** What every job run reads its time and id through and reports to. */
export interface RunEssentials {
  readonly clock: () => Date;
  readonly runId: string;
  readonly logger: LoggerPort;
  readonly metrics?: MetricsPort;
  /** Where each action is recorded; logs when absent. */
  readonly journal?: ActionJournal;
}

/** What every job run is asked: whether to change anything, who asked, and how long it has. */
export interface RunInput {
  readonly dryRun: boolean;
  readonly trigger: RunTrigger;
  /** Time left in the invocation, in ms; no new work starts below the safety margin. */
  readonly remainingMs?: (() => number) | undefined;
  readonly safetyMarginMs?: number | undefined;
}

/** The fields every run report starts with. */
export interface RunHeader<Job extends string> {
  readonly runId: string;
  readonly job: Job;
  readonly deployment: string;
  readonly trigger: RunTrigger;
  readonly dryRun: boolean;
  readonly startedAt: string;
}

/** The fields every run report starts with once the run is over: the header, its status and its end. */
export interface RunReportHeader<Job extends string> extends RunHeader<Job> {
  readonly status: RunStatus;
  readonly endedAt: string;
}

/** An opened run: its start, its header (with the job's own fields) and its outputs. */
export interface OpenedRun<Header> {
  readonly startedAt: Date;
  readonly base: Header;
  readonly metrics: MetricsPort;
  readonly journal: ActionJournal;
}

/**
 * Opens a run: reads the clock once, builds the report's header (the job's own fields,
 * such as the schedule and slot, follow the common ones in `fields` order), logs
 * `<label> started` with it, and resolves the metrics and journal (silent metrics and a
 * log journal when the dependencies have none).
 *
 * @example
 * const { startedAt, base, metrics, journal } = openRun('retention', 'retention run', input, deps,
 *   (startedAt) => ({ schedule: 'daily' }));
 */
export function openRun<Job extends string, Fields extends object>(
  job: Job,
  label: string,
  input: { readonly trigger: RunTrigger; readonly dryRun: boolean },
  deps: RunEssentials & { readonly config: { readonly deployment: string } },
  fields: (startedAt: Date) => Fields,
): OpenedRun<RunHeader<Job> & Fields> {
  const startedAt = deps.clock();
  const base = {
    runId: deps.runId,
    job,
    deployment: deps.config.deployment,
    ...fields(startedAt),
    trigger: input.trigger,
    dryRun: input.dryRun,
    startedAt: startedAt.toISOString(),
  };
  deps.logger.info(`${label} started`, base);
  return {
    startedAt,
    base,
    metrics: deps.metrics ?? noMetrics,
    journal: deps.journal ?? logJournal(deps.logger),
  };
}
