import type { ImageDetails } from '../aws/Ec2ImageGateway.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import type { InstanceFacts } from '../domain/backupPlan.ts';
import { InvalidEventError } from '../domain/errors.ts';
import { buildRecoveryReport, type RecoveryReport } from '../domain/recoveryReport.ts';
import { MANUAL_SCHEDULE, nextFireTime, resolveSchedule } from '../domain/schedules.ts';
import type { SnapshotFacts } from '../domain/snapshotFacts.ts';
import { type AmiReport, runAmiJob } from './amiJob.ts';
import { type BackupReport, runBackupJob } from './backupJob.ts';
import type { OpsPayload } from './opsPayload.ts';
import type { CreationLedger } from './ownership.ts';
import type {
  ActionJournal,
  Ec2Port,
  HistoryQueriesPort,
  ImageHoldersPort,
  ImagesPort,
  LoggerPort,
  MetricsPort,
  RecycleBinPort,
  RestorePort,
  RestoreTestPort,
  RunCommandPort,
  RunStatus,
  SnapshotSizesPort,
  SnapshotTiersPort,
} from './ports.ts';
import { duplicateInstance, restoreInstance, restoreVolume } from './restoreJobs.ts';
import {
  consoleRestoreTest,
  restoreTestDependencies,
  withRestoreTests,
} from './restoreTestConsole.ts';
import type { RestoreTestStatus } from './restoreTestJob.ts';
import { type RetentionReport, runRetentionJob } from './retentionJob.ts';
import {
  costLine,
  freedNote,
  type ReportCosts,
  type RetentionCosts,
  reportCosts,
} from './snapshotSizes.ts';
import { runSweepJob, type SweepReport } from './sweepJob.ts';
import { planTagSchedules } from './tagScheduleDispatch.ts';

/** What the console operations read and act through. */
export interface OpsDependencies {
  readonly ec2: Ec2Port;
  readonly images: ImagesPort;
  readonly restore: RestorePort;
  /** Restore tests' volumes; absent: `restore-test` is refused as not available here. */
  readonly restoreTests?: RestoreTestPort | undefined;
  readonly autoScaling?: ImageHoldersPort | undefined;
  readonly recycleBin?: RecycleBinPort | undefined;
  readonly history: Pick<HistoryQueriesPort, 'runActions'> &
    Partial<Pick<HistoryQueriesPort, 'resourceHistory'>>;
  readonly config: SnapkeeperConfig;
  readonly clock: () => Date;
  readonly runId: string;
  readonly logger: LoggerPort;
  readonly metrics?: MetricsPort;
  readonly journal: ActionJournal;
  /** The history's creation records: retention, AMI retirement and the sweep delete only what it recorded. */
  readonly ledger?: CreationLedger | undefined;
  /** Run Command, for the pre/post scripts of a console backup's application-consistent sets. */
  readonly runCommand?: RunCommandPort | undefined;
  /** Snapshot locks and tiers (backup, retention, plan, restore from archive). */
  readonly tiers?: SnapshotTiersPort | undefined;
  /** The history's snapshot sizes (the cost ledger); without them every snapshot is unmeasured. */
  readonly sizes?: SnapshotSizesPort | undefined;
}

/** The answer to a console operation: also recorded as a console run. */
export interface OpsReport {
  readonly runId: string;
  readonly job: string;
  readonly action: OpsPayload['action'];
  readonly trigger: 'console';
  readonly dryRun: boolean;
  readonly status: RunStatus;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly counts?: Readonly<Record<string, number>>;
  readonly result: unknown;
  readonly error?: { code: string; message: string } | undefined;
}

/**
 * Runs one validated console operation and reports it. Bad input (an unknown id, a
 * source with nothing to restore) is an {@link InvalidEventError} naming the field; the
 * handler answers it and nothing is changed.
 *
 * @example
 * const report = await runConsoleOperation(parseOpsPayload(event, catalog), deps);
 */
export async function runConsoleOperation(
  payload: OpsPayload,
  deps: OpsDependencies,
): Promise<OpsReport> {
  const startedAt = deps.clock().toISOString();
  const dryRun = 'dryRun' in payload && payload.dryRun === true;
  const done: Done = (status, result, counts, error) => ({
    runId: deps.runId,
    job: `ops:${payload.action}`,
    action: payload.action,
    trigger: 'console',
    dryRun: dryRun || payload.action === 'plan' || payload.action === 'report',
    status,
    startedAt,
    endedAt: deps.clock().toISOString(),
    ...(counts ? { counts } : {}),
    result,
    ...(error ? { error } : {}),
  });
  const common: Common = {
    config: deps.config,
    clock: deps.clock,
    runId: deps.runId,
    logger: deps.logger,
    journal: deps.journal,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ledger: deps.ledger,
    ...(deps.tiers ? { tiers: deps.tiers } : {}),
  };
  const restoreDeps = {
    ...common,
    ec2: deps.ec2,
    images: deps.images,
    restore: deps.restore,
    history: deps.history,
  };
  // A restore succeeded unless it says it failed (a dry run's `planned` included).
  const restored = (
    result: { readonly status: string; readonly error?: OpsReport['error'] },
    counts?: Readonly<Record<string, number>>,
  ) => done(result.status === 'failed' ? 'failed' : 'succeeded', result, counts, result.error);

  switch (payload.action) {
    case 'backup':
      return consoleBackup(payload, dryRun, deps, common, done);
    case 'retention': {
      const retention = await runRetentionJob(
        {
          schedule: payload.schedule.toLowerCase(),
          dryRun,
          trigger: 'console',
          maxDeletions: payload.maxDeletions,
        },
        { ...common, ec2: deps.ec2 },
      );
      return done(retention.status, retention, retention.counts, retention.error);
    }
    case 'plan': {
      const names = payload.schedule
        ? [resolveSchedule(deps.config.catalog, payload.schedule).name]
        : [...deps.config.catalog.schedules.keys()];
      const schedules = [];
      for (const name of names) schedules.push(await planSchedule(name, deps, common));
      const lines = schedules.reduce((n, s) => n + s.lines.length, 0);
      // Every instance's own cron/rate tag, with its next run (the whole plan only).
      const tagSchedules = payload.schedule ? undefined : await planTagSchedules(deps);
      return done(
        'succeeded',
        { schedules, ...(tagSchedules ? { tagSchedules } : {}) },
        { schedules: schedules.length, lines },
      );
    }
    case 'report': {
      const report = await recoveryReport(payload.schedule, deps, common);
      const status: RunStatus =
        report.totals.rpoMissed > 0 || report.totals.neverBackedUp > 0 ? 'partial' : 'succeeded';
      return done(status, report, { ...report.totals, blocked: report.blocked.length });
    }
    case 'restore-volume':
      return restored(await restoreVolume(payload, restoreDeps));
    case 'restore-drill': {
      const result = await restoreVolume({ ...payload }, restoreDeps, true);
      return restored(
        result,
        result.waitedMs !== undefined
          ? { secondsToAvailable: Math.round(result.waitedMs / 1000) }
          : undefined,
      );
    }
    case 'restore-test': {
      const { catalog, functionTimeoutMs } = deps.config;
      const tests = restoreTestDependencies(deps);
      const test = await consoleRestoreTest(payload, tests, catalog, functionTimeoutMs);
      return done(test.status, test, test.counts, test.error);
    }
    case 'duplicate-instance':
      return restored(await duplicateInstance(payload, restoreDeps));
    case 'restore-instance':
      return restored(await restoreInstance(payload, restoreDeps));
  }
}

/** Builds the operation's report from its status, result, counts and error. */
type Done = (
  status: RunStatus,
  result: unknown,
  counts?: Readonly<Record<string, number>>,
  error?: OpsReport['error'],
) => OpsReport;

/**
 * A console backup: the named instances checked first, the backup run, then the
 * schedule's retention (backups count toward their schedule's retention, or
 * MANUAL_RETAIN_DAYS), applied now.
 */
async function consoleBackup(
  payload: Extract<OpsPayload, { action: 'backup' }>,
  dryRun: boolean,
  deps: OpsDependencies,
  common: Common,
  done: Done,
): Promise<OpsReport> {
  if (payload.instanceIds) await requireInstances(payload.instanceIds, deps);
  const schedule = payload.schedule?.toLowerCase() ?? MANUAL_SCHEDULE;
  const backup = await runBackupJob(
    {
      schedule,
      scheduledTime: deps.clock(),
      dryRun,
      trigger: 'console',
      ...(payload.instanceIds ? { instanceIds: payload.instanceIds } : {}),
    },
    { ...common, ec2: deps.ec2, runCommand: deps.runCommand },
  );
  // Backups count toward their schedule's retention (or MANUAL_RETAIN_DAYS): applied now.
  const retention = await runRetentionJob(
    { schedule, dryRun, trigger: 'console' },
    { ...common, ec2: deps.ec2 },
  );
  return done(
    worst(backup.status, retention.status),
    { backup, retention },
    {
      snapshots: backup.counts.snapshots,
      failed: backup.counts.failed,
      deleted: retention.counts.deleted,
    },
    backup.error ?? retention.error,
  );
}

interface Common {
  readonly config: SnapkeeperConfig;
  readonly clock: () => Date;
  readonly runId: string;
  readonly logger: LoggerPort;
  readonly journal: ActionJournal;
  readonly metrics?: MetricsPort;
  readonly ledger: CreationLedger | undefined;
  readonly tiers?: SnapshotTiersPort | undefined;
}

/** One schedule's plan: what every job would do, one reason per line, and when it runs next. */
export interface SchedulePlan {
  readonly schedule: string;
  readonly nextRun: string;
  readonly lines: readonly string[];
  /** What the schedule's snapshots cost and what this plan's retention frees (estimates). */
  readonly costs?: RetentionCosts | undefined;
}

async function planSchedule(
  name: string,
  deps: OpsDependencies,
  common: Common,
): Promise<SchedulePlan> {
  const schedule = resolveSchedule(deps.config.catalog, name);
  const now = deps.clock();
  const nextRun = nextFireTime(schedule, now);
  const backup: BackupReport = await runBackupJob(
    { schedule: name, scheduledTime: nextRun, dryRun: true, trigger: 'console' },
    { ...common, ec2: deps.ec2 },
  );
  const amis: AmiReport = await runAmiJob(
    { schedule: name, scheduledTime: nextRun, dryRun: true, trigger: 'console' },
    {
      ...common,
      ec2: deps.ec2,
      images: deps.images,
      autoScaling: deps.autoScaling,
      recycleBin: deps.recycleBin,
    },
  );
  const retention: RetentionReport = await runRetentionJob(
    { schedule: name, dryRun: true, trigger: 'console' },
    { ...common, ec2: deps.ec2, costs: deps.sizes && { sizes: deps.sizes, config: deps.config } },
  );
  const who = (id: string, label?: string) => (label ? `${id} (${label})` : id);
  const lines: string[] = [];
  for (const r of backup.instances) {
    if (r.outcome === 'planned') {
      lines.push(
        `create snapshot set of ${who(r.instanceId, r.name)}: ${(r.snapshots ?? []).map((s) => `${s.deviceName} ${s.volumeId}`).join(', ')}`,
      );
      for (const e of r.excludedVolumes ?? [])
        lines.push(`  leave out ${e.deviceName} ${e.volumeId}: ${e.reason}`);
    } else {
      lines.push(`skip ${who(r.instanceId, r.name)}: ${r.reason ?? r.error?.message ?? r.outcome}`);
    }
  }
  for (const c of amis.created) {
    lines.push(
      c.outcome === 'planned'
        ? `create AMI ${c.imageName} of ${who(c.instanceId, c.name)}${c.noReboot === false ? ' (with reboot)' : ''}`
        : `no AMI for ${who(c.instanceId, c.name)}: ${c.reason ?? c.error?.message ?? c.outcome}`,
    );
  }
  for (const r of amis.retired)
    lines.push(`deregister ${r.imageId} of ${r.instanceId}: ${r.reason}`);
  for (const k of amis.kept) lines.push(`keep ${k.imageId}: ${k.reason}`);
  for (const b of amis.blocked) lines.push(`blocked ${b.imageId}: ${b.reason}`);
  for (const v of retention.volumes) {
    for (const d of v.deletions)
      lines.push(
        `delete ${d.snapshotId} of ${v.volumeId}: ${d.reason}${freedNote(retention.costs, d.snapshotId)}`,
      );
    for (const k of v.kept) lines.push(`keep ${k.snapshotId} of ${v.volumeId}: ${k.reason}`);
    for (const b of v.blocked)
      lines.push(
        `blocked ${b.snapshotId} of ${v.volumeId}: ${b.reason}${freedNote(retention.costs, b.snapshotId)}`,
      );
    if (v.failing) lines.push(`warning ${v.volumeId}: backups failing (${v.failing})`);
  }
  for (const a of retention.archive ?? [])
    lines.push(
      `${a.outcome === 'skipped' ? 'stay standard' : 'archive'} ${a.snapshotId}: ${a.reason}`,
    );
  for (const l of [...(backup.locks ?? []), ...(retention.locks ?? [])])
    lines.push(`lock ${l.snapshotId}: ${l.reason}`);
  if (retention.cap.exceeded) lines.push(`warning: ${retention.cap.reason}`);
  if (retention.costs) lines.push(costLine(retention.costs));
  return {
    schedule: name,
    nextRun: nextRun.toISOString(),
    lines,
    ...(retention.costs ? { costs: retention.costs } : {}),
  };
}

/** The recovery-point report with the deletions that something blocks. */
export interface ConsoleRecoveryReport extends RecoveryReport {
  /** Each instance with its restore tests: the last successful one and its time. */
  readonly instances: readonly (RecoveryReport['instances'][number] & {
    readonly restoreTest?: RestoreTestStatus | undefined;
  })[];
  /** Instances never restore-tested, and what could not be read. */
  readonly restoreTests: { readonly neverTested: number; readonly warnings?: readonly string[] };
  readonly blocked: readonly {
    resourceId: string;
    reason: string;
    heldBy: readonly string[];
    sizeGiB?: number | undefined;
  }[];
  readonly blockedGiB: number;
  readonly note: string;
  /** What could not be read: the blocked list may then be short. */
  readonly blockedWarnings?: readonly string[];
  /** Each instance carries fullBytes, uniqueBytes, estimatedMonthlyCost; these are the totals and prices. */
  readonly costs?: ReportCosts;
}

/**
 * The recovery-point report of the schedule (or all): what the opted-in fleet's newest
 * snapshots and AMIs cover, with the deletions that something blocks (dry runs of
 * retention, the sweep and AMI retention).
 */
async function recoveryReport(
  scheduleName: string | undefined,
  deps: OpsDependencies,
  common: Common,
): Promise<ConsoleRecoveryReport> {
  const { keys, deployment, catalog } = deps.config;
  const schedule = scheduleName ? resolveSchedule(catalog, scheduleName).name : undefined;
  const instances = new Map<string, InstanceFacts[]>();
  for (const i of [
    ...(await listAll(deps.ec2.listInstancesWithTagKey(keys.backup))),
    ...(await listAll(deps.ec2.listInstancesWithTagKey(keys.ami))),
  ]) {
    instances.set(i.instanceId, [i]);
  }
  const snapshots = await listAll(
    deps.ec2.listSnapshotsTagged({ [keys.managed]: 'true', [keys.deployment]: deployment }),
  );
  const images: ImageDetails[] = await deps.images.listImagesTagged({
    [keys.managed]: 'true',
    [keys.deployment]: deployment,
  });
  const others = await otherLiveResources(snapshots, new Set(instances.keys()), deps);
  const report = buildRecoveryReport({
    ...others,
    instances: [...instances.values()].flat(),
    snapshots,
    images,
    catalog,
    keys,
    deployment,
    now: deps.clock(),
    schedule,
  });
  const { blocked, warnings: blockedWarnings } = await blockedDeletions(schedule, deps, common);
  const priced = await reportCosts(
    report.instances,
    snapshots,
    deps.sizes,
    deps.config,
    deps.clock(),
    deps.logger,
  );
  return withRestoreTests(
    {
      ...report,
      instances: priced.instances,
      costs: priced.costs,
      blocked,
      blockedGiB: blocked.reduce((n, b) => n + (b.sizeGiB ?? 0), 0),
      note: 'GiB are the sizes of the source volumes; the bytes a deletion would free may be less, since snapshots are incremental.',
      ...(blockedWarnings.length > 0 ? { blockedWarnings } : {}),
    },
    deps,
  );
}

async function listAll<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** The live instances (and their volumes) that snapshots name but that no longer opt in. */
async function otherLiveResources(
  snapshots: readonly SnapshotFacts[],
  tagged: ReadonlySet<string>,
  deps: OpsDependencies,
): Promise<{ otherLiveInstanceIds: Set<string>; otherLiveVolumeIds: Set<string> }> {
  const { keys } = deps.config;
  const candidates = [
    ...new Set(
      snapshots
        .map((s) => s.tags[keys.instanceId])
        .filter((id): id is string => !!id && !tagged.has(id)),
    ),
  ];
  const otherLiveInstanceIds = new Set<string>();
  const otherLiveVolumeIds = new Set<string>();
  if (candidates.length > 0) {
    for await (const i of deps.ec2.listInstancesByIds(candidates)) {
      otherLiveInstanceIds.add(i.instanceId);
      for (const v of i.volumes) otherLiveVolumeIds.add(v.volumeId);
    }
  }
  return { otherLiveInstanceIds, otherLiveVolumeIds };
}

type BlockedDeletion = ConsoleRecoveryReport['blocked'][number];

/**
 * The deletions that something blocks: snapshots retention would delete (a dry
 * retention run per schedule), AMI snapshots the sweep would, and AMIs retention would
 * deregister but an instance, launch template, Auto Scaling group, protection or the
 * disabled state holds (a dry AMI run per schedule). A run that cannot read is a warning.
 */
async function blockedDeletions(
  schedule: string | undefined,
  deps: OpsDependencies,
  common: Common,
): Promise<{ blocked: BlockedDeletion[]; warnings: string[] }> {
  const names = schedule ? [schedule] : [...deps.config.catalog.schedules.keys()];
  const blocked: BlockedDeletion[] = [];
  const warnings: string[] = [];
  const held = (what: string, name: string, error: { message: string } | undefined) =>
    `${what} held for ${name} could not be read (${error?.message ?? 'no error given'}): the list may be short`;
  for (const name of names) {
    const retention = await runRetentionJob(
      { schedule: name, dryRun: true, trigger: 'console' },
      { ...common, ec2: deps.ec2 },
    );
    if (retention.status === 'failed') warnings.push(held('snapshots', name, retention.error));
    for (const v of retention.volumes)
      for (const b of v.blocked)
        blocked.push({
          resourceId: b.snapshotId,
          reason: b.reason,
          heldBy: b.heldBy,
          sizeGiB: b.sizeGiB,
        });
  }
  const sweep: SweepReport = await runSweepJob(
    { dryRun: true, trigger: 'console' },
    { ...common, ec2: deps.ec2, images: deps.images },
  );
  for (const b of sweep.blocked)
    blocked.push({
      resourceId: b.snapshotId,
      reason: b.reason,
      heldBy: b.heldBy ?? [],
      sizeGiB: b.sizeGiB,
    });
  for (const name of names) {
    const amis = await runAmiJob(
      { schedule: name, dryRun: true, trigger: 'console' },
      {
        ...common,
        ec2: deps.ec2,
        images: deps.images,
        autoScaling: deps.autoScaling,
        recycleBin: deps.recycleBin,
      },
    );
    if (amis.status === 'failed') warnings.push(held('AMIs', name, amis.error));
    for (const b of amis.blocked)
      if (!blocked.some((x) => x.resourceId === b.imageId))
        blocked.push({
          resourceId: b.imageId,
          reason: b.reason,
          heldBy: b.heldBy,
          sizeGiB: b.sizeGiB,
        });
  }
  return { blocked, warnings };
}

/**
 * Rejects a console backup naming an instance that does not exist here (or is
 * terminated): the answer names the id, and nothing is backed up.
 *
 * @throws {InvalidEventError} naming `instanceIds` and the ids not found.
 */
async function requireInstances(ids: readonly string[], deps: OpsDependencies): Promise<void> {
  const found = new Set<string>();
  for await (const instance of deps.ec2.listInstancesByIds(ids)) found.add(instance.instanceId);
  const missing = [...new Set(ids)].filter((id) => !found.has(id));
  if (missing.length === 0) return;
  const shown = missing.slice(0, 10).join(', ');
  const more = missing.length > 10 ? ` and ${missing.length - 10} more` : '';
  throw new InvalidEventError(
    `field "instanceIds": ${shown}${more} ${missing.length === 1 ? 'is not an instance' : 'are not instances'} of this account in ${deps.config.region} (unknown or terminated); nothing was backed up`,
  );
}

const ORDER: RunStatus[] = ['succeeded', 'partial', 'incomplete', 'failed'];
function worst(a: RunStatus, b: RunStatus): RunStatus {
  return ORDER[Math.max(ORDER.indexOf(a), ORDER.indexOf(b))] ?? 'failed';
}
