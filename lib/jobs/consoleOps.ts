import type { ImageDetails } from '../aws/Ec2ImageGateway.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
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
  RunStatus,
} from './ports.ts';
import { duplicateInstance, restoreInstance, restoreVolume } from './restoreJobs.ts';
import { consoleRestoreTest } from './restoreTestConsole.ts';
import { type RestoreTestStatus, restoreTestStatuses } from './restoreTestJob.ts';
import { type RetentionReport, runRetentionJob } from './retentionJob.ts';
import { runSweepJob, type SweepReport } from './sweepJob.ts';

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
  const done = (
    status: RunStatus,
    result: unknown,
    counts?: Readonly<Record<string, number>>,
    error?: OpsReport['error'],
  ): OpsReport => ({
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
  const common = {
    config: deps.config,
    clock: deps.clock,
    runId: deps.runId,
    logger: deps.logger,
    journal: deps.journal,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ledger: deps.ledger,
  };
  const restoreDeps = {
    ...common,
    ec2: deps.ec2,
    images: deps.images,
    restore: deps.restore,
    history: deps.history,
  };

  switch (payload.action) {
    case 'backup': {
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
        { ...common, ec2: deps.ec2 },
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
      return done('succeeded', { schedules }, { schedules: schedules.length, lines });
    }
    case 'report': {
      const report = await recoveryReport(payload.schedule, deps, common);
      const status: RunStatus =
        report.totals.rpoMissed > 0 || report.totals.neverBackedUp > 0 ? 'partial' : 'succeeded';
      return done(status, report, { ...report.totals, blocked: report.blocked.length });
    }
    case 'restore-volume': {
      const result = await restoreVolume(payload, restoreDeps);
      return done(
        result.status === 'failed' ? 'failed' : 'succeeded',
        result,
        undefined,
        result.error,
      );
    }
    case 'restore-drill': {
      const result = await restoreVolume({ ...payload }, restoreDeps, true);
      return done(
        result.status === 'failed' ? 'failed' : 'succeeded',
        result,
        result.waitedMs !== undefined
          ? { secondsToAvailable: Math.round(result.waitedMs / 1000) }
          : undefined,
        result.error,
      );
    }
    case 'restore-test': {
      const test = await consoleRestoreTest(
        payload,
        restoreTestDependencies(deps),
        deps.config.catalog,
        deps.config.functionTimeoutMs,
      );
      return done(test.status, test, test.counts, test.error);
    }
    case 'duplicate-instance': {
      const result = await duplicateInstance(payload, restoreDeps);
      return done(
        result.status === 'failed' ? 'failed' : 'succeeded',
        result,
        undefined,
        result.error,
      );
    }
    case 'restore-instance': {
      const result = await restoreInstance(payload, restoreDeps);
      return done(
        result.status === 'failed' ? 'failed' : 'succeeded',
        result,
        undefined,
        result.error,
      );
    }
  }
}

function restoreTestReaders(deps: OpsDependencies) {
  return {
    history: {
      resourceHistory:
        deps.history.resourceHistory?.bind(deps.history) ??
        (async () => Promise.reject(new Error('this function reads no run history'))),
    },
    clock: deps.clock,
    logger: deps.logger,
  };
}

function restoreTestDependencies(deps: OpsDependencies) {
  if (!deps.restoreTests)
    throw new InvalidEventError('action "restore-test" is not available in this function');
  return {
    ...restoreTestReaders(deps),
    ec2: deps.ec2,
    instances: deps.restore,
    tests: deps.restoreTests,
    config: deps.config,
    runId: deps.runId,
    metrics: deps.metrics ?? { count: () => undefined },
    journal: deps.journal,
  };
}

interface Common {
  readonly config: SnapkeeperConfig;
  readonly clock: () => Date;
  readonly runId: string;
  readonly logger: LoggerPort;
  readonly journal: ActionJournal;
  readonly metrics?: MetricsPort;
  readonly ledger: CreationLedger | undefined;
}

/** One schedule's plan: what every job would do, one reason per line, and when it runs next. */
export interface SchedulePlan {
  readonly schedule: string;
  readonly nextRun: string;
  readonly lines: readonly string[];
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
    { ...common, ec2: deps.ec2 },
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
    for (const d of v.deletions) lines.push(`delete ${d.snapshotId} of ${v.volumeId}: ${d.reason}`);
    for (const k of v.kept) lines.push(`keep ${k.snapshotId} of ${v.volumeId}: ${k.reason}`);
    for (const b of v.blocked) lines.push(`blocked ${b.snapshotId} of ${v.volumeId}: ${b.reason}`);
    if (v.failing) lines.push(`warning ${v.volumeId}: backups failing (${v.failing})`);
  }
  if (retention.cap.exceeded) lines.push(`warning: ${retention.cap.reason}`);
  return { schedule: name, nextRun: nextRun.toISOString(), lines };
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
}

async function recoveryReport(
  scheduleName: string | undefined,
  deps: OpsDependencies,
  common: Common,
): Promise<ConsoleRecoveryReport> {
  const { keys, deployment, catalog } = deps.config;
  const schedule = scheduleName ? resolveSchedule(catalog, scheduleName).name : undefined;
  const instances = new Map<string, Awaited<ReturnType<typeof first>>>();
  async function first(x: ReturnType<Ec2Port['listInstancesWithTagKey']>) {
    const all = [];
    for await (const i of x) all.push(i);
    return all;
  }
  for (const i of [
    ...(await first(deps.ec2.listInstancesWithTagKey(keys.backup))),
    ...(await first(deps.ec2.listInstancesWithTagKey(keys.ami))),
  ]) {
    instances.set(i.instanceId, [i]);
  }
  const snapshots: SnapshotFacts[] = [];
  for await (const s of deps.ec2.listSnapshotsTagged({
    [keys.managed]: 'true',
    [keys.deployment]: deployment,
  }))
    snapshots.push(s);
  const images: ImageDetails[] = await deps.images.listImagesTagged({
    [keys.managed]: 'true',
    [keys.deployment]: deployment,
  });
  const tagged = new Set(instances.keys());
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
  const report = buildRecoveryReport({
    otherLiveInstanceIds,
    otherLiveVolumeIds,
    instances: [...instances.values()].flat(),
    snapshots,
    images,
    catalog,
    keys,
    deployment,
    now: deps.clock(),
    schedule,
  });
  const blocked: ConsoleRecoveryReport['blocked'][number][] = [];
  const blockedWarnings: string[] = [];
  for (const name of schedule ? [schedule] : [...catalog.schedules.keys()]) {
    const retention = await runRetentionJob(
      { schedule: name, dryRun: true, trigger: 'console' },
      { ...common, ec2: deps.ec2 },
    );
    if (retention.status === 'failed')
      blockedWarnings.push(
        `snapshots held for ${name} could not be read (${retention.error?.message ?? 'no error given'}): the list may be short`,
      );
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
  // AMIs retention would deregister but an instance, launch template, Auto Scaling
  // group, protection or the disabled state holds (a dry AMI run per schedule).
  for (const name of schedule ? [schedule] : [...catalog.schedules.keys()]) {
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
    if (amis.status === 'failed')
      blockedWarnings.push(
        `AMIs held for ${name} could not be read (${amis.error?.message ?? 'no error given'}): the list may be short`,
      );
    for (const b of amis.blocked)
      if (!blocked.some((x) => x.resourceId === b.imageId))
        blocked.push({
          resourceId: b.imageId,
          reason: b.reason,
          heldBy: b.heldBy,
          sizeGiB: b.sizeGiB,
        });
  }
  const tests = await restoreTestStatuses(
    report.instances.map((i) => i.instanceId),
    restoreTestReaders(deps),
  );
  return {
    ...report,
    instances: report.instances.map((i) => ({
      ...i,
      restoreTest: tests.statuses.get(i.instanceId),
    })),
    restoreTests: {
      neverTested: [...tests.statuses.values()].filter((t) => t.neverTested).length,
      ...(tests.warnings.length > 0 ? { warnings: tests.warnings } : {}),
    },
    blocked,
    blockedGiB: blocked.reduce((n, b) => n + (b.sizeGiB ?? 0), 0),
    note: 'GiB are the sizes of the source volumes; the bytes a deletion would free may be less, since snapshots are incremental.',
    ...(blockedWarnings.length > 0 ? { blockedWarnings } : {}),
  };
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
