import pLimit from 'p-limit';
import type { CreatedSnapshot, Ec2Gateway } from '../aws/Ec2Gateway.ts';
import type { AwsCallError } from '../aws/errors.ts';
import { toAwsCallError } from '../aws/errors.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import {
  type BackupContext,
  formatSlot,
  type InstanceBackupDecision,
  type InstanceFacts,
  planInstanceBackup,
} from '../domain/backupPlan.ts';
import { previousFireTime, resolveSchedule } from '../domain/schedules.ts';
import type { LoggerPort, MetricsPort, ReportedError, RunStatus, RunTrigger } from './ports.ts';
import { noMetrics } from './ports.ts';

/** What a backup run is asked to do. */
export interface BackupJobInput {
  readonly schedule: string;
  readonly scheduledTime?: Date | undefined;
  readonly dryRun: boolean;
  readonly trigger: RunTrigger;
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
  readonly outcome: 'created' | 'planned' | 'skipped' | 'failed';
  readonly snapshots?: readonly SnapshotResult[];
  readonly excludedVolumes?: readonly { volumeId: string; deviceName: string; reason: string }[];
  readonly reason?: string;
  readonly error?: ReportedError;
  /** Tag problems found on the instance or its volumes, one message each. */
  readonly problems?: readonly string[];
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
    readonly backedUp: number;
    readonly skipped: number;
    readonly failed: number;
    readonly snapshots: number;
  };
  readonly instances: readonly InstanceBackupResult[];
  readonly error?: ReportedError;
}

/** What the backup job reads and acts through. */
export interface BackupJobDependencies {
  readonly ec2: Pick<
    Ec2Gateway,
    'listInstancesWithTagKey' | 'volumeTagsWithKey' | 'createSnapshotSet'
  >;
  readonly config: Pick<
    SnapkeeperConfig,
    'deployment' | 'keys' | 'catalog' | 'copyTags' | 'backupConcurrency'
  >;
  readonly clock: () => Date;
  readonly runId: string;
  readonly logger: LoggerPort;
  readonly metrics?: MetricsPort;
}

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
  const startedAt = deps.clock();
  const schedule = resolveSchedule(config.catalog, input.schedule);
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
  try {
    instances = [];
    for await (const instance of deps.ec2.listInstancesWithTagKey(config.keys.backup)) {
      instances.push(instance);
    }
    volumeTags = await deps.ec2.volumeTagsWithKey(config.keys.skip);
  } catch (error) {
    const failure = toAwsCallError('Describe', error);
    const report: BackupReport = {
      ...base,
      status: 'failed',
      endedAt: deps.clock().toISOString(),
      counts: { due: 0, backedUp: 0, skipped: 0, failed: 0, snapshots: 0 },
      instances: [],
      error: { code: failure.code, message: failure.message },
    };
    logger.error('backup run failed: could not read the fleet', { report });
    metrics.count('BackupRunsFailed', 1);
    return report;
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
  };
  const decisions = instances
    .map((instance) => planInstanceBackup(instance, context))
    .filter((d): d is Exclude<InstanceBackupDecision, { kind: 'not-due' }> => d.kind !== 'not-due');

  const limit = pLimit(config.backupConcurrency);
  const results = await Promise.all(
    decisions.map((decision) => limit(() => executeDecision(decision, input.dryRun, deps))),
  );

  const counts = {
    due: results.length,
    backedUp: results.filter((r) => r.outcome === 'created' || r.outcome === 'planned').length,
    skipped: results.filter((r) => r.outcome === 'skipped').length,
    failed: results.filter((r) => r.outcome === 'failed').length,
    snapshots: results.reduce(
      (n, r) => n + (r.outcome === 'created' ? (r.snapshots?.length ?? 0) : 0),
      0,
    ),
  };
  const hasErrors = results.some(
    (r) => r.outcome === 'failed' || r.error !== undefined || (r.problems?.length ?? 0) > 0,
  );
  const nothingDone = counts.failed > 0 && counts.backedUp === 0 && counts.skipped === 0;
  const status: RunStatus = nothingDone ? 'failed' : hasErrors ? 'partial' : 'succeeded';
  const report: BackupReport = {
    ...base,
    status,
    endedAt: deps.clock().toISOString(),
    counts,
    instances: results,
  };

  metrics.count('SnapshotsCreated', counts.snapshots);
  metrics.count('InstancesBackedUp', input.dryRun ? 0 : counts.backedUp);
  metrics.count('InstancesSkipped', counts.skipped);
  metrics.count('InstancesFailed', counts.failed);
  metrics.count(status === 'failed' ? 'BackupRunsFailed' : 'BackupRunsSucceeded', 1);
  const log = status === 'succeeded' ? logger.info : logger.warn;
  log.call(logger, `backup run ${status}`, { report });
  return report;
}

async function executeDecision(
  decision: Exclude<InstanceBackupDecision, { kind: 'not-due' }>,
  dryRun: boolean,
  deps: BackupJobDependencies,
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

  let created: CreatedSnapshot[];
  try {
    created = await deps.ec2.createSnapshotSet(request);
  } catch (error) {
    const failure: AwsCallError = toAwsCallError('CreateSnapshots', error);
    logger.error('snapshot set failed', {
      instanceId: decision.instanceId,
      code: failure.code,
      error: failure.message,
    });
    return {
      instanceId: decision.instanceId,
      name: decision.name,
      outcome: 'failed',
      error: { code: failure.code, message: failure.message },
      ...(excludedVolumes.length > 0 ? { excludedVolumes } : {}),
      ...withProblems,
    };
  }

  const snapshots: SnapshotResult[] = created.map((s) => ({
    volumeId: s.volumeId,
    deviceName:
      devices.get(s.volumeId) ?? excludedVolumes.find((e) => e.volumeId === s.volumeId)?.deviceName,
    snapshotId: s.snapshotId,
    sizeGiB: s.sizeGiB,
    state: s.state,
    ...(excludedIds.has(s.volumeId) ? { unexpected: true as const } : {}),
  }));
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
    ...withProblems,
  };
}
