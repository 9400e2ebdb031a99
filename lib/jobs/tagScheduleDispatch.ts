/**
 * The dispatcher of the schedules written in instances' own `snapkeeper:backup` tags
 * (`rate(6 hours)`, `cron(0 3 * * ? *)@Europe/Paris`): the backup function invoked with
 * `{"schedule": "tag", "scheduledTime": "<ISO 8601>"}` every 15 minutes.
 *
 * 1. read the opted-in instances once (and the volumes tagged to skip);
 * 2. parse each instance's expressions against the clock and the limits; a bad or
 *    too-frequent one is reported by instance, tag and fix, the others still served;
 * 3. group the instances by expression (at most TAG_SCHEDULE_MAX_EXPRESSIONS), each
 *    with its newest slot at or before the dispatch;
 * 4. run each group as an ordinary backup run of the schedule named by the expression,
 *    through the same exactly-once slot claim: a late or repeated dispatch finds the
 *    slot claimed and does nothing again; a missed one serves the newest slot only.
 */
import { toAwsCallError } from '../aws/errors.ts';
import type { InstanceFacts } from '../domain/backupPlan.ts';
import { InvalidEventError } from '../domain/errors.ts';
import { SCHEDULED_TIME_SKEW_MS, type ScheduleCatalog } from '../domain/schedules.ts';
import {
  catalogWith,
  type DispatchGroup,
  type ExpressionDemand,
  overCapMessage,
  planDispatch,
  planTagScheduleRuns,
  readBackupTagEntries,
  TAG_SCHEDULE,
  type TagScheduleRun,
  tagLimitsOf,
} from '../domain/tagSchedules.ts';
import { type BackupJobDependencies, type BackupReport, runBackupJob } from './backupJob.ts';
import type { Ec2Port, LoggerPort, MetricsPort, ReportedError, RunStatus } from './ports.ts';
import { noMetrics, runStatus } from './runReport.ts';
import { type RunOnceDependencies, runOnce } from './slotRun.ts';
import type { TagDispatchInvocation } from './tagScheduleEvents.ts';

/** What became of one expression's slot in a dispatch. */
export interface DispatchedRun {
  readonly expression: string;
  readonly slot: string;
  readonly instanceIds: readonly string[];
  /** ran: this dispatch ran it; duplicate: a run had served the slot; in-progress: one is serving it; deferred: no time left. */
  readonly outcome: 'ran' | 'duplicate' | 'in-progress' | 'deferred' | 'failed';
  readonly runId?: string | undefined;
  readonly status?: RunStatus | undefined;
  readonly backedUp?: number | undefined;
  readonly error?: ReportedError | undefined;
}

/** The dispatcher's answer: returned, and logged. */
export interface TagDispatchReport {
  readonly job: 'tag-dispatch';
  readonly deployment: string;
  readonly schedule: typeof TAG_SCHEDULE;
  /** The time the slots were found at: the later of the scheduled time and the clock. */
  readonly dispatchedAt: string;
  readonly dryRun: boolean;
  readonly status: RunStatus;
  readonly counts: {
    readonly instances: number;
    readonly expressions: number;
    readonly ran: number;
    readonly duplicates: number;
    readonly inProgress: number;
    readonly deferred: number;
    readonly failed: number;
    readonly problems: number;
  };
  readonly runs: readonly DispatchedRun[];
  /** Bad, too-frequent or over-the-cap expressions, by instance, with the fix. */
  readonly problems: readonly { readonly instanceId: string; readonly message: string }[];
  readonly error?: ReportedError | undefined;
}

/** What the dispatcher reads and runs through. */
export interface TagDispatchDependencies {
  /** The backup job's dependencies but the run id (each run gets its own). */
  readonly backup: Omit<BackupJobDependencies, 'runId'>;
  /** The exactly-once slot runner's dependencies (the run history). */
  readonly slotRun: RunOnceDependencies;
  readonly newRunId: () => string;
  readonly logger: LoggerPort;
  readonly metrics?: MetricsPort | undefined;
  readonly remainingMs?: (() => number) | undefined;
  readonly safetyMarginMs?: number | undefined;
}

/**
 * Runs one dispatch (see the module's comment).
 *
 * @throws {InvalidEventError} when `scheduledTime` is ahead of the clock.
 * @example
 * const report = await runTagDispatch({ scheduledTime, dryRun: false }, deps);
 */
export async function runTagDispatch(
  input: TagDispatchInvocation,
  deps: TagDispatchDependencies,
): Promise<TagDispatchReport> {
  const { config, clock } = deps.backup;
  const metrics = deps.metrics ?? noMetrics;
  const now = clock();
  const at = dispatchTime(input.scheduledTime, now);
  const base = {
    job: 'tag-dispatch' as const,
    deployment: config.deployment,
    schedule: TAG_SCHEDULE,
    dispatchedAt: at.toISOString(),
    dryRun: input.dryRun,
  };
  let instances: InstanceFacts[];
  let volumeTags: Map<string, Readonly<Record<string, string>>>;
  try {
    instances = [];
    for await (const instance of deps.backup.ec2.listInstancesWithTagKey(config.keys.backup)) {
      instances.push(instance);
    }
    volumeTags = await deps.backup.ec2.volumeTagsWithKey(config.keys.skip);
  } catch (error) {
    const failure = toAwsCallError('Describe', error);
    const report = emptyReport(base, { code: failure.code, message: failure.message });
    deps.logger.error('tag dispatch failed: could not read the fleet', { report });
    return report;
  }

  const { demands, problems } = readDemands(instances, config.keys.backup, config.catalog, at);
  const limits = tagLimitsOf(config.catalog);
  const plan = planDispatch(demands, at, limits);
  for (const refused of plan.overCap) {
    for (const instanceId of refused.instanceIds) {
      problems.push({
        instanceId,
        message: `instance ${instanceId}: ${overCapMessage(config.keys.backup, refused.expression, limits.maxExpressions)}`,
      });
    }
  }
  const runs: DispatchedRun[] = [];
  for (const group of plan.groups) {
    runs.push(await dispatchGroup(group, input, volumeTags, deps));
  }
  const report = finish(base, instances.length, plan.groups.length, runs, problems);
  metrics.count('TagSchedulesDispatched', report.counts.ran);
  metrics.count('TagScheduleProblems', problems.length);
  const log = report.status === 'succeeded' ? deps.logger.info : deps.logger.warn;
  log.call(deps.logger, `tag dispatch ${report.status}`, { report });
  return report;
}

/** The later of the scheduled time and the clock: a late delivery never serves a stale slot. */
function dispatchTime(scheduledTime: Date | undefined, now: Date): Date {
  if (scheduledTime === undefined) return now;
  const ahead = scheduledTime.getTime() - now.getTime();
  if (ahead > SCHEDULED_TIME_SKEW_MS) {
    throw new InvalidEventError(
      `field "scheduledTime": ${scheduledTime.toISOString()} is ahead of the clock (${now.toISOString()}); the dispatcher serves slots when they come`,
    );
  }
  return ahead > 0 ? scheduledTime : now;
}

function readDemands(
  instances: readonly InstanceFacts[],
  key: string,
  catalog: ScheduleCatalog,
  at: Date,
): { demands: ExpressionDemand[]; problems: { instanceId: string; message: string }[] } {
  const demands: ExpressionDemand[] = [];
  const problems: { instanceId: string; message: string }[] = [];
  const limits = tagLimitsOf(catalog);
  for (const instance of instances) {
    const value = instance.tags[key];
    if (value === undefined) continue;
    const entries = readBackupTagEntries(instance.instanceId, key, value, limits, at);
    for (const problem of entries.problems) {
      problems.push({
        instanceId: instance.instanceId,
        message: `instance ${instance.instanceId}: ${problem.message}`,
      });
    }
    for (const expression of entries.expressions) {
      demands.push({ instanceId: instance.instanceId, expression });
    }
  }
  return { demands, problems };
}

/** One expression's slot through the exactly-once claim, as a backup run of its own. */
async function dispatchGroup(
  group: DispatchGroup,
  input: TagDispatchInvocation,
  volumeTags: ReadonlyMap<string, Readonly<Record<string, string>>>,
  deps: TagDispatchDependencies,
): Promise<DispatchedRun> {
  const { definition, slot, instanceIds } = group;
  const summary = { expression: definition.name, slot, instanceIds };
  const margin = deps.safetyMarginMs ?? 0;
  if (deps.remainingMs && deps.remainingMs() < margin) {
    return { ...summary, outcome: 'deferred' };
  }
  const runId = deps.newRunId();
  const config = {
    ...deps.backup.config,
    catalog: catalogWith(deps.backup.config.catalog, definition),
  };
  const batchVolumeTags = Object.fromEntries(volumeTags);
  try {
    const outcome = await runOnce<BackupReport>(
      {
        job: 'backup',
        runId,
        trigger: 'schedule',
        dryRun: input.dryRun,
        schedule: definition.name,
        slot,
      },
      deps.slotRun,
      (run) =>
        runBackupJob(
          {
            schedule: definition.name,
            scheduledTime: new Date(slot),
            dryRun: input.dryRun,
            trigger: run.trigger,
            resuming: run.resuming,
            historyUnavailable: run.historyUnavailable,
            remainingMs: deps.remainingMs,
            safetyMarginMs: deps.safetyMarginMs,
            batch: { instanceIds, volumeTags: batchVolumeTags },
          },
          { ...deps.backup, config, runId },
        ),
    );
    if (outcome.kind === 'duplicate')
      return { ...summary, outcome: 'duplicate', runId: outcome.heldBy };
    if (outcome.kind === 'in-progress') {
      return { ...summary, outcome: 'in-progress', runId: outcome.heldBy };
    }
    const { report } = outcome;
    return {
      ...summary,
      outcome: report.status === 'failed' ? 'failed' : 'ran',
      runId,
      status: report.status,
      backedUp: input.dryRun ? (report.counts.wouldBackUp ?? 0) : report.counts.backedUp,
      ...(report.error ? { error: report.error } : {}),
    };
  } catch (error) {
    const failure = toAwsCallError('Backup', error);
    deps.logger.error('a tag schedule run failed', { ...summary, runId, error: failure.message });
    return {
      ...summary,
      outcome: 'failed',
      runId,
      error: { code: failure.code, message: failure.message },
    };
  }
}

function emptyReport(
  base: Pick<TagDispatchReport, 'job' | 'deployment' | 'schedule' | 'dispatchedAt' | 'dryRun'>,
  error: ReportedError,
): TagDispatchReport {
  return {
    ...base,
    status: 'failed',
    counts: {
      instances: 0,
      expressions: 0,
      ran: 0,
      duplicates: 0,
      inProgress: 0,
      deferred: 0,
      failed: 0,
      problems: 0,
    },
    runs: [],
    problems: [],
    error,
  };
}

function finish(
  base: Pick<TagDispatchReport, 'job' | 'deployment' | 'schedule' | 'dispatchedAt' | 'dryRun'>,
  instances: number,
  expressions: number,
  runs: readonly DispatchedRun[],
  problems: readonly { instanceId: string; message: string }[],
): TagDispatchReport {
  const count = (outcome: DispatchedRun['outcome']) =>
    runs.filter((r) => r.outcome === outcome).length;
  const failed = count('failed');
  const status = runStatus({
    failed: failed > 0 && failed === runs.length,
    incomplete: count('deferred') > 0 || runs.some((r) => r.status === 'incomplete'),
    hasErrors:
      failed > 0 ||
      problems.length > 0 ||
      runs.some((r) => r.status !== undefined && r.status !== 'succeeded'),
  });
  return {
    ...base,
    status,
    counts: {
      instances,
      expressions,
      ran: count('ran'),
      duplicates: count('duplicate'),
      inProgress: count('in-progress'),
      deferred: count('deferred'),
      failed,
      problems: problems.length,
    },
    runs,
    problems,
  };
}

/** The console `plan`'s section on schedules written in tags. */
export interface TagSchedulePlan {
  /** Each instance's expression, with the slot last served and the next run. */
  readonly runs: readonly TagScheduleRun[];
  /** Refused expressions, by instance, tag and fix. */
  readonly problems: readonly string[];
}

/**
 * What the tag dispatcher will do for each instance: its expressions' next runs, and the
 * refused ones with their reasons. Reads only.
 *
 * @example
 * const { runs } = await planTagSchedules({ ec2, config, clock });
 * runs[0]?.nextRun; // '2026-11-23T18:00:00Z'
 */
export async function planTagSchedules(deps: {
  readonly ec2: Pick<Ec2Port, 'listInstancesWithTagKey'>;
  readonly config: Pick<BackupJobDependencies['config'], 'keys' | 'catalog'>;
  readonly clock: () => Date;
}): Promise<TagSchedulePlan> {
  const instances: InstanceFacts[] = [];
  for await (const instance of deps.ec2.listInstancesWithTagKey(deps.config.keys.backup)) {
    instances.push(instance);
  }
  return planTagScheduleRuns(instances, deps.config.keys.backup, deps.config.catalog, deps.clock());
}
