/**
 * Retention of the sets made for schedules written in instances' tags: the retention
 * function invoked with `{"schedule": "tag", "scheduledTime": "<ISO 8601>"}`.
 *
 * Each expression is its own lineage (its sets carry `snapkeeper:schedule` = the
 * expression), kept by the same retention run as a named schedule's:
 * 1. find the expressions this deployment's managed snapshots carry (an expression no
 *    instance lists any more still has its sets, kept as orphans are);
 * 2. run one retention run per expression, through the run history (a slot per
 *    delivery, so a repeated delivery deletes nothing again), with the deletion cap,
 *    the records before and after each deletion, and every safety rule of retention.
 */
import { toAwsCallError } from '../aws/errors.ts';
import { MANUAL_SCHEDULE } from '../domain/schedules.ts';
import {
  catalogWith,
  isExpressionEntry,
  POLICY_READ_REFERENCE,
  parseTagExpression,
  TAG_SCHEDULE,
  type TagExpression,
  tagLimitsOf,
  tagScheduleDefinition,
} from '../domain/tagSchedules.ts';
import type { LoggerPort, ReportedError, RunStatus } from './ports.ts';
import {
  type RetentionJobDependencies,
  type RetentionReport,
  runRetentionJob,
} from './retentionJob.ts';
import { runStatus } from './runReport.ts';
import { type RunOnceDependencies, runOnce } from './slotRun.ts';
import type { TagDispatchInvocation } from './tagScheduleEvents.ts';

/** What became of one expression's retention. */
export interface TagRetentionRun {
  readonly expression: string;
  readonly outcome: 'ran' | 'duplicate' | 'in-progress' | 'deferred' | 'failed';
  readonly runId?: string | undefined;
  readonly status?: RunStatus | undefined;
  readonly deleted?: number | undefined;
  readonly planned?: number | undefined;
  readonly error?: ReportedError | undefined;
}

/** The answer of a tag retention delivery. */
export interface TagRetentionReport {
  readonly job: 'tag-retention';
  readonly deployment: string;
  readonly schedule: typeof TAG_SCHEDULE;
  readonly dryRun: boolean;
  readonly status: RunStatus;
  readonly counts: {
    readonly expressions: number;
    readonly deleted: number;
    readonly failed: number;
  };
  readonly runs: readonly TagRetentionRun[];
  /** Schedule values on our snapshots that look like expressions but do not parse: kept, reported. */
  readonly unreadable: readonly string[];
  readonly error?: ReportedError | undefined;
}

/** What tag retention reads and runs through. */
export interface TagRetentionDependencies {
  readonly retention: Omit<RetentionJobDependencies, 'runId'>;
  readonly slotRun: RunOnceDependencies;
  readonly newRunId: () => string;
  readonly logger: LoggerPort;
  readonly remainingMs?: (() => number) | undefined;
  readonly safetyMarginMs?: number | undefined;
}

/**
 * Runs retention for every expression lineage of this deployment (see the module's comment).
 *
 * @example
 * const report = await runTagRetention({ scheduledTime, dryRun: true }, deps);
 */
export async function runTagRetention(
  input: TagDispatchInvocation,
  deps: TagRetentionDependencies,
): Promise<TagRetentionReport> {
  const { config } = deps.retention;
  const base = {
    job: 'tag-retention' as const,
    deployment: config.deployment,
    schedule: TAG_SCHEDULE,
    dryRun: input.dryRun,
  };
  let found: { expressions: TagExpression[]; unreadable: string[] };
  try {
    found = await expressionLineages(deps.retention);
  } catch (error) {
    const failure = toAwsCallError('DescribeSnapshots', error);
    deps.logger.error('tag retention failed: could not list the managed snapshots', {
      error: failure.message,
    });
    return {
      ...base,
      status: 'failed',
      counts: { expressions: 0, deleted: 0, failed: 0 },
      runs: [],
      unreadable: [],
      error: { code: failure.code, message: failure.message },
    };
  }
  const slot = input.scheduledTime
    ? `${input.scheduledTime.toISOString().slice(0, 19)}Z`
    : undefined;
  const runs: TagRetentionRun[] = [];
  for (const expression of found.expressions) {
    runs.push(await retainExpression(expression, slot, input.dryRun, deps));
  }
  const failed = runs.filter((r) => r.outcome === 'failed').length;
  const status = runStatus({
    failed: failed > 0 && failed === runs.length,
    incomplete: runs.some((r) => r.outcome === 'deferred' || r.status === 'incomplete'),
    hasErrors:
      failed > 0 ||
      found.unreadable.length > 0 ||
      runs.some((r) => r.status !== undefined && r.status !== 'succeeded'),
  });
  const report: TagRetentionReport = {
    ...base,
    status,
    counts: {
      expressions: runs.length,
      deleted: runs.reduce((n, r) => n + (r.deleted ?? 0), 0),
      failed,
    },
    runs,
    unreadable: found.unreadable,
  };
  const log = status === 'succeeded' ? deps.logger.info : deps.logger.warn;
  log.call(deps.logger, `tag retention ${status}`, { report });
  return report;
}

/**
 * The expressions this deployment's managed snapshots carry as their schedule. They are
 * read without the minimum interval or the clock: a lineage made under other limits, or
 * of a cron whose years are past, is still kept by retention.
 */
async function expressionLineages(
  deps: Omit<RetentionJobDependencies, 'runId'>,
): Promise<{ expressions: TagExpression[]; unreadable: string[] }> {
  const { keys, catalog, deployment } = deps.config;
  const values = new Set<string>();
  for await (const snapshot of deps.ec2.listSnapshotsTagged({
    [keys.managed]: 'true',
    [keys.deployment]: deployment,
  })) {
    const schedule = snapshot.tags[keys.schedule];
    if (schedule === undefined || schedule === MANUAL_SCHEDULE) continue;
    if (catalog.schedules.has(schedule) || !isExpressionEntry(schedule)) continue;
    values.add(schedule);
  }
  const expressions: TagExpression[] = [];
  const unreadable: string[] = [];
  for (const value of [...values].sort()) {
    const parsed = parseTagExpression(value, { minIntervalMs: 0 }, POLICY_READ_REFERENCE);
    // Only a value written back exactly as we write it is ours to keep in a lineage.
    if (typeof parsed === 'string' || parsed.expression !== value) unreadable.push(value);
    else expressions.push(parsed);
  }
  return { expressions, unreadable };
}

async function retainExpression(
  expression: TagExpression,
  slot: string | undefined,
  dryRun: boolean,
  deps: TagRetentionDependencies,
): Promise<TagRetentionRun> {
  const { config } = deps.retention;
  if (deps.remainingMs && deps.remainingMs() < (deps.safetyMarginMs ?? 0)) {
    return { expression: expression.expression, outcome: 'deferred' };
  }
  const definition = tagScheduleDefinition(expression, tagLimitsOf(config.catalog).retain);
  const runId = deps.newRunId();
  try {
    const outcome = await runOnce<RetentionReport>(
      { job: 'retention', runId, trigger: 'schedule', dryRun, schedule: definition.name, slot },
      deps.slotRun,
      (run) =>
        runRetentionJob(
          {
            schedule: definition.name,
            dryRun,
            trigger: run.trigger,
            remainingMs: deps.remainingMs,
            safetyMarginMs: deps.safetyMarginMs,
          },
          {
            ...deps.retention,
            config: { ...config, catalog: catalogWith(config.catalog, definition) },
            runId,
          },
        ),
    );
    if (outcome.kind !== 'ran') {
      return { expression: definition.name, outcome: outcome.kind, runId: outcome.heldBy };
    }
    const { report } = outcome;
    return {
      expression: definition.name,
      outcome: report.status === 'failed' ? 'failed' : 'ran',
      runId,
      status: report.status,
      deleted: report.counts.deleted,
      planned: report.counts.planned,
      ...(report.error ? { error: report.error } : {}),
    };
  } catch (error) {
    const failure = toAwsCallError('Retention', error);
    deps.logger.error('a tag schedule retention run failed', {
      expression: definition.name,
      runId,
      error: failure.message,
    });
    return {
      expression: definition.name,
      outcome: 'failed',
      runId,
      error: { code: failure.code, message: failure.message },
    };
  }
}
