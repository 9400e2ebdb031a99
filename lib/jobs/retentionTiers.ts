/**
 * What the retention run does about locks and the archive tier, kept out of the job's
 * own function: before planning, re-check the locks (re-apply a missing one, report a
 * failure) and turn every lock EC2 reports into a hold the planner blocks on; after
 * planning, keep archived points whose 90-day archive minimum is not served (deleting
 * them would bill the rest anyway); after deleting, archive what pays.
 */
import { toAwsCallError } from '../aws/errors.ts';
import { archiveMinimumEnds, earlyDeletionNote, type TierStatus } from '../domain/archiveTier.ts';
import type { InstanceFacts } from '../domain/backupPlan.ts';
import type { RetentionDecision } from '../domain/retentionPlan.ts';
import type { PlannedVolumeRetention } from '../domain/retentionRun.ts';
import { type ScheduleDefinition, scheduleIntervalMs } from '../domain/schedules.ts';
import { isManagedBy, type SnapshotFacts } from '../domain/snapshotFacts.ts';
import { type LockHold, readScheduleLock } from '../domain/snapshotLock.ts';
import type { TagKeys } from '../domain/tagKeys.ts';
import { type ArchiveOutcome, archiveEligible } from './archiveTiering.ts';
import type { ActionJournal, LoggerPort, SnapshotTiersPort } from './ports.ts';
import {
  type LockedPoint,
  type LockOutcome,
  lockTagKey,
  recheckLocks,
  resolveLockRule,
} from './snapshotLocks.ts';

/** What the retention run's lock and archive parts read and act through. */
export interface RetentionTiersDependencies {
  /** Absent (benches, tests of other rules): no lock or tier call is made. */
  readonly tiers?: SnapshotTiersPort | undefined;
  readonly journal: ActionJournal;
  readonly logger: LoggerPort;
  readonly runId: string;
  readonly keys: TagKeys;
  readonly deployment: string;
  readonly knownSchedules: readonly string[];
  readonly allowComplianceLocks: boolean;
}

/** The lock part's result: holds to plan with, what was re-locked, and tag problems. */
export interface LockRecheck {
  readonly holds: ReadonlyMap<string, LockHold>;
  readonly outcomes: readonly LockOutcome[];
  readonly problems: readonly string[];
}

/**
 * Re-checks the locks of a schedule's snapshots when the schedule or any opted-in
 * instance asks for locks; otherwise makes no call (an account that never locks pays
 * nothing). Throws when the locks cannot be read: the run then deletes nothing.
 *
 * @example
 * const { holds } = await recheckScheduleLocks(schedule, snapshots, instances, now, dryRun, deps);
 */
export async function recheckScheduleLocks(
  schedule: ScheduleDefinition,
  snapshots: readonly SnapshotFacts[],
  instances: ReadonlyMap<string, InstanceFacts>,
  now: Date,
  dryRun: boolean,
  deps: RetentionTiersDependencies,
): Promise<LockRecheck> {
  const tagKey = lockTagKey(deps.keys);
  const anyTag = [...instances.values()].some((i) => i.tags[tagKey] !== undefined);
  if (!deps.tiers || (schedule.lock === undefined && !anyTag) || snapshots.length === 0) {
    return { holds: new Map(), outcomes: [], problems: [] };
  }
  const scheduleRule =
    schedule.lock === undefined
      ? undefined
      : readScheduleLock(schedule.name, schedule.lock, deps.allowComplianceLocks);
  const points: LockedPoint[] = [];
  const problems = new Set<string>();
  for (const snapshot of snapshots) {
    if (!isManagedBy(snapshot.tags, deps.keys, deps.deployment)) continue;
    if (snapshot.state !== 'completed' && snapshot.state !== 'pending') continue;
    const instance = instances.get(snapshot.tags[deps.keys.instanceId] ?? '');
    const { rule, problem } = resolveLockRule(
      instance?.tags ?? {},
      deps.keys,
      schedule.name,
      deps.knownSchedules,
      scheduleRule,
      deps.allowComplianceLocks,
    );
    if (problem) problems.add(problem);
    if (rule) points.push({ snapshotId: snapshot.snapshotId, createdAt: snapshot.startTime, rule });
  }
  const { outcomes, holds } = await recheckLocks(
    points,
    snapshots.map((s) => s.snapshotId),
    now,
    dryRun,
    {
      tiers: deps.tiers,
      journal: deps.journal,
      logger: deps.logger,
      runId: deps.runId,
      job: 'retention',
    },
  );
  return { holds, outcomes, problems: [...problems] };
}

/**
 * Keeps the archived points the plan deletes before their 90-day archive minimum is
 * served (when each was archived is read with DescribeSnapshotTierStatus): deleting
 * early bills the rest of the minimum anyway. Makes no call when no point in the plan's
 * deletions is archived. Returns the volumes and the deletions left.
 *
 * @example
 * const held = await holdArchiveMinimum(planned, snapshots, now, deps);
 */
export async function holdArchiveMinimum(
  volumes: readonly PlannedVolumeRetention[],
  snapshots: readonly SnapshotFacts[],
  now: Date,
  deps: Pick<RetentionTiersDependencies, 'tiers'>,
): Promise<{ volumes: PlannedVolumeRetention[]; plannedDeletes: number }> {
  const facts = new Map(snapshots.map((s) => [s.snapshotId, s]));
  const deleting = volumes.flatMap((v) =>
    v.plan.decisions.filter((d) => d.action === 'delete').map((d) => d.id),
  );
  const archived = deleting.filter((id) => facts.get(id)?.storageTier === 'archive');
  let statuses: Map<string, TierStatus> | undefined = new Map();
  let unreadable: string | undefined;
  if (deps.tiers && archived.length > 0) {
    try {
      statuses = await deps.tiers.tierStatuses(archived);
    } catch (error) {
      statuses = undefined;
      unreadable = toAwsCallError('DescribeSnapshotTierStatus', error).message;
    }
  }
  let plannedDeletes = 0;
  const held = volumes.map((volume) => {
    const decisions = volume.plan.decisions.map((d): RetentionDecision => {
      if (d.action !== 'delete') return d;
      if (!statuses && archived.includes(d.id)) {
        // When it was archived cannot be read: kept, the side that never deletes early.
        return {
          id: d.id,
          action: 'keep',
          reason: `kept: ${d.reason}, but archived and ${unreadable}`,
        };
      }
      const ends = archiveMinimumEnds(statuses?.get(d.id)?.lastTieringStartTime, now);
      if (!ends) {
        plannedDeletes += 1;
        return d;
      }
      return {
        id: d.id,
        action: 'keep',
        reason: `kept: ${d.reason}, but ${earlyDeletionNote(ends, facts.get(d.id)?.sizeGiB)}`,
      };
    });
    return { ...volume, plan: { ...volume.plan, decisions } };
  });
  return { volumes: held, plannedDeletes };
}

/**
 * The archive step of a schedule with `archiveAfterDays` (never the manual schedule's).
 *
 * @example
 * const archive = await archiveScheduleStep(schedule, planned, snapshots, holders, holds, now, dryRun, deps);
 */
export async function archiveScheduleStep(
  schedule: ScheduleDefinition,
  volumes: readonly PlannedVolumeRetention[],
  snapshots: readonly SnapshotFacts[],
  holders: ReadonlyMap<string, readonly string[]>,
  holds: ReadonlyMap<string, LockHold>,
  now: Date,
  dryRun: boolean,
  deps: RetentionTiersDependencies,
): Promise<ArchiveOutcome[]> {
  if (!deps.tiers || schedule.archiveAfterDays === undefined) return [];
  const facts = new Map(snapshots.map((s) => [s.snapshotId, s]));
  const lineages = volumes.map(({ lineage, plan }) => ({
    volumeId: lineage.volumeId,
    orphan: lineage.orphan,
    rule: lineage.problems.length > 0 ? undefined : lineage.rule,
    snapshots: plan.decisions.flatMap((d) => {
      const snapshot = facts.get(d.id);
      return snapshot ? [snapshot] : [];
    }),
    deleting: new Set(plan.decisions.filter((d) => d.action === 'delete').map((d) => d.id)),
  }));
  return archiveEligible(
    lineages,
    {
      archiveAfterDays: schedule.archiveAfterDays,
      intervalDays: scheduleIntervalMs(schedule, now) / 86_400_000,
      now,
      dryRun,
    },
    {
      tiers: deps.tiers,
      journal: deps.journal,
      logger: deps.logger,
      runId: deps.runId,
      keys: deps.keys,
      deployment: deps.deployment,
      holders,
      lockedUntil: new Map([...holds].map(([id, hold]) => [id, hold.until])),
    },
  );
}
