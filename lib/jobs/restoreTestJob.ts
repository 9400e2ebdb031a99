/**
 * Restore tests: 1. delete what earlier tests left (found by tag); 2. pick the instances
 * to test (all, or N rotating through the history); 3. restore each one's newest
 * completed set to new volumes in its zone; 4. check each volume becomes available with
 * the snapshot's size and encryption, timing it; 5. delete every volume it made,
 * recorded before and after; 6. report, count and record per instance.
 */

import { toAwsCallError } from '../aws/errors.ts';
import type { Tag } from '../domain/backupPlan.ts';
import { InvalidEventError } from '../domain/errors.ts';
import type { TestVolume } from '../domain/restoreTestPlan.ts';
import {
  newestCompletedSet,
  type RestoreTestOptions,
  type RestoreTestStatus,
  restoredVolumeProblems,
  type SnapshotSet,
  selectRestoreTests,
} from '../domain/restoreTestPlan.ts';
import type { SnapshotFacts } from '../domain/snapshotFacts.ts';
import { restoreTagKeys, type TagKeys } from '../domain/tagKeys.ts';
import type {
  ActionJournal,
  HistoryQueriesPort,
  LoggerPort,
  MetricsPort,
  RestorePort,
  RestoreTestPort,
  RunStatus,
  SnapshotsPort,
} from './ports.ts';
import { closeRun, recordAfter, runStatus } from './runReport.ts';

export type { RestoreTestStatus } from '../domain/restoreTestPlan.ts';

/** The job name runs, records and metrics carry. */
export const RESTORE_TEST_JOB = 'restore-test';

/** The history action of one instance's test: its outcome and time, per volume. */
export const RESTORE_TEST_ACTION = 'restore-test';

/** How far back the history is read for the last test of each instance. */
export const RESTORE_TEST_HISTORY_DAYS = 400;

/** Time kept back from the Lambda's remaining time to delete what a test made. */
export const DELETE_RESERVE_MS = 60_000;

/** A test volume younger than this may belong to a run still going (Lambda's 15-minute cap). */
export const LIVE_TEST_WINDOW_MS = 16 * 60_000;

/** Metric names (namespace Snapkeeper). */
export const RESTORE_TEST_METRICS = {
  succeeded: 'RestoreTestsSucceeded',
  failed: 'RestoreTestsFailed',
  seconds: 'RestoreTestSeconds',
  leftOver: 'RestoreTestVolumesLeftOver',
} as const;

/** What a restore test run does. */
export interface RestoreTestRequest {
  /** The schedule whose sets are tested; absent: any of this deployment's sets. */
  readonly schedule?: string | undefined;
  /** Test exactly these instances (console); absent: the option's sample. */
  readonly instanceIds?: readonly string[] | undefined;
  readonly options: RestoreTestOptions;
  readonly dryRun: boolean;
  /** Milliseconds left in the invocation. */
  readonly remainingMs: () => number;
}

/** What a restore test reads and acts through. */
export interface RestoreTestDependencies {
  readonly ec2: Pick<SnapshotsPort, 'listSnapshotsTagged'>;
  readonly instances: Pick<RestorePort, 'describeInstance'>;
  readonly tests: RestoreTestPort;
  readonly history: Pick<HistoryQueriesPort, 'resourceHistory'>;
  readonly config: {
    readonly deployment: string;
    readonly keys: TagKeys;
    readonly restoreWaitMs: number;
  };
  readonly clock: () => Date;
  readonly runId: string;
  readonly logger: LoggerPort;
  readonly metrics: MetricsPort;
  readonly journal: ActionJournal;
  readonly sleep?: ((ms: number) => Promise<void>) | undefined;
}

/** One restored volume's outcome. */
export interface VolumeTestResult {
  readonly snapshotId: string;
  readonly sourceVolumeId: string;
  readonly testVolumeId?: string | undefined;
  readonly outcome: 'passed' | 'failed' | 'planned';
  /** From CreateVolume to `available`, when it got there. */
  readonly secondsToAvailable?: number | undefined;
  readonly problems: readonly string[];
  readonly deleted: boolean;
}

/** One instance's test. */
export interface InstanceTestResult {
  readonly instanceId: string;
  readonly outcome: 'passed' | 'failed' | 'skipped' | 'planned';
  readonly setRunId?: string | undefined;
  readonly setCreatedAt?: string | undefined;
  readonly availabilityZone?: string | undefined;
  readonly lastTestedAt?: string | undefined;
  readonly reason?: string | undefined;
  readonly volumes: readonly VolumeTestResult[];
}

/** A restore test run's report. */
export interface RestoreTestReport {
  readonly runId: string;
  readonly job: typeof RESTORE_TEST_JOB;
  readonly schedule?: string | undefined;
  readonly dryRun: boolean;
  readonly status: RunStatus;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly counts: {
    readonly tested: number;
    readonly passed: number;
    readonly failed: number;
    readonly skipped: number;
    readonly volumes: number;
    readonly leftoversDeleted: number;
    readonly leftoversRemaining: number;
  };
  readonly instances: readonly InstanceTestResult[];
  readonly leftovers: readonly { volumeId: string; outcome: string; reason: string }[];
  readonly problems: readonly string[];
  readonly error?: { code: string; message: string } | undefined;
}

/**
 * Runs one restore test: see the module comment for the steps. A failed test (a volume
 * in `error`, not `available` in time, of the wrong size or encryption) is reported,
 * counted in `RestoreTestsFailed` and recorded; its volume is still deleted. A volume
 * that cannot be deleted is reported and deleted by the next run (found by tag).
 *
 * @throws {InvalidEventError} when named instances have no completed set to test.
 * @example
 * const report = await runRestoreTestJob({ schedule: 'daily', options: { instances: 2 }, dryRun: false, remainingMs }, deps);
 */
export async function runRestoreTestJob(
  request: RestoreTestRequest,
  deps: RestoreTestDependencies,
): Promise<RestoreTestReport> {
  const startedAt = deps.clock().toISOString();
  const problems: string[] = [];
  const leftovers = await cleanUpLeftovers(request.dryRun, deps, problems);
  const sets = await newestSets(request, deps);
  const lastTests = await lastRestoreTests([...sets.keys()], deps, problems);
  const chosen = request.instanceIds
    ? [...sets.keys()]
    : selectRestoreTests(
        [...sets.keys()].map((instanceId) => ({
          instanceId,
          lastTestedAt: lastTests.get(instanceId)?.at,
        })),
        request.options.instances,
      );
  const instances: InstanceTestResult[] = [];
  for (const instanceId of chosen) {
    const set = sets.get(instanceId) as SnapshotSet;
    const lastTestedAt = lastTests.get(instanceId)?.at;
    const result = await testInstance(set, request, deps);
    instances.push({ ...result, ...(lastTestedAt ? { lastTestedAt } : {}) });
  }
  return finish(startedAt, request, deps, instances, leftovers, problems);
}

function finish(
  startedAt: string,
  request: RestoreTestRequest,
  deps: RestoreTestDependencies,
  instances: readonly InstanceTestResult[],
  leftovers: RestoreTestReport['leftovers'],
  problems: readonly string[],
): RestoreTestReport {
  const count = (outcome: InstanceTestResult['outcome']) =>
    instances.filter((i) => i.outcome === outcome).length;
  const remaining = leftovers.filter((l) => l.outcome !== 'deleted').length;
  const failed = count('failed');
  const notDeleted = instances
    .flatMap((i) => i.volumes)
    .filter((v) => v.testVolumeId && !v.deleted);
  const counts = {
    tested: count('passed') + failed,
    passed: count('passed'),
    failed,
    skipped: count('skipped'),
    volumes: instances.reduce((n, i) => n + i.volumes.length, 0),
    leftoversDeleted: leftovers.filter((l) => l.outcome === 'deleted').length,
    leftoversRemaining: request.dryRun ? remaining : remaining + notDeleted.length,
  };
  const allFailed = counts.tested > 0 && counts.passed === 0;
  const status = runStatus({
    failed: allFailed,
    incomplete: false,
    hasErrors:
      failed > 0 || counts.skipped > 0 || counts.leftoversRemaining > 0 || problems.length > 0,
  });
  const report: RestoreTestReport = {
    runId: deps.runId,
    job: RESTORE_TEST_JOB,
    ...(request.schedule ? { schedule: request.schedule } : {}),
    dryRun: request.dryRun,
    status,
    startedAt,
    endedAt: deps.clock().toISOString(),
    counts,
    instances,
    leftovers,
    problems,
    ...(failed > 0
      ? {
          error: {
            code: 'RestoreTestFailed',
            message: `${failed} of ${counts.tested} restore tests failed: ${instances
              .filter((i) => i.outcome === 'failed')
              .map((i) => `${i.instanceId} (${i.reason ?? 'see volumes'})`)
              .join('; ')}`,
          },
        }
      : {}),
  };
  if (!request.dryRun) {
    for (const volume of instances.flatMap((i) => i.volumes)) {
      if (volume.secondsToAvailable !== undefined)
        deps.metrics.seconds?.(RESTORE_TEST_METRICS.seconds, volume.secondsToAvailable);
    }
  }
  return closeRun(report, {
    label: 'restore test run',
    metrics: deps.metrics,
    logger: deps.logger,
    counts: request.dryRun
      ? {}
      : {
          [RESTORE_TEST_METRICS.succeeded]: counts.passed,
          [RESTORE_TEST_METRICS.failed]: counts.failed,
          [RESTORE_TEST_METRICS.leftOver]: counts.leftoversRemaining,
        },
  });
}

/**
 * Each instance's newest completed set among this deployment's managed snapshots (of
 * the schedule, when one is named). Named instances without one are refused by name.
 */
async function newestSets(
  request: RestoreTestRequest,
  deps: RestoreTestDependencies,
): Promise<Map<string, SnapshotSet>> {
  const { keys, deployment } = deps.config;
  const filter: Record<string, string | readonly string[]> = {
    [keys.managed]: 'true',
    [keys.deployment]: deployment,
    ...(request.schedule ? { [keys.schedule]: request.schedule } : {}),
    ...(request.instanceIds ? { [keys.instanceId]: [...request.instanceIds] } : {}),
  };
  const byInstance = new Map<string, SnapshotFacts[]>();
  for await (const snapshot of deps.ec2.listSnapshotsTagged(filter)) {
    const instanceId = snapshot.tags[keys.instanceId];
    if (!instanceId) continue;
    byInstance.set(instanceId, [...(byInstance.get(instanceId) ?? []), snapshot]);
  }
  const now = deps.clock();
  const sets = new Map<string, SnapshotSet>();
  for (const [instanceId, snapshots] of byInstance) {
    const set = newestCompletedSet(instanceId, snapshots, keys, now);
    if (set) sets.set(instanceId, set);
  }
  const missing = (request.instanceIds ?? []).filter((id) => !sets.has(id));
  if (missing.length > 0) {
    throw new InvalidEventError(
      `field "instanceIds": ${missing.join(', ')} ${missing.length === 1 ? 'has' : 'have'} no completed snapshot set made by this deployment${request.schedule ? ` for schedule "${request.schedule}"` : ''}; back ${missing.length === 1 ? 'it' : 'them'} up first`,
    );
  }
  return sets;
}

/** The last restore test of an instance, as the history recorded it. */
export interface LastRestoreTest {
  readonly at: string;
  readonly outcome: 'done' | 'failed' | 'skipped';
  /** The slowest volume's seconds to available, when the test passed. */
  readonly seconds?: number | undefined;
  /** The last test that passed, and its time. */
  readonly lastPassedAt?: string | undefined;
  readonly lastPassedSeconds?: number | undefined;
}

/**
 * The last restore test of each instance (and its last successful one), from the run
 * history's per-instance `restore-test` records. When the history cannot be read, the
 * rotation treats every instance as never tested and the run says so.
 *
 * @example
 * (await lastRestoreTests(['i-1'], deps, problems)).get('i-1')?.lastPassedAt;
 */
export async function lastRestoreTests(
  instanceIds: readonly string[],
  deps: Pick<RestoreTestDependencies, 'history' | 'clock' | 'logger'>,
  problems: string[],
): Promise<Map<string, LastRestoreTest>> {
  const since = new Date(
    deps.clock().getTime() - RESTORE_TEST_HISTORY_DAYS * 86_400_000,
  ).toISOString();
  const found = new Map<string, LastRestoreTest>();
  for (const instanceId of instanceIds) {
    try {
      const items = await deps.history.resourceHistory(instanceId, { since });
      const tests = items.filter(
        (i) =>
          i.action === RESTORE_TEST_ACTION && i.phase === 'after' && i.resourceId === instanceId,
      );
      const last = tests[0];
      if (!last) continue;
      const passed = tests.find((t) => t.outcome === 'done');
      found.set(instanceId, {
        at: last.at,
        outcome: last.outcome ?? 'failed',
        seconds: numberOf(last.details?.seconds),
        ...(passed
          ? { lastPassedAt: passed.at, lastPassedSeconds: numberOf(passed.details?.seconds) }
          : {}),
      });
    } catch (error) {
      const message = `the run history could not be read for ${instanceId}'s last restore test (${toAwsCallError('Query', error).message}): taken as never tested`;
      deps.logger.warn(message);
      problems.push(message);
    }
  }
  return found;
}

function numberOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** One instance's test: restore its set in its zone, wait, check, delete, record. */
async function testInstance(
  set: SnapshotSet,
  request: RestoreTestRequest,
  deps: RestoreTestDependencies,
): Promise<InstanceTestResult> {
  const base = {
    instanceId: set.instanceId,
    setRunId: set.runId,
    setCreatedAt: set.createdAt.toISOString(),
  };
  let availabilityZone: string | undefined;
  try {
    availabilityZone = (await deps.instances.describeInstance(set.instanceId)).availabilityZone;
  } catch (error) {
    const reason = `its zone is unknown: ${(error as Error).message}`;
    return { ...base, outcome: 'skipped', reason, volumes: [] };
  }
  if (!availabilityZone)
    return { ...base, outcome: 'skipped', reason: 'DescribeInstances gave no zone', volumes: [] };
  const planned = set.snapshots.map((s) => ({
    snapshotId: s.snapshotId,
    sourceVolumeId: s.volumeId,
    outcome: 'planned' as const,
    problems: [],
    deleted: false,
  }));
  if (request.dryRun) return { ...base, availabilityZone, outcome: 'planned', volumes: planned };
  if (request.remainingMs() < DELETE_RESERVE_MS * 2) {
    const reason = 'not enough time left in this invocation; the next run tests it first';
    return { ...base, availabilityZone, outcome: 'skipped', reason, volumes: [] };
  }
  const volumes = await Promise.all(
    set.snapshots.map((snapshot) =>
      testVolume(snapshot, set.instanceId, availabilityZone, request, deps),
    ),
  );
  const failed = volumes.filter((v) => v.outcome === 'failed');
  const slowest = Math.max(0, ...volumes.map((v) => v.secondsToAvailable ?? 0));
  const result: InstanceTestResult = {
    ...base,
    availabilityZone,
    outcome: failed.length > 0 ? 'failed' : 'passed',
    ...(failed.length > 0
      ? { reason: failed.map((v) => `${v.snapshotId}: ${v.problems.join(', ')}`).join('; ') }
      : {}),
    volumes,
  };
  await recordAfter(deps.journal, deps.logger, {
    runId: deps.runId,
    job: RESTORE_TEST_JOB,
    action: RESTORE_TEST_ACTION,
    resourceId: set.instanceId,
    outcome: failed.length > 0 ? 'failed' : 'done',
    reason:
      failed.length > 0
        ? `restore test failed: ${result.reason}`
        : `restored ${volumes.length} volume(s) of set ${set.runId} in ${slowest} s`,
    details: {
      instanceId: set.instanceId,
      setRunId: set.runId,
      availabilityZone,
      seconds: slowest,
      volumes: volumes.map((v) => ({
        snapshotId: v.snapshotId,
        testVolumeId: v.testVolumeId,
        outcome: v.outcome,
        secondsToAvailable: v.secondsToAvailable,
        problems: v.problems,
        deleted: v.deleted,
      })),
    },
  });
  return result;
}

/** One snapshot restored to one volume, checked, timed and deleted. */
async function testVolume(
  snapshot: SnapshotFacts,
  instanceId: string,
  availabilityZone: string,
  request: RestoreTestRequest,
  deps: RestoreTestDependencies,
): Promise<VolumeTestResult> {
  const base = { snapshotId: snapshot.snapshotId, sourceVolumeId: snapshot.volumeId };
  const tags = testVolumeTags(snapshot, instanceId, deps);
  try {
    await deps.journal.record({
      runId: deps.runId,
      job: RESTORE_TEST_JOB,
      action: 'create-volume',
      resourceId: snapshot.snapshotId,
      phase: 'before',
      reason: `restore test of ${instanceId}: restoring ${snapshot.snapshotId} in ${availabilityZone}`,
      details: { instanceId, availabilityZone },
    });
  } catch (error) {
    // Nothing is made that the history could not follow: no volume, a failed test.
    const problem = `not restored: its "before" record could not be written (${(error as Error).message})`;
    return { ...base, outcome: 'failed', problems: [problem], deleted: false };
  }
  const started = deps.clock().getTime();
  let testVolumeId: string;
  try {
    testVolumeId = await deps.tests.createTestVolume({
      snapshotId: snapshot.snapshotId,
      availabilityZone,
      volumeInitializationRate: request.options.volumeInitializationRate,
      tags,
    });
  } catch (error) {
    const message = toAwsCallError('CreateVolume', error).message;
    return { ...base, outcome: 'failed', problems: [`not restored: ${message}`], deleted: false };
  }
  await recordAfter(deps.journal, deps.logger, {
    runId: deps.runId,
    job: RESTORE_TEST_JOB,
    action: 'create-volume',
    resourceId: testVolumeId,
    outcome: 'done',
    reason: `restore test volume of ${snapshot.snapshotId}`,
    details: { snapshotId: snapshot.snapshotId, instanceId, availabilityZone },
  });
  const waited = await waitUntilSettled(testVolumeId, started, request, deps);
  const problems = waited.volume
    ? restoredVolumeProblems(
        { sizeGiB: snapshot.sizeGiB, encrypted: snapshot.encrypted, kmsKeyId: snapshot.kmsKeyId },
        waited.volume,
      )
    : [];
  if (waited.problem) problems.unshift(waited.problem);
  const deleted = await deleteTestVolume(testVolumeId, 'its test is over', deps);
  return {
    ...base,
    testVolumeId,
    outcome: problems.length > 0 ? 'failed' : 'passed',
    ...(waited.secondsToAvailable !== undefined
      ? { secondsToAvailable: waited.secondsToAvailable }
      : {}),
    // A volume left behind is no failed restore: it is reported and retried (leftovers).
    problems: deleted
      ? problems
      : [...problems, `volume ${testVolumeId} NOT deleted: the next run deletes it`],
    deleted,
  };
}

/** The tags a test volume carries: ours, for this deployment, and a restore test. */
function testVolumeTags(
  snapshot: SnapshotFacts,
  instanceId: string,
  deps: RestoreTestDependencies,
): Tag[] {
  const { keys, deployment } = deps.config;
  const written = restoreTagKeys(keys);
  return [
    { Key: 'Name', Value: `restore test of ${instanceId} from ${snapshot.snapshotId}` },
    { Key: written.restoreTest, Value: 'true' },
    { Key: keys.deployment, Value: deployment },
    { Key: written.restoredFromSnapshot, Value: snapshot.snapshotId },
    { Key: written.restoredFromVolume, Value: snapshot.volumeId },
    { Key: written.restoredByRun, Value: deps.runId },
  ];
}

/**
 * Polls the volume until it is `available` or `error`, or the wait is over: the
 * configured wait (RESTORE_WAIT_SECONDS), cut to the invocation's remaining time less
 * what deleting needs. `InvalidVolume.NotFound` right after CreateVolume is EC2's
 * eventual consistency: polled again.
 */
async function waitUntilSettled(
  volumeId: string,
  started: number,
  request: RestoreTestRequest,
  deps: RestoreTestDependencies,
): Promise<{ volume?: TestVolume; secondsToAvailable?: number; problem?: string }> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const budget = Math.min(deps.config.restoreWaitMs, request.remainingMs() - DELETE_RESERVE_MS);
  const deadline = deps.clock().getTime() + Math.max(0, budget);
  let delay = 1_000;
  let volume: TestVolume | undefined;
  for (;;) {
    try {
      volume = await deps.tests.describeTestVolume(volumeId);
    } catch (error) {
      deps.logger.warn('restore test: DescribeVolumes failed; polling again', {
        volumeId,
        error: (error as Error).message,
      });
    }
    const now = deps.clock().getTime();
    if (volume?.state === 'available') {
      return { volume, secondsToAvailable: Math.round((now - started) / 100) / 10 };
    }
    if (volume?.state === 'error') return { problem: 'the volume went into state error' };
    if (now + delay > deadline) {
      const waitedS = Math.round((now - started) / 1000);
      return {
        problem: `not available after ${waitedS} s (state ${volume?.state ?? 'not visible'})`,
      };
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 5_000);
  }
}

/**
 * Deletes one test volume, recorded before and after. Only volumes this deployment's
 * restore tests tagged are ever passed here.
 *
 * @returns whether the volume is gone.
 */
async function deleteTestVolume(
  volumeId: string,
  why: string,
  deps: RestoreTestDependencies,
): Promise<boolean> {
  const entry = {
    runId: deps.runId,
    job: RESTORE_TEST_JOB,
    action: 'delete-volume',
    resourceId: volumeId,
  };
  try {
    await deps.journal.record({ ...entry, phase: 'before', reason: `restore test volume: ${why}` });
  } catch (error) {
    // Never delete what the history could not record first: kept, reported, retried.
    deps.logger.error('restore test volume kept: its "before" record could not be written', {
      volumeId,
      error: (error as Error).message,
    });
    return false;
  }
  try {
    const how = await deps.tests.deleteTestVolume(volumeId);
    await recordAfter(deps.journal, deps.logger, {
      ...entry,
      outcome: 'done',
      reason: how === 'gone' ? 'already gone' : 'deleted',
    });
    return true;
  } catch (error) {
    const failure = toAwsCallError('DeleteVolume', error);
    deps.logger.error('restore test volume NOT deleted: the next run retries', {
      volumeId,
      error: failure.message,
    });
    await recordAfter(deps.journal, deps.logger, {
      ...entry,
      outcome: 'failed',
      reason: `not deleted (${failure.message}); the next restore test retries`,
      error: { code: failure.code, message: failure.message },
    });
    return false;
  }
}

/**
 * The volumes earlier tests could not delete, found by tag (this deployment's restore
 * tests only) and deleted now; a volume still `creating` or attached is left for the
 * next run, and reported. A dry run only lists them.
 */
async function cleanUpLeftovers(
  dryRun: boolean,
  deps: RestoreTestDependencies,
  problems: string[],
): Promise<RestoreTestReport['leftovers']> {
  const { keys, deployment } = deps.config;
  const marker = restoreTagKeys(keys).restoreTest;
  let found: TestVolume[];
  try {
    found = await deps.tests.listTestVolumes({ [marker]: 'true', [keys.deployment]: deployment });
  } catch (error) {
    const message = `leftover test volumes could not be listed (${toAwsCallError('DescribeVolumes', error).message}); the next run looks again`;
    problems.push(message);
    return [];
  }
  const leftovers: { volumeId: string; outcome: string; reason: string }[] = [];
  for (const volume of found) {
    // The filter is the API's; the tags are checked again before anything is deleted.
    if (volume.tags[marker] !== 'true' || volume.tags[keys.deployment] !== deployment) continue;
    const age = deps.clock().getTime() - (volume.createTime?.getTime() ?? 0);
    if (age < LIVE_TEST_WINDOW_MS) {
      leftovers.push({
        volumeId: volume.volumeId,
        outcome: 'kept',
        reason: 'made in the last 16 minutes: it may belong to a test still running',
      });
    } else if (dryRun) {
      leftovers.push({
        volumeId: volume.volumeId,
        outcome: 'planned',
        reason: `would be deleted (${volume.state})`,
      });
    } else if (volume.state !== 'available' && volume.state !== 'error') {
      leftovers.push({
        volumeId: volume.volumeId,
        outcome: 'kept',
        reason: `${volume.state}: deleted when it settles`,
      });
    } else {
      const deleted = await deleteTestVolume(volume.volumeId, 'left by an earlier test', deps);
      leftovers.push({
        volumeId: volume.volumeId,
        outcome: deleted ? 'deleted' : 'failed',
        reason: deleted ? 'left by an earlier test' : 'could not be deleted; the next run retries',
      });
    }
  }
  return leftovers;
}

/**
 * Each instance's restore-test status for the console `report` and the coverage page:
 * its last successful test and that test's time, and whether it was never tested. When
 * the history cannot be read, the instances are left without a status and the warning
 * says so (never "never tested" on a guess).
 *
 * @example
 * const { statuses } = await restoreTestStatuses(['i-1'], deps);
 * statuses.get('i-1')?.neverTested; // true
 */
export async function restoreTestStatuses(
  instanceIds: readonly string[],
  deps: Pick<RestoreTestDependencies, 'history' | 'clock' | 'logger'>,
): Promise<{ statuses: Map<string, RestoreTestStatus>; warnings: string[] }> {
  const warnings: string[] = [];
  const found = await lastRestoreTests(instanceIds, deps, warnings);
  const unreadable = new Set(
    instanceIds.filter((id) => warnings.some((w) => w.includes(`for ${id}'s`))),
  );
  const statuses = new Map<string, RestoreTestStatus>();
  for (const instanceId of instanceIds) {
    if (unreadable.has(instanceId)) continue;
    const last = found.get(instanceId);
    statuses.set(
      instanceId,
      last
        ? {
            neverTested: false,
            lastTestedAt: last.at,
            lastOutcome: last.outcome === 'done' ? 'passed' : 'failed',
            ...(last.lastPassedAt
              ? { lastPassedAt: last.lastPassedAt, lastPassedSeconds: last.lastPassedSeconds }
              : {}),
          }
        : { neverTested: true },
    );
  }
  return { statuses, warnings };
}
