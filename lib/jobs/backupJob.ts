import type { CreatedSnapshot } from '../aws/Ec2Gateway.ts';
import type { AwsCallError } from '../aws/errors.ts';
import { CreateSnapshotSetError, toAwsCallError } from '../aws/errors.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import {
  type BackupContext,
  formatSlot,
  type InstanceBackupDecision,
  type InstanceFacts,
  planInstanceBackup,
} from '../domain/backupPlan.ts';
import { imageOfSnapshot, isDisasterRecoveryCopy } from '../domain/provenance.ts';
import { previousFireTime, resolveJobSchedule } from '../domain/schedules.ts';
import type { SnapshotFacts } from '../domain/snapshotFacts.ts';
import { nearMissProblems } from '../domain/tagKeyTypos.ts';
import { Behind } from './historyPipeline.ts';
import { DEFAULT_MAX_IN_FLIGHT, isThrottleCode, PacedPool } from './pacedPool.ts';
import type {
  ActionJournal,
  Ec2Port,
  LoggerPort,
  MetricsPort,
  ReportedError,
  RunStatus,
  RunTrigger,
} from './ports.ts';
import { deleteSnapshotRecorded } from './recordedDeletion.ts';
import { logJournal, noMetrics, reportForLog, runStatus } from './runReport.ts';

/** What a backup run is asked to do. */
export interface BackupJobInput {
  readonly schedule: string;
  readonly scheduledTime?: Date | undefined;
  readonly dryRun: boolean;
  readonly trigger: RunTrigger;
  /**
   * True when taking over a slot from a failed, incomplete or abandoned run: the slot's
   * snapshots are listed once, covered instances skipped, and duplicate sets removed.
   */
  readonly resuming?: boolean | undefined;
  /** Time left in the invocation, in ms; no new instance starts below the safety margin. */
  readonly remainingMs?: (() => number) | undefined;
  readonly safetyMarginMs?: number | undefined;
  /** Set when the run history could not be written: reported, and the run is partial. */
  readonly historyUnavailable?: boolean | undefined;
  /**
   * Console backup of these instances, whatever their tags (schedule `manual`, or a
   * schedule's name to count toward its retention). Unknown ids are reported per id.
   */
  readonly instanceIds?: readonly string[] | undefined;
  /**
   * A fan-out batch: the scheduled run restricted to these instances (their tags still
   * decide), with the skip-tagged volumes the planner read once. When resuming, only
   * these instances' snapshots of the slot are read.
   */
  readonly batch?:
    | {
        readonly instanceIds: readonly string[];
        readonly volumeTags?: Readonly<Record<string, Readonly<Record<string, string>>>>;
      }
    | undefined;
}

/** A snapshot made (or, in a dry run, to be made) for one volume. */
export interface SnapshotResult {
  readonly volumeId: string;
  readonly deviceName?: string | undefined;
  readonly snapshotId?: string | undefined;
  readonly sizeGiB?: number | undefined;
  readonly state: string;
  /**
   * Set when EC2 made a snapshot of a volume the request excluded. AWS never does;
   * the local AWS (moto) ignores `ExcludeDataVolumeIds`, and the report says so.
   */
  readonly unexpected?: true;
}

/** The outcome for one instance. */
export interface InstanceBackupResult {
  readonly instanceId: string;
  readonly name?: string | undefined;
  /** covered: a resumed slot found it already backed up; deferred: left for the next invocation. */
  readonly outcome: 'created' | 'planned' | 'covered' | 'deferred' | 'skipped' | 'failed';
  readonly snapshots?: readonly SnapshotResult[];
  readonly excludedVolumes?: readonly { volumeId: string; deviceName: string; reason: string }[];
  readonly reason?: string;
  readonly error?: ReportedError;
  /** Tag problems found on the instance or its volumes, one message each. */
  readonly problems?: readonly string[];
  /**
   * Extra snapshots of this run for the instance, made by an attempt whose answer was
   * lost (the SDK retried CreateSnapshots), and what became of them. `kept` (pending:
   * never deleted) and `failed` ones are recorded in the run history and make the run
   * `partial`.
   */
  readonly duplicates?: readonly {
    snapshotId: string;
    volumeId: string;
    outcome: 'deleted' | 'kept' | 'failed';
  }[];
}

/** The JSON report of a backup run: returned, logged, and later recorded. */
export interface BackupReport {
  readonly runId: string;
  readonly job: 'backup';
  readonly deployment: string;
  readonly schedule: string;
  readonly slot: string;
  readonly trigger: RunTrigger;
  readonly dryRun: boolean;
  readonly status: RunStatus;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly counts: {
    readonly due: number;
    /** Instances whose snapshot set was made (0 in a dry run). */
    readonly backedUp: number;
    /** Dry runs only: instances whose snapshot set a real run would make. */
    readonly wouldBackUp?: number;
    readonly skipped: number;
    readonly failed: number;
    readonly snapshots: number;
    readonly covered: number;
    readonly deferred: number;
    readonly duplicatesRemoved: number;
  };
  readonly instances: readonly InstanceBackupResult[];
  /** Extra snapshot sets found for the slot (a create whose response was lost) and removed. */
  readonly duplicates?: readonly DuplicateSet[];
  /** Instances left for the next invocation of an `incomplete` run. */
  readonly remaining?: readonly string[];
  readonly warnings?: readonly string[];
  readonly error?: ReportedError;
}

/** An extra copy from a retried CreateSnapshots, and what became of it. */
export interface RetriedDuplicate {
  readonly snapshotId: string;
  readonly volumeId: string;
  readonly outcome: 'deleted' | 'kept' | 'failed';
}

/**
 * A second snapshot set of one instance for one slot, and what became of it: `planned`
 * in a dry run; `kept` when a snapshot of it is still pending (never deleted); `failed`
 * when a deletion failed. `kept` and `failed` make the run `partial`.
 */
export interface DuplicateSet {
  readonly instanceId: string;
  readonly runId: string;
  readonly kept: string;
  readonly snapshotIds: readonly string[];
  readonly outcome: 'deleted' | 'planned' | 'kept' | 'failed';
}

/** What the backup job reads and acts through. */
export interface BackupJobDependencies {
  readonly ec2: Pick<
    Ec2Port,
    | 'listInstancesWithTagKey'
    | 'volumeTagsWithKey'
    | 'createSnapshotSet'
    | 'listSnapshotsTagged'
    | 'deleteSnapshot'
    | 'listInstancesByIds'
  >;
  readonly config: Pick<
    SnapkeeperConfig,
    'deployment' | 'keys' | 'catalog' | 'copyTags' | 'backupConcurrency' | 'manualRetainDays'
  > &
    Partial<Pick<SnapkeeperConfig, 'maxInFlight'>>;
  readonly clock: () => Date;
  readonly runId: string;
  readonly logger: LoggerPort;
  readonly metrics?: MetricsPort;
  /** Where what was made (and any duplicate removed) is recorded; logs when absent. */
  readonly journal?: ActionJournal;
  /**
   * How long to look for a set whose CreateSnapshots answer was lost: the waits before
   * each re-read of the run's snapshots (EC2's describes are eventually consistent).
   * Defaults to {@link RECONCILE_WAITS_MS}; `sleep` is injectable for tests.
   */
  readonly reconcile?: {
    readonly waitsMs?: readonly number[];
    readonly sleep?: (ms: number) => Promise<void>;
  };
}

/**
 * The waits before each re-read while looking for a set whose CreateSnapshots answer
 * was lost: the first read is at once, the last 15 s later. EC2 documents that a
 * describe after a create may not list the new resource for a while, and advises
 * describing again with exponential back-off. A wait never takes more than half the
 * invocation's time left before the safety margin.
 */
export const RECONCILE_WAITS_MS: readonly number[] = [1_000, 2_000, 4_000, 8_000];

/**
 * The backup use case:
 * 1. resolve the schedule and the slot it serves;
 * 2. read the opted-in instances and the volumes tagged to skip (paginated, once);
 * 3. decide per instance with the pure planner;
 * 4. create one crash-consistent snapshot set per due instance, a bounded number at
 *    a time, so that one instance's failure never stops the others;
 * 5. return the report: `succeeded`, `partial` (any instance failed or had a bad tag),
 *    or `failed` (nothing could be done).
 *
 * @example
 * const report = await runBackupJob({ schedule: 'daily', dryRun: false, trigger: 'schedule' }, deps);
 */
export async function runBackupJob(
  input: BackupJobInput,
  deps: BackupJobDependencies,
): Promise<BackupReport> {
  const { config, logger } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const journal = deps.journal ?? logJournal(logger);
  const startedAt = deps.clock();
  const schedule = resolveJobSchedule(config.catalog, input.schedule, config.manualRetainDays);
  const slot = formatSlot(input.scheduledTime ?? previousFireTime(schedule, startedAt));
  const base = {
    runId: deps.runId,
    job: 'backup' as const,
    deployment: config.deployment,
    schedule: schedule.name,
    slot,
    trigger: input.trigger,
    dryRun: input.dryRun,
    startedAt: startedAt.toISOString(),
  };
  logger.info('backup run started', base);

  let instances: InstanceFacts[];
  let volumeTags: Map<string, Readonly<Record<string, string>>>;
  let slotSets = new Map<string, Map<string, SnapshotFacts[]>>();
  try {
    instances = [];
    const named = input.instanceIds ?? input.batch?.instanceIds;
    const source = named
      ? deps.ec2.listInstancesByIds(named)
      : deps.ec2.listInstancesWithTagKey(config.keys.backup);
    for await (const instance of source) {
      instances.push(instance);
    }
    volumeTags = input.batch
      ? new Map(Object.entries(input.batch.volumeTags ?? {}))
      : await deps.ec2.volumeTagsWithKey(config.keys.skip);
    if (input.resuming) {
      slotSets = await readSlotSets(deps, schedule.name, slot, input.batch?.instanceIds);
    }
  } catch (error) {
    const failure = toAwsCallError('Describe', error);
    const report: BackupReport = {
      ...base,
      status: 'failed',
      endedAt: deps.clock().toISOString(),
      counts: {
        due: 0,
        backedUp: 0,
        skipped: 0,
        failed: 0,
        snapshots: 0,
        covered: 0,
        deferred: 0,
        duplicatesRemoved: 0,
      },
      ...(input.historyUnavailable ? { warnings: [HISTORY_UNAVAILABLE] } : {}),
      instances: [],
      error: { code: failure.code, message: failure.message },
    };
    logger.error('backup run failed: could not read the fleet', { report });
    metrics.count('BackupRunsFailed', 1);
    return report;
  }

  // An instance whose opt-in key misses ours (`Snapkeeper:backup`) is never listed
  // above: the whole-fleet runs look at every tagged instance once and report each.
  const mistagged: InstanceBackupResult[] = [];
  const scanWarnings: string[] = [];
  if (!(input.instanceIds ?? input.batch?.instanceIds)) {
    try {
      mistagged.push(...(await findMistaggedInstances(instances, deps)));
    } catch (error) {
      scanWarnings.push(
        `tag keys that miss ${config.keys.backup} could not be checked (${toAwsCallError('DescribeInstances', error).message}); the backups were made`,
      );
    }
  }

  const context: BackupContext = {
    keys: config.keys,
    catalog: config.catalog,
    schedule: schedule.name,
    slot,
    deployment: config.deployment,
    runId: deps.runId,
    createdAt: startedAt.toISOString(),
    copyTags: config.copyTags,
    volumeTags,
    ...(input.instanceIds ? { ignoreOptIn: true } : {}),
  };
  const decisions = instances
    .map((instance) => planInstanceBackup(instance, context))
    .filter((d): d is Exclude<InstanceBackupDecision, { kind: 'not-due' }> => d.kind !== 'not-due');

  // A resumed slot: instances with a set already are covered; extra sets are removed.
  const duplicates = await removeDuplicateSets(slotSets, input.dryRun, deps, journal);
  const margin = input.safetyMarginMs ?? 0;
  // The rate limiter's bucket sets the pace: the number in flight adapts (see PacedPool),
  // and what was made is recorded behind the creates, in batches.
  const pool = new PacedPool({
    initial: config.backupConcurrency,
    ceiling: config.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
  });
  const behind = new Behind();
  const results = await Promise.all(
    decisions.map((decision) =>
      pool.run(
        async (): Promise<InstanceBackupResult> => {
          const existing = slotSets.get(decision.instanceId);
          if (existing && existing.size > 0 && decision.kind === 'backup') {
            const [runId, set] = [...existing.entries()].sort(oldestSetFirst)[0] as [
              string,
              SnapshotFacts[],
            ];
            const covered: InstanceBackupResult = {
              instanceId: decision.instanceId,
              name: decision.name,
              outcome: 'covered',
              reason: `already backed up for this slot by run ${runId}`,
              snapshots: set.map((s) => ({
                volumeId: s.volumeId,
                deviceName: decision.request.included.find((v) => v.volumeId === s.volumeId)
                  ?.deviceName,
                snapshotId: s.snapshotId,
                sizeGiB: s.sizeGiB,
                state: s.state,
              })),
            };
            // The run that made them may have died before recording them: record them now.
            await recordCreated(
              covered,
              deps,
              journal,
              `made by run ${runId}; recorded by the run that resumed the slot`,
              behind,
            );
            return covered;
          }
          if (decision.kind === 'backup' && input.remainingMs && input.remainingMs() < margin) {
            return {
              instanceId: decision.instanceId,
              name: decision.name,
              outcome: 'deferred',
              reason: 'not started: too little time left in this invocation; the next one resumes',
            };
          }
          // What was made is recorded inside, as soon as the create answered.
          return executeDecision(
            decision,
            input.dryRun,
            deps,
            journal,
            () => (input.remainingMs ? input.remainingMs() - margin : Number.POSITIVE_INFINITY),
            behind,
          );
        },
        (r) => r.outcome === 'failed' && isThrottleCode(r.error?.code),
      ),
    ),
  );
  // Every creation record written behind the creates is written (or its failure logged) first.
  await behind.settled(journal);

  if (input.instanceIds) {
    const found = new Set(instances.map((i) => i.instanceId));
    for (const id of new Set(input.instanceIds)) {
      if (found.has(id)) continue;
      results.push({
        instanceId: id,
        outcome: 'failed',
        error: {
          code: 'UnknownInstance',
          message: `instance ${id} does not exist in this account and region, or is terminated`,
        },
      });
    }
  }
  results.push(...mistagged);
  const counts = {
    due: results.length,
    backedUp: results.filter((r) => r.outcome === 'created').length,
    ...(input.dryRun ? { wouldBackUp: results.filter((r) => r.outcome === 'planned').length } : {}),
    skipped: results.filter((r) => r.outcome === 'skipped').length,
    failed: results.filter((r) => r.outcome === 'failed').length,
    snapshots: results.reduce(
      (n, r) => n + (r.outcome === 'created' ? (r.snapshots?.length ?? 0) : 0),
      0,
    ),
    covered: results.filter((r) => r.outcome === 'covered').length,
    deferred: results.filter((r) => r.outcome === 'deferred').length,
    duplicatesRemoved: duplicates.filter((d) => d.outcome === 'deleted').length,
  };
  const remaining = results.filter((r) => r.outcome === 'deferred').map((r) => r.instanceId);
  const warnings = [...(input.historyUnavailable ? [HISTORY_UNAVAILABLE] : []), ...scanWarnings];
  // A duplicate that could not be deleted (failed, or pending and kept) is an error: the alert fires.
  const hasErrors =
    warnings.length > 0 ||
    duplicates.some((d) => d.outcome === 'failed' || d.outcome === 'kept') ||
    results.some(
      (r) =>
        r.outcome === 'failed' ||
        r.error !== undefined ||
        (r.problems?.length ?? 0) > 0 ||
        (r.duplicates ?? []).some((d) => d.outcome !== 'deleted'),
    );
  const nothingDone =
    counts.failed > 0 &&
    counts.backedUp + (counts.wouldBackUp ?? 0) === 0 &&
    counts.skipped === 0 &&
    counts.covered === 0;
  const status = runStatus({
    failed: nothingDone,
    incomplete: remaining.length > 0,
    hasErrors,
  });
  const report: BackupReport = {
    ...base,
    status,
    endedAt: deps.clock().toISOString(),
    counts,
    instances: results,
    ...(duplicates.length > 0 ? { duplicates } : {}),
    ...(remaining.length > 0 ? { remaining } : {}),
    ...(warnings.length > 0 ? { warnings } : {}),
  };

  metrics.count('SnapshotsCreated', counts.snapshots);
  metrics.count('InstancesBackedUp', input.dryRun ? 0 : counts.backedUp);
  metrics.count('InstancesSkipped', counts.skipped);
  metrics.count('InstancesFailed', counts.failed);
  metrics.count(status === 'failed' ? 'BackupRunsFailed' : 'BackupRunsSucceeded', 1);
  const log = status === 'succeeded' ? logger.info : logger.warn;
  log.call(logger, `backup run ${status}`, { report: reportForLog(report) });
  return report;
}

async function executeDecision(
  decision: Exclude<InstanceBackupDecision, { kind: 'not-due' }>,
  dryRun: boolean,
  deps: BackupJobDependencies,
  journal: ActionJournal,
  timeLeftMs: () => number,
  behind?: Behind,
): Promise<InstanceBackupResult> {
  const { logger } = deps;
  const problems = decision.problems.map((p) => p.message);
  for (const message of problems) {
    logger.warn('tag problem', { instanceId: decision.instanceId, problem: message });
  }
  const withProblems = problems.length > 0 ? { problems } : {};
  if (decision.kind === 'skip') {
    logger.info('instance skipped', { instanceId: decision.instanceId, reason: decision.reason });
    return {
      instanceId: decision.instanceId,
      name: decision.name,
      outcome: 'skipped',
      reason: decision.reason,
      ...(decision.isError ? { error: { code: 'InvalidTag', message: decision.reason } } : {}),
      ...withProblems,
    };
  }

  const { request } = decision;
  const excludedVolumes = request.excluded.map((e) => ({
    volumeId: e.volume.volumeId,
    deviceName: e.volume.deviceName,
    reason: e.reason,
  }));
  const devices = new Map(request.included.map((v) => [v.volumeId, v.deviceName]));
  const excludedIds = new Set(excludedVolumes.map((e) => e.volumeId));
  if (dryRun) {
    return {
      instanceId: decision.instanceId,
      name: decision.name,
      outcome: 'planned',
      snapshots: request.included.map((v) => ({
        volumeId: v.volumeId,
        deviceName: v.deviceName,
        state: 'planned',
      })),
      ...(excludedVolumes.length > 0 ? { excludedVolumes } : {}),
      ...withProblems,
    };
  }

  const toResults = (made: readonly CreatedSnapshot[]): SnapshotResult[] =>
    made.map((s) => ({
      volumeId: s.volumeId,
      deviceName:
        devices.get(s.volumeId) ??
        excludedVolumes.find((e) => e.volumeId === s.volumeId)?.deviceName,
      snapshotId: s.snapshotId,
      sizeGiB: s.sizeGiB,
      state: s.state,
      ...(excludedIds.has(s.volumeId) ? { unexpected: true as const } : {}),
    }));

  let answered: CreatedSnapshot[] = [];
  let failure: AwsCallError | undefined;
  let uncertain: number;
  try {
    answered = await deps.ec2.createSnapshotSet(request);
    uncertain = Math.max(
      0,
      ...answered.map((s) => s.uncertainAttempts ?? Math.max(0, (s.attempts ?? 1) - 1)),
    );
  } catch (error) {
    failure = toAwsCallError('CreateSnapshots', error);
    // A create that failed after retries may still have made a set whose answer was lost.
    uncertain =
      error instanceof CreateSnapshotSetError
        ? error.uncertainAttempts
        : Number(RETRIED_FAILURES.test(failure.code));
  }
  // What the create answered is recorded at once, whatever happens after (issue 15 #8).
  if (answered.length > 0) {
    await recordCreated(
      { instanceId: decision.instanceId, outcome: 'created', snapshots: toResults(answered) },
      deps,
      journal,
      undefined,
      behind,
    );
  }

  let created = answered;
  let duplicates: RetriedDuplicate[] = [];
  let reconcileError: ReportedError | undefined;
  if (uncertain > 0) {
    const reconciled = await reconcileRetriedSet(
      decision.instanceId,
      request.included.map((v) => v.volumeId),
      answered,
      uncertain,
      deps,
      journal,
      timeLeftMs,
    );
    duplicates = reconciled.duplicates;
    reconcileError = reconciled.error;
    const adopted = reconciled.kept.filter(
      (s) => !answered.some((a) => a.snapshotId === s.snapshotId),
    );
    if (adopted.length > 0) {
      await recordCreated(
        { instanceId: decision.instanceId, outcome: 'created', snapshots: toResults(adopted) },
        deps,
        journal,
        'scheduled backup; made by a CreateSnapshots attempt whose answer was lost, found by the run',
      );
    }
    created = [...answered, ...adopted];
    if (failure && adopted.length > 0) {
      logger.warn('CreateSnapshots failed after its retries, but a set was made: adopted', {
        instanceId: decision.instanceId,
        code: failure.code,
      });
    }
  }

  if (failure && created.length === 0) {
    const { code, message } = failure;
    logger.error('snapshot set failed', {
      instanceId: decision.instanceId,
      code,
      error: message,
    });
    return {
      instanceId: decision.instanceId,
      name: decision.name,
      outcome: 'failed',
      error: { code, message },
      ...(excludedVolumes.length > 0 ? { excludedVolumes } : {}),
      ...(duplicates.length > 0 ? { duplicates } : {}),
      ...withProblems,
    };
  }

  const snapshots = toResults(created);
  for (const snapshot of snapshots) {
    if (snapshot.unexpected) {
      logger.warn('EC2 snapshotted a volume the request excluded', {
        instanceId: decision.instanceId,
        volumeId: snapshot.volumeId,
        snapshotId: snapshot.snapshotId,
      });
    }
  }
  logger.info('snapshot set created', {
    instanceId: decision.instanceId,
    snapshotIds: snapshots.map((s) => s.snapshotId),
  });
  return {
    instanceId: decision.instanceId,
    name: decision.name,
    outcome: 'created',
    snapshots,
    ...(excludedVolumes.length > 0 ? { excludedVolumes } : {}),
    ...(duplicates.length > 0 ? { duplicates } : {}),
    ...(reconcileError ? { error: reconcileError } : {}),
    ...withProblems,
  };
}

/** EC2 filter values take wildcards: this `tag-key` value lists every tagged instance. */
export const ANY_TAG_KEY = '*';

/**
 * The instances not listed by the opt-in key whose tags hold a key that misses an opt-in
 * key (`Snapkeeper:backup`, `snapkeeper:backups`, `snapkeeper:ami `): reported as skipped
 * with an `InvalidTag` error naming each key and the fix. Never backed up: the safe side
 * is to report, not to guess what an unread key meant.
 */
async function findMistaggedInstances(
  listed: readonly InstanceFacts[],
  deps: BackupJobDependencies,
): Promise<InstanceBackupResult[]> {
  const { keys } = deps.config;
  const seen = new Set(listed.map((i) => i.instanceId));
  const results: InstanceBackupResult[] = [];
  for await (const instance of deps.ec2.listInstancesWithTagKey(ANY_TAG_KEY)) {
    if (seen.has(instance.instanceId)) continue;
    seen.add(instance.instanceId);
    const misses = nearMissProblems(instance.instanceId, instance.tags, keys, [
      keys.backup,
      keys.ami,
    ]);
    if (misses.length === 0) continue;
    const problems = misses.map((p) => p.message);
    for (const problem of problems) {
      deps.logger.warn('tag problem', { instanceId: instance.instanceId, problem });
    }
    const reason = `not opted in: ${problems.join('; ')}`;
    results.push({
      instanceId: instance.instanceId,
      name: instance.tags.Name,
      outcome: 'skipped',
      reason,
      error: { code: 'InvalidTag', message: reason },
      problems,
    });
  }
  return results;
}

const HISTORY_UNAVAILABLE =
  'the run history could not be written: backups were made anyway (documented choice), but this run is not recorded and a duplicate delivery may not be detected';

async function readSlotSets(
  deps: BackupJobDependencies,
  schedule: string,
  slot: string,
  instanceIds?: readonly string[],
): Promise<Map<string, Map<string, SnapshotFacts[]>>> {
  const { keys, deployment } = deps.config;
  const sets = new Map<string, Map<string, SnapshotFacts[]>>();
  const filter: Record<string, string | readonly string[]> = {
    [keys.managed]: 'true',
    [keys.deployment]: deployment,
    [keys.schedule]: schedule,
    [keys.slot]: slot,
  };
  // A batch reads only its own instances' sets (EC2 takes up to 200 values a filter).
  const chunks: (readonly string[] | undefined)[] = [];
  if (instanceIds === undefined) chunks.push(undefined);
  else for (let i = 0; i < instanceIds.length; i += 200) chunks.push(instanceIds.slice(i, i + 200));
  for (const chunk of chunks) {
    const tags = chunk ? { ...filter, [keys.instanceId]: chunk } : filter;
    for await (const snapshot of deps.ec2.listSnapshotsTagged(tags)) {
      // Neither a disaster-recovery copy of the slot (another region's deployment of this
      // stage copies with the source's tags) nor an AMI's snapshot is a set of this slot:
      // never covered by them, never removed as duplicates.
      if (isDisasterRecoveryCopy(snapshot.tags, keys) || imageOfSnapshot(snapshot.description))
        continue;
      addSlotSnapshot(sets, snapshot, keys.instanceId, keys.runId);
    }
  }
  return sets;
}

function addSlotSnapshot(
  sets: Map<string, Map<string, SnapshotFacts[]>>,
  snapshot: SnapshotFacts,
  instanceKey: string,
  runKey: string,
): void {
  const instanceId = snapshot.tags[instanceKey];
  const runId = snapshot.tags[runKey] ?? 'unknown';
  if (!instanceId) return;
  const byRun = sets.get(instanceId) ?? new Map<string, SnapshotFacts[]>();
  const set = byRun.get(runId);
  if (set) set.push(snapshot);
  else byRun.set(runId, [snapshot]);
  sets.set(instanceId, byRun);
}

function oldestSetFirst(a: [string, SnapshotFacts[]], b: [string, SnapshotFacts[]]): number {
  const start = (set: SnapshotFacts[]) => Math.min(...set.map((s) => s.startTime.getTime()));
  return start(a[1]) - start(b[1]) || a[0].localeCompare(b[0]);
}

async function removeDuplicateSets(
  slotSets: Map<string, Map<string, SnapshotFacts[]>>,
  dryRun: boolean,
  deps: BackupJobDependencies,
  journal: ActionJournal,
): Promise<DuplicateSet[]> {
  const duplicates: DuplicateSet[] = [];
  for (const [instanceId, byRun] of slotSets) {
    if (byRun.size < 2) continue;
    const [keep, ...extra] = [...byRun.entries()].sort(oldestSetFirst);
    for (const [runId, set] of extra) {
      const snapshotIds = set.map((s) => s.snapshotId);
      if (dryRun) {
        duplicates.push({
          instanceId,
          runId,
          kept: keep?.[0] ?? '',
          snapshotIds,
          outcome: 'planned',
        });
        continue;
      }
      if (set.some((s) => s.state !== 'completed')) {
        // Pending snapshots are never deleted: kept, recorded, and the run is partial.
        deps.logger.warn('duplicate snapshot set for the slot is still pending: kept', {
          instanceId,
          runId,
        });
        await recordDuplicateSet(instanceId, runId, set, 'still pending, so kept', deps, journal);
        duplicates.push({ instanceId, runId, kept: keep?.[0] ?? '', snapshotIds, outcome: 'kept' });
        continue;
      }
      let outcome: DuplicateSet['outcome'] = 'deleted';
      for (const snapshot of set) {
        const reason = `duplicate set for the slot from run ${runId}; kept the set of run ${keep?.[0]}`;
        const attempt = await deleteSnapshotRecorded(
          {
            runId: deps.runId,
            job: 'backup',
            action: 'delete-snapshot',
            resourceId: snapshot.snapshotId,
            reason,
            details: { instanceId, volumeId: snapshot.volumeId },
          },
          () => deps.ec2.deleteSnapshot(snapshot.snapshotId),
          journal,
          deps.logger,
          () => reason,
        );
        if (attempt.kind !== 'deleted' && attempt.kind !== 'gone') outcome = 'failed';
      }
      if (outcome === 'failed') {
        await recordDuplicateSet(
          instanceId,
          runId,
          set,
          'its deletion failed, so it is kept',
          deps,
          journal,
        );
      }
      deps.logger.warn('duplicate snapshot set for the slot', { instanceId, runId, outcome });
      duplicates.push({ instanceId, runId, kept: keep?.[0] ?? '', snapshotIds, outcome });
    }
  }
  return duplicates;
}

/** Records a duplicate set left in place as made (by the run that made it), so that nothing of it is unknown. */
async function recordDuplicateSet(
  instanceId: string,
  runId: string,
  set: readonly SnapshotFacts[],
  why: string,
  deps: BackupJobDependencies,
  journal: ActionJournal,
): Promise<void> {
  await recordCreated(
    {
      instanceId,
      outcome: 'created',
      snapshots: set.map((s) => ({
        volumeId: s.volumeId,
        snapshotId: s.snapshotId,
        sizeGiB: s.sizeGiB,
        state: s.state,
      })),
    },
    deps,
    journal,
    `duplicate set for the slot, made by run ${runId}; ${why}`,
  );
}

async function recordCreated(
  result: InstanceBackupResult,
  deps: BackupJobDependencies,
  journal: ActionJournal,
  reason = 'scheduled backup',
  behind?: Behind,
): Promise<void> {
  for (const snapshot of result.snapshots ?? []) {
    if (!snapshot.snapshotId) continue;
    const written = journal
      .record({
        runId: deps.runId,
        job: 'backup',
        action: 'create-snapshot',
        resourceId: snapshot.snapshotId,
        phase: 'after',
        outcome: 'done',
        reason,
        details: {
          instanceId: result.instanceId,
          volumeId: snapshot.volumeId,
          deviceName: snapshot.deviceName,
          sizeGiB: snapshot.sizeGiB,
        },
      })
      .catch((error: unknown) =>
        deps.logger.error('snapshot made but not recorded', {
          snapshotId: snapshot.snapshotId,
          error: error instanceof Error ? error.message : String(error),
        }),
      );
    // With `behind` the records of a set go out together, written behind the next creates.
    if (behind) behind.add(written);
    else await written;
  }
}

/**
 * Failures after which a set may exist all the same (the SDK retried, or an answer was
 * lost), for a gateway that does not count its uncertain attempts.
 */
const RETRIED_FAILURES =
  /^(TimeoutError|RequestTimeout|RequestTimeoutException|ETIMEDOUT|ECONNRESET|EPIPE|InternalError|InternalFailure|ServiceUnavailable|Unavailable|RequestLimitExceeded|UnknownError)$/;

/** What the reconciliation of a retried CreateSnapshots found and did. */
interface Reconciled {
  /** One snapshot per volume: the answered one, else the first made. */
  readonly kept: CreatedSnapshot[];
  readonly duplicates: RetriedDuplicate[];
  /** Why the run cannot say the instance has exactly one set; the run is partial. */
  readonly error?: ReportedError | undefined;
}

/**
 * After a CreateSnapshots some of whose attempts may have made a set whose answer was
 * lost (`uncertain` of them; CreateSnapshots takes no client token, so the run id tag
 * on every snapshot of the set plays its part): lists the run's snapshots of the
 * instance, and, since EC2's describes are eventually consistent, lists again after
 * each of the waits until every volume shows all the sets that can exist (the answered
 * one and one per uncertain attempt) or the waits run out (or a wait would take more
 * than half the invocation's time left).
 * It keeps one snapshot per volume (the one the answer named, else the first made) and
 * deletes the extra copies, recorded before and after. A pending extra copy is kept and
 * reported: pending snapshots are never deleted.
 *
 * Every fallback reports: a listing that fails every time, or waits that run out with
 * fewer sets than the uncertain attempts could have made, set `error` (the run is
 * partial), naming the run id tag an extra set would carry.
 */
async function reconcileRetriedSet(
  instanceId: string,
  volumeIds: readonly string[],
  answered: readonly CreatedSnapshot[],
  uncertain: number,
  deps: BackupJobDependencies,
  journal: ActionJournal,
  timeLeftMs: () => number,
): Promise<Reconciled> {
  const { keys, deployment } = deps.config;
  const waits = deps.reconcile?.waitsMs ?? RECONCILE_WAITS_MS;
  const sleep =
    deps.reconcile?.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const answeredIds = new Set(answered.map((s) => s.snapshotId));
  // The sets that can exist for each volume: the answered one, and one per uncertain attempt.
  const possible = (answered.length > 0 ? 1 : 0) + uncertain;
  // The volumes the answer named (EC2 makes one snapshot per volume), else those requested.
  const volumes = new Set(answered.length > 0 ? answered.map((s) => s.volumeId) : volumeIds);

  let found: SnapshotFacts[] | undefined;
  let lastError: AwsCallError | undefined;
  let reads = 0;
  let waited = 0;
  for (let round = 0; ; round += 1) {
    try {
      reads += 1;
      const listed: SnapshotFacts[] = [];
      for await (const snapshot of deps.ec2.listSnapshotsTagged({
        [keys.managed]: 'true',
        [keys.deployment]: deployment,
        [keys.runId]: deps.runId,
        [keys.instanceId]: instanceId,
      })) {
        listed.push(snapshot);
      }
      found = listed;
      lastError = undefined;
    } catch (error) {
      lastError = toAwsCallError('DescribeSnapshots', error);
      deps.logger.warn('could not list the run’s snapshots of the instance; trying again', {
        instanceId,
        code: lastError.code,
      });
    }
    if (found && allSetsVisible(found, answered, volumes, possible)) break;
    const wait = waits[round];
    // Half the time left stays for the rest of the run.
    if (wait === undefined || wait > timeLeftMs() / 2) break;
    await sleep(wait);
    waited += wait;
  }

  const kept: CreatedSnapshot[] = [...answered];
  const duplicates: RetriedDuplicate[] = [];
  if (!found) {
    const code = lastError?.code ?? 'UnknownError';
    return {
      kept,
      duplicates,
      error: {
        code,
        message: `could not list this run’s snapshots of ${instanceId} (${reads} tries over ${seconds(waited)}: ${lastError?.message ?? code}) to look for a second set from a CreateSnapshots attempt whose answer was lost; ${answered.length > 0 ? 'the answered set is recorded; ' : ''}look for snapshots tagged ${keys.runId}=${deps.runId} and ${keys.instanceId}=${instanceId}`,
      },
    };
  }

  const byVolume = new Map<string, SnapshotFacts[]>();
  for (const snapshot of found) {
    byVolume.set(snapshot.volumeId, [...(byVolume.get(snapshot.volumeId) ?? []), snapshot]);
  }
  for (const [volumeId, sets] of byVolume) {
    const answeredHere = answered.find((s) => s.volumeId === volumeId);
    const ordered = [...sets].sort(
      (a, b) =>
        a.startTime.getTime() - b.startTime.getTime() || a.snapshotId.localeCompare(b.snapshotId),
    );
    // The answered snapshot is kept even when the describe does not list it yet.
    const keepId = answeredHere?.snapshotId ?? ordered[0]?.snapshotId;
    const keep = ordered.find((s) => s.snapshotId === keepId);
    if (keep && !answeredIds.has(keep.snapshotId)) {
      kept.push({
        snapshotId: keep.snapshotId,
        volumeId,
        sizeGiB: keep.sizeGiB,
        state: keep.state,
      });
    }
    for (const snapshot of ordered) {
      if (snapshot.snapshotId === keepId) continue;
      if (snapshot.state !== 'completed') {
        duplicates.push({ snapshotId: snapshot.snapshotId, volumeId, outcome: 'kept' });
        continue;
      }
      const reason = `duplicate of ${keepId} from a retried CreateSnapshots whose answer was lost`;
      const attempt = await deleteSnapshotRecorded(
        {
          runId: deps.runId,
          job: 'backup',
          action: 'delete-snapshot',
          resourceId: snapshot.snapshotId,
          reason,
          details: { instanceId, volumeId },
        },
        () => deps.ec2.deleteSnapshot(snapshot.snapshotId),
        journal,
        deps.logger,
        () => reason,
      );
      duplicates.push({
        snapshotId: snapshot.snapshotId,
        volumeId,
        outcome: attempt.kind === 'deleted' || attempt.kind === 'gone' ? 'deleted' : 'failed',
      });
    }
  }
  // An extra copy left in place is recorded as made by this run, so that nothing of it is unknown.
  for (const duplicate of duplicates) {
    if (duplicate.outcome === 'deleted') continue;
    await recordCreated(
      {
        instanceId,
        outcome: 'created',
        snapshots: [
          { volumeId: duplicate.volumeId, snapshotId: duplicate.snapshotId, state: 'extra' },
        ],
      },
      deps,
      journal,
      duplicate.outcome === 'kept'
        ? `extra copy from a retried CreateSnapshots whose answer was lost; still pending, so kept (pending snapshots are never deleted)`
        : `extra copy from a retried CreateSnapshots whose answer was lost; its deletion failed, so it is kept`,
    );
  }

  // Fewer sets than the lost answers could have made: one may still appear (eventual consistency).
  if (kept.length === 0 || allSetsVisible(found, answered, volumes, possible)) {
    return { kept, duplicates };
  }
  return {
    kept,
    duplicates,
    error: {
      code: 'DuplicateUnconfirmed',
      message: `CreateSnapshots for ${instanceId} was retried, and ${uncertain} attempt${uncertain === 1 ? '' : 's'} may have made a set whose answer was lost; after ${reads} listings over ${seconds(waited)} fewer sets are visible than could exist, and EC2's describes are eventually consistent: look for snapshots tagged ${keys.runId}=${deps.runId} and ${keys.instanceId}=${instanceId} other than ${kept.map((s) => s.snapshotId).join(', ')}`,
    },
  };
}

/** Whether every volume shows every set that can exist (an answered snapshot counts even before it is listed). */
function allSetsVisible(
  found: readonly SnapshotFacts[],
  answered: readonly CreatedSnapshot[],
  volumes: ReadonlySet<string>,
  possible: number,
): boolean {
  for (const volumeId of volumes) {
    const seen = new Set(found.filter((s) => s.volumeId === volumeId).map((s) => s.snapshotId));
    for (const snapshot of answered)
      if (snapshot.volumeId === volumeId) seen.add(snapshot.snapshotId);
    if (seen.size < possible) return false;
  }
  return true;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}
