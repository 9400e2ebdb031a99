/**
 * The backup run (issue 20: a reader can hold it): read the fleet, decide per instance
 * with the pure planner, create one crash-consistent snapshot set per due instance at
 * the bucket's pace, and report. What makes a slot's backup happen exactly once (a
 * resumed slot's own sets, a set whose CreateSnapshots answer was lost, the recording
 * of what a create answered) is in `backupIdempotency.ts`; the run's contract (input,
 * dependencies, report) in `backupReport.ts`, re-exported here.
 */
import type { CreatedSnapshot } from '../aws/Ec2Gateway.ts';
import type { AwsCallError } from '../aws/errors.ts';
import { toAwsCallError } from '../aws/errors.ts';
import {
  type BackupContext,
  formatSlot,
  type InstanceFacts,
  planInstanceBackup,
  type SnapshotSetRequest,
} from '../domain/backupPlan.ts';
import { skipInstance, skippedResult } from '../domain/instanceDecision.ts';
import {
  previousFireTime,
  resolveJobSchedule,
  type ScheduleDefinition,
} from '../domain/schedules.ts';
import { nearMissProblems } from '../domain/tagKeyTypos.ts';
import type { TagMap } from '../domain/tagPolicy.ts';
import {
  consistencyCounts,
  consistencyFields,
  consistencySkipped,
  makeSetConsistently,
  plannedConsistency,
} from './backupConsistency.ts';
import {
  coveredResult,
  type DueDecision,
  readSlotSets,
  reconcileRetriedSet,
  recordCreated,
  removeDuplicateSets,
  type SlotSets,
  uncertainAttemptsOf,
} from './backupIdempotency.ts';
import type {
  BackupJobDependencies,
  BackupJobInput,
  BackupReport,
  DuplicateSet,
  InstanceBackupResult,
  RetriedDuplicate,
  SnapshotResult,
} from './backupReport.ts';
import { RECONCILE_WAITS_MS } from './backupReport.ts';
import { Behind } from './historyPipeline.ts';
import { DEFAULT_MAX_IN_FLIGHT, isThrottleCode, PacedPool, stepPool } from './pacedPool.ts';
import type { ActionJournal, MetricsPort, ReportedError } from './ports.ts';
import { openRun } from './runOpening.ts';
import { closeRun, runStatus } from './runReport.ts';
import { type BackupLocks, lockBackupSets, withLocks } from './snapshotLocks.ts';
import { findVssSet } from './vssSnapshotSet.ts';

export * from './backupReport.ts';

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
  const { config } = deps;
  const schedule = resolveJobSchedule(config.catalog, input.schedule, config.manualRetainDays);
  const run = openRun('backup', 'backup run', input, deps, (startedAt) => ({
    schedule: schedule.name,
    slot: formatSlot(input.scheduledTime ?? previousFireTime(schedule, startedAt)),
  }));
  const { base, journal } = run;

  let fleet: Fleet;
  try {
    fleet = await readFleet(input, deps, schedule, base.slot);
  } catch (error) {
    return failedToRead(input, deps, run, error);
  }
  // An instance whose opt-in key misses ours (`Snapkeeper:backup`) is never listed
  // above: the whole-fleet runs look at every tagged instance once and report each.
  const scan = await scanMistagged(input, deps, fleet.instances);

  const context: BackupContext = {
    keys: config.keys,
    catalog: config.catalog,
    schedule: schedule.name,
    slot: base.slot,
    deployment: config.deployment,
    runId: deps.runId,
    createdAt: run.startedAt.toISOString(),
    copyTags: config.copyTags,
    volumeTags: fleet.volumeTags,
    ...(input.instanceIds ? { ignoreOptIn: true } : {}),
  };
  const decisions = fleet.instances
    .map((instance) => planInstanceBackup(instance, context))
    .filter((d): d is DueDecision => d.kind !== 'not-due');

  // A resumed slot: instances with a set already are covered; extra sets are removed.
  const duplicates = await removeDuplicateSets(fleet.slotSets, input.dryRun, deps, journal);
  const results = await backUpEach(decisions, fleet.slotSets, input, deps, journal);
  results.push(...unknownInstances(input, fleet.instances), ...scan.mistagged);
  // Each new set, made and recorded, is locked when its schedule or instance says so.
  const locks = await lockSets(results, fleet.instances, schedule, input.dryRun, deps, journal);
  const report = withLocks(summarise(results, duplicates, scan.warnings, input, deps, base), locks);
  return closeRun(report, {
    label: 'backup run',
    metrics: run.metrics,
    logger: deps.logger,
    counts: {
      SnapshotsCreated: report.counts.snapshots,
      InstancesBackedUp: input.dryRun ? 0 : report.counts.backedUp,
      InstancesSkipped: report.counts.skipped,
      InstancesFailed: report.counts.failed,
    },
    runs: { succeeded: 'BackupRunsSucceeded', failed: 'BackupRunsFailed' },
  });
}

/** The lock step over the run's sets; nothing without the tiers port. */
async function lockSets(
  results: readonly InstanceBackupResult[],
  instances: readonly InstanceFacts[],
  schedule: ScheduleDefinition,
  dryRun: boolean,
  deps: BackupJobDependencies,
  journal: ActionJournal,
): Promise<BackupLocks> {
  if (!deps.tiers) return { outcomes: [], problems: [] };
  const { config } = deps;
  return lockBackupSets(
    results,
    new Map(instances.map((i) => [i.instanceId, i])),
    schedule,
    dryRun,
    {
      keys: config.keys,
      knownSchedules: [...config.catalog.schedules.keys()],
      allowComplianceLocks: config.allowComplianceLocks ?? false,
    },
    {
      tiers: deps.tiers,
      journal,
      logger: deps.logger,
      runId: deps.runId,
      job: 'backup',
      pool: stepPool(config.maxInFlight),
    },
  );
}

/** The report's header: the run, the schedule and the slot it serves. */
type BackupHeader = Pick<
  BackupReport,
  'runId' | 'job' | 'deployment' | 'schedule' | 'slot' | 'trigger' | 'dryRun' | 'startedAt'
>;

/** What a run reads before it decides. */
interface Fleet {
  readonly instances: InstanceFacts[];
  readonly volumeTags: Map<string, TagMap>;
  /** A resumed slot's sets (empty unless resuming). */
  readonly slotSets: SlotSets;
}

/** Reads the instances (named, or opted in), the skip-tagged volumes and, when resuming, the slot's sets. */
async function readFleet(
  input: BackupJobInput,
  deps: BackupJobDependencies,
  schedule: ScheduleDefinition,
  slot: string,
): Promise<Fleet> {
  const { keys } = deps.config;
  const instances: InstanceFacts[] = [];
  const named = input.instanceIds ?? input.batch?.instanceIds;
  const source = named
    ? deps.ec2.listInstancesByIds(named)
    : deps.ec2.listInstancesWithTagKey(keys.backup);
  for await (const instance of source) {
    instances.push(instance);
  }
  const volumeTags = input.batch
    ? new Map(Object.entries(input.batch.volumeTags ?? {}))
    : await deps.ec2.volumeTagsWithKey(keys.skip);
  const slotSets: SlotSets = input.resuming
    ? await readSlotSets(deps, schedule.name, slot, input.batch?.instanceIds)
    : new Map();
  return { instances, volumeTags, slotSets };
}

/** The report of a run that could not read the fleet: failed, nothing done. */
function failedToRead(
  input: BackupJobInput,
  deps: BackupJobDependencies,
  { base, metrics }: { readonly base: BackupHeader; readonly metrics: MetricsPort },
  error: unknown,
): BackupReport {
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
  deps.logger.error('backup run failed: could not read the fleet', { report });
  metrics.count('BackupRunsFailed', 1);
  return report;
}

/** The whole-fleet runs' look for tag keys that miss ours; a failed look is a warning, never a failed run. */
async function scanMistagged(
  input: BackupJobInput,
  deps: BackupJobDependencies,
  instances: readonly InstanceFacts[],
): Promise<{ mistagged: InstanceBackupResult[]; warnings: string[] }> {
  if (input.instanceIds ?? input.batch?.instanceIds) return { mistagged: [], warnings: [] };
  try {
    return { mistagged: await findMistaggedInstances(instances, deps), warnings: [] };
  } catch (error) {
    return {
      mistagged: [],
      warnings: [
        `tag keys that miss ${deps.config.keys.backup} could not be checked (${toAwsCallError('DescribeInstances', error).message}); the backups were made`,
      ],
    };
  }
}

/**
 * Backs up each due instance at the bucket's pace (the number in flight adapts, see
 * PacedPool): covered when a resumed slot has its set, deferred when too little time
 * is left, else its decision carried out. What was made is recorded behind the
 * creates, in batches, and settled before this returns.
 */
async function backUpEach(
  decisions: readonly DueDecision[],
  slotSets: SlotSets,
  input: BackupJobInput,
  deps: BackupJobDependencies,
  journal: ActionJournal,
): Promise<InstanceBackupResult[]> {
  const margin = input.safetyMarginMs ?? 0;
  const pool = new PacedPool({
    initial: deps.config.backupConcurrency,
    ceiling: deps.config.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
  });
  const behind = new Behind();
  const timeLeftMs = () =>
    input.remainingMs ? input.remainingMs() - margin : Number.POSITIVE_INFINITY;
  const results = await Promise.all(
    decisions.map((decision) =>
      pool.run(
        async (): Promise<InstanceBackupResult> => {
          const covered = await coveredResult(decision, slotSets, deps, journal, behind);
          if (covered) return covered;
          if (decision.kind === 'backup' && input.remainingMs && input.remainingMs() < margin) {
            return {
              instanceId: decision.instanceId,
              name: decision.name,
              outcome: 'deferred',
              reason: 'not started: too little time left in this invocation; the next one resumes',
            };
          }
          // What was made is recorded inside, as soon as the create answered.
          return executeDecision(decision, input.dryRun, deps, journal, timeLeftMs, behind);
        },
        (r) => r.outcome === 'failed' && isThrottleCode(r.error?.code),
      ),
    ),
  );
  // Every creation record written behind the creates is written (or its failure logged) first.
  await behind.settled(journal);
  return results;
}

/** A console backup's named instances that EC2 does not know: failed, one result each. */
function unknownInstances(
  input: BackupJobInput,
  instances: readonly InstanceFacts[],
): InstanceBackupResult[] {
  if (!input.instanceIds) return [];
  const found = new Set(instances.map((i) => i.instanceId));
  return [...new Set(input.instanceIds)]
    .filter((id) => !found.has(id))
    .map((id) => ({
      instanceId: id,
      outcome: 'failed' as const,
      error: {
        code: 'UnknownInstance',
        message: `instance ${id} does not exist in this account and region, or is terminated`,
      },
    }));
}

/** The run's report from its results: counts, what is left, warnings and the status. */
function summarise(
  results: readonly InstanceBackupResult[],
  duplicates: readonly DuplicateSet[],
  scanWarnings: readonly string[],
  input: BackupJobInput,
  deps: BackupJobDependencies,
  base: BackupHeader,
): BackupReport {
  const count = (outcome: InstanceBackupResult['outcome']) =>
    results.filter((r) => r.outcome === outcome).length;
  const counts = {
    due: results.length,
    backedUp: count('created'),
    ...(input.dryRun ? { wouldBackUp: count('planned') } : {}),
    skipped: count('skipped'),
    failed: count('failed'),
    snapshots: results.reduce(
      (n, r) => n + (r.outcome === 'created' ? (r.snapshots?.length ?? 0) : 0),
      0,
    ),
    covered: count('covered'),
    deferred: count('deferred'),
    duplicatesRemoved: duplicates.filter((d) => d.outcome === 'deleted').length,
    ...consistencyCounts(results),
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
  return {
    ...base,
    status: runStatus({ failed: nothingDone, incomplete: remaining.length > 0, hasErrors }),
    endedAt: deps.clock().toISOString(),
    counts,
    instances: [...results],
    ...(duplicates.length > 0 ? { duplicates: [...duplicates] } : {}),
    ...(remaining.length > 0 ? { remaining } : {}),
    ...(warnings.length > 0 ? { warnings } : {}),
  };
}

/**
 * Carries out one instance's decision: a skip is reported (an invalid tag as an
 * error), a dry run reports the set it would make, and a real run creates the set,
 * records what the create answered at once, and reconciles when an attempt's answer
 * may have been lost.
 */
async function executeDecision(
  decision: DueDecision,
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
  if (decision.kind === 'skip') {
    logger.info('instance skipped', { instanceId: decision.instanceId, reason: decision.reason });
    return skippedResult(decision);
  }
  const volumes = volumesOf(decision);
  const withExcluded = volumes.excluded.length > 0 ? { excludedVolumes: volumes.excluded } : {};
  if (dryRun) {
    return {
      instanceId: decision.instanceId,
      name: decision.name,
      outcome: 'planned',
      snapshots: decision.request.included.map((v) => ({
        volumeId: v.volumeId,
        deviceName: v.deviceName,
        state: 'planned',
      })),
      ...withExcluded,
      ...consistencyFields(problems, plannedConsistency(decision.request).consistency),
    };
  }
  // The pre and post scripts of an application-consistent set, when the plan asks (issue 21).
  const step = await makeSetConsistently(
    decision.request,
    (request) => createSet({ ...decision, request }, volumes, deps, journal, timeLeftMs, behind),
    deps,
    (request, patient) => findMadeSet(request, patient, volumes, deps, journal, timeLeftMs),
  );
  if (step.kind === 'skipped') return consistencySkipped(decision, step.consistency, problems);
  const made = step.made;
  const withRecord = consistencyFields(problems, step.consistency);
  const withDuplicates = made.duplicates.length > 0 ? { duplicates: made.duplicates } : {};
  if (made.failure && made.created.length === 0) {
    const { code, message } = made.failure;
    logger.error('snapshot set failed', { instanceId: decision.instanceId, code, error: message });
    return {
      instanceId: decision.instanceId,
      name: decision.name,
      outcome: 'failed',
      error: { code, message },
      ...withExcluded,
      ...withDuplicates,
      ...withRecord,
    };
  }
  const snapshots = volumes.toResults(made.created);
  logCreated(decision.instanceId, snapshots, deps);
  return {
    instanceId: decision.instanceId,
    name: decision.name,
    outcome: 'created',
    snapshots,
    ...withExcluded,
    ...withDuplicates,
    ...(made.reconcileError ? { error: made.reconcileError } : {}),
    ...withRecord,
  };
}

/** A set's volumes: those excluded (with why), and how a made snapshot reads in the report. */
interface SetVolumes {
  readonly excluded: readonly { volumeId: string; deviceName: string; reason: string }[];
  readonly toResults: (made: readonly CreatedSnapshot[]) => SnapshotResult[];
}

function volumesOf(decision: Extract<DueDecision, { kind: 'backup' }>): SetVolumes {
  const { request } = decision;
  const excluded = request.excluded.map((e) => ({
    volumeId: e.volume.volumeId,
    deviceName: e.volume.deviceName,
    reason: e.reason,
  }));
  const devices = new Map(request.included.map((v) => [v.volumeId, v.deviceName]));
  const excludedIds = new Set(excluded.map((e) => e.volumeId));
  const toResults = (made: readonly CreatedSnapshot[]): SnapshotResult[] =>
    made.map((s) => ({
      volumeId: s.volumeId,
      deviceName:
        devices.get(s.volumeId) ?? excluded.find((e) => e.volumeId === s.volumeId)?.deviceName,
      snapshotId: s.snapshotId,
      sizeGiB: s.sizeGiB,
      state: s.state,
      ...(excludedIds.has(s.volumeId) ? { unexpected: true as const } : {}),
    }));
  return { excluded, toResults };
}

/** What a CreateSnapshots made, once reconciled. */
interface MadeSet {
  /** The answered snapshots, then those adopted from an attempt whose answer was lost. */
  readonly created: readonly CreatedSnapshot[];
  readonly failure?: AwsCallError | undefined;
  readonly duplicates: readonly RetriedDuplicate[];
  readonly reconcileError?: ReportedError | undefined;
}

/**
 * Creates the set, records what the create answered at once (issue 15 #8), and, when
 * an attempt may have made a set whose answer was lost, reconciles: adopts what it
 * finds (recorded) and deletes the extra copies.
 */
async function createSet(
  decision: Extract<DueDecision, { kind: 'backup' }>,
  volumes: SetVolumes,
  deps: BackupJobDependencies,
  journal: ActionJournal,
  timeLeftMs: () => number,
  behind?: Behind,
): Promise<MadeSet> {
  const { instanceId, request } = decision;
  let answered: CreatedSnapshot[] = [];
  let failure: AwsCallError | undefined;
  let uncertain: number;
  try {
    answered = await deps.ec2.createSnapshotSet(request);
    uncertain = uncertainAttemptsOf({ answered });
  } catch (error) {
    failure = toAwsCallError('CreateSnapshots', error);
    uncertain = uncertainAttemptsOf({ error, failure });
  }
  // What the create answered is recorded at once, whatever happens after (issue 15 #8).
  if (answered.length > 0) {
    const snapshots = volumes.toResults(answered);
    await recordCreated(
      { instanceId, outcome: 'created', snapshots },
      deps,
      journal,
      undefined,
      behind,
    );
  }
  if (uncertain === 0) return { created: answered, failure, duplicates: [] };
  const volumeIds = request.included.map((v) => v.volumeId);
  const reconciled = await reconcileRetriedSet(
    { instanceId, volumeIds, answered, uncertain },
    deps,
    journal,
    timeLeftMs,
  );
  const adopted = reconciled.kept.filter(
    (s) => !answered.some((a) => a.snapshotId === s.snapshotId),
  );
  if (adopted.length > 0) {
    await recordCreated(
      { instanceId, outcome: 'created', snapshots: volumes.toResults(adopted) },
      deps,
      journal,
      'scheduled backup; made by a CreateSnapshots attempt whose answer was lost, found by the run',
    );
  }
  if (failure && adopted.length > 0) {
    deps.logger.warn('CreateSnapshots failed after its retries, but a set was made: adopted', {
      instanceId,
      code: failure.code,
    });
  }
  return {
    created: [...answered, ...adopted],
    failure,
    duplicates: reconciled.duplicates,
    reconcileError: reconciled.error,
  };
}

/**
 * The set AWSEC2-CreateVssSnapshot made for this slot (`vss`), recorded in the creation
 * ledger like any set; undefined when none is listed.
 */
async function findMadeSet(
  request: SnapshotSetRequest,
  patient: boolean,
  volumes: SetVolumes,
  deps: BackupJobDependencies,
  journal: ActionJournal,
  timeLeftMs: () => number,
): Promise<MadeSet | undefined> {
  const found = await findVssSet(request, patient, {
    keys: deps.config.keys,
    ec2: deps.ec2,
    waitsMs: deps.reconcile?.waitsMs ?? RECONCILE_WAITS_MS,
    sleep: deps.reconcile?.sleep ?? ((ms) => new Promise<void>((r) => setTimeout(r, ms))),
    timeLeftMs,
  });
  if (!found) return undefined;
  const snapshots = volumes.toResults(found);
  await recordCreated(
    { instanceId: request.instanceId, outcome: 'created', snapshots },
    deps,
    journal,
    'scheduled backup; made by AWSEC2-CreateVssSnapshot (vss), found by its tags',
  );
  return { created: found, duplicates: [] };
}

function logCreated(
  instanceId: string,
  snapshots: readonly SnapshotResult[],
  deps: BackupJobDependencies,
): void {
  for (const snapshot of snapshots) {
    if (snapshot.unexpected) {
      deps.logger.warn('EC2 snapshotted a volume the request excluded', {
        instanceId,
        volumeId: snapshot.volumeId,
        snapshotId: snapshot.snapshotId,
      });
    }
  }
  deps.logger.info('snapshot set created', {
    instanceId,
    snapshotIds: snapshots.map((s) => s.snapshotId),
  });
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
    for (const problem of misses) {
      deps.logger.warn('tag problem', {
        instanceId: instance.instanceId,
        problem: problem.message,
      });
    }
    const reason = `not opted in: ${misses.map((p) => p.message).join('; ')}`;
    results.push(skippedResult(skipInstance(instance, reason, true, misses)));
  }
  return results;
}

const HISTORY_UNAVAILABLE =
  'the run history could not be written: backups were made anyway (documented choice), but this run is not recorded and a duplicate delivery may not be detected';
