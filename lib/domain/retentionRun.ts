import type { InstanceFacts } from './backupPlan.ts';
import {
  keepAll,
  planRetention,
  type RecoveryPoint,
  type RetentionPlan,
  type RetentionRule,
} from './retentionPlan.ts';
import { retentionRuleFor } from './retentionPolicy.ts';
import {
  MANUAL_SCHEDULE,
  type ScheduleCatalog,
  type ScheduleDefinition,
  scheduleIntervalMs,
} from './schedules.ts';
import { type SnapshotFacts, toRecoveryPoint } from './snapshotFacts.ts';
import type { TagKeys } from './tagKeys.ts';
import { parseBooleanTag, readInstancePolicy, type TagMap } from './tagPolicy.ts';

/** Everything one schedule's retention run plans from, already read; nothing to call. */
export interface ScheduleRetentionInput {
  /** The schedule whose snapshots these are (`manual` included). */
  readonly schedule: ScheduleDefinition;
  /** This deployment's managed snapshots of the schedule, in the order they were listed. */
  readonly snapshots: readonly SnapshotFacts[];
  /** Snapshot id → the registered images that use it. */
  readonly holders: ReadonlyMap<string, readonly string[]>;
  /** The opted-in fleet (instances carrying the backup tag), by instance id. */
  readonly instances: ReadonlyMap<string, InstanceFacts>;
  /** Tags of the volumes that carry the skip tag, by volume id. */
  readonly volumeTags: ReadonlyMap<string, TagMap>;
  readonly keys: TagKeys;
  readonly catalog: ScheduleCatalog;
  readonly deployment: string;
  /** The run's start: ages, the failing-backups guard and the dead-man's switch are measured from it. */
  readonly now: Date;
}

/** Whose history one volume's snapshots are, and whether it still opts in. */
export interface VolumeLineage {
  readonly volumeId: string;
  /** The instance the newest snapshot was taken of (its `instance-id` tag). */
  readonly instanceId?: string | undefined;
  readonly name?: string | undefined;
  /** The instance is gone, the volume detached or skipped, or the schedule no longer listed. */
  readonly orphan: boolean;
  /** The rule applied; absent when the retention tags cannot be read. */
  readonly rule?: RetentionRule | undefined;
  /** Unreadable opt-in or retention tags, one message each; non-empty means everything is kept. */
  readonly problems: readonly string[];
}

/** One volume's plan. */
export interface PlannedVolumeRetention {
  readonly lineage: VolumeLineage;
  readonly plan: RetentionPlan;
}

/** The plan of a whole retention run, volume by volume. */
export interface ScheduleRetentionPlan {
  /** One entry per volume, in the order the volumes first appear in the snapshots. */
  readonly volumes: readonly PlannedVolumeRetention[];
  /** Deletions planned over all volumes (what the deletion cap is checked against). */
  readonly plannedDeletes: number;
  /**
   * The dead-man's switch: the age in whole seconds of the oldest "newest completed
   * snapshot" across the volumes that still opt in; absent when none has one.
   */
  readonly oldestRecoveryPointAgeSeconds?: number;
}

/**
 * Plans one schedule's retention run: groups the snapshots by source volume, finds
 * each volume's lineage (the live instance that opts it in, or an orphan), chooses
 * the rule (the instance's retention tags over the schedule's defaults; manual backups
 * always keep MANUAL_RETAIN_DAYS) and plans each volume with {@link planRetention},
 * or keeps everything when the opt-in or retention tags cannot be read. Pure: every
 * fact comes in as an argument. Linear in the number of snapshots (plus a sort per volume).
 *
 * @example
 * const plan = planScheduleRetention({ schedule, snapshots, holders, instances, volumeTags, keys, catalog, deployment: 'prod', now });
 * plan.volumes.flatMap((v) => v.plan.decisions.filter((d) => d.action === 'delete'));
 */
export function planScheduleRetention(input: ScheduleRetentionInput): ScheduleRetentionPlan {
  const { schedule, keys, catalog, now } = input;
  const intervalMs = scheduleIntervalMs(schedule, now);
  const byVolume = new Map<string, SnapshotFacts[]>();
  for (const snapshot of input.snapshots) {
    const history = byVolume.get(snapshot.volumeId);
    if (history) history.push(snapshot);
    else byVolume.set(snapshot.volumeId, [snapshot]);
  }

  const volumes: PlannedVolumeRetention[] = [];
  let plannedDeletes = 0;
  let oldestAgeMs: number | undefined;
  for (const [volumeId, history] of byVolume) {
    const found = describeLineage(volumeId, history, input);
    const points = history.map((s) =>
      toRecoveryPoint(s, keys, input.deployment, input.holders, now),
    );
    // Manual backups keep MANUAL_RETAIN_DAYS whatever the instance's own retention tags say.
    const rule =
      found.policySource && schedule.name !== MANUAL_SCHEDULE
        ? retentionRuleFor(
            schedule,
            found.policySource.tags,
            found.policySource.instanceId,
            keys,
            catalog,
          )
        : retentionRuleFor(schedule, undefined, volumeId, keys, catalog);
    const optInUnreadable = found.problems.length > 0;
    const problems = [...found.problems, ...rule.problems.map((p) => p.message)];
    const plan =
      rule.rule && !optInUnreadable
        ? planRetention(points, rule.rule, {
            now,
            timezone: schedule.timezone,
            orphan: found.orphan,
            expireOrphansAfterDays: schedule.expireOrphansAfterDays,
            intervalMs,
          })
        : keepAll(
            points,
            `kept: ${optInUnreadable ? "the instance's opt-in tag" : 'retention tags'} cannot be read (${problems.join('; ')})`,
          );
    for (const decision of plan.decisions) if (decision.action === 'delete') plannedDeletes += 1;
    if (!found.orphan) {
      const newest = newestCompletedMs(points);
      if (newest !== undefined) {
        const ageMs = now.getTime() - newest;
        if (oldestAgeMs === undefined || ageMs > oldestAgeMs) oldestAgeMs = ageMs;
      }
    }
    volumes.push({
      lineage: {
        volumeId,
        instanceId: found.instanceId,
        name: found.name,
        orphan: found.orphan,
        rule: rule.rule,
        problems,
      },
      plan,
    });
  }
  return {
    volumes,
    plannedDeletes,
    ...(oldestAgeMs !== undefined
      ? { oldestRecoveryPointAgeSeconds: Math.round(oldestAgeMs / 1000) }
      : {}),
  };
}

/**
 * A snapshot reduced to what {@link planScheduleRetention} reads: ids, state, times,
 * size and only the tags it looks at (managed, deployment, created-at, instance-id and
 * Name). The retention job keeps this form of every snapshot it streams, which roughly
 * halves what 100,000 snapshots hold; planning either form gives the same plan.
 *
 * @example
 * for await (const s of ec2.listSnapshotsTagged(filter)) snapshots.push(retentionSnapshot(s, keys));
 */
export function retentionSnapshot(snapshot: SnapshotFacts, keys: TagKeys): SnapshotFacts {
  const tags: Record<string, string> = {};
  for (const key of [keys.managed, keys.deployment, keys.createdAt, keys.instanceId, 'Name']) {
    const value = snapshot.tags[key];
    if (value !== undefined && Object.hasOwn(snapshot.tags, key)) tags[key] = value;
  }
  return {
    snapshotId: snapshot.snapshotId,
    volumeId: snapshot.volumeId,
    state: snapshot.state,
    startTime: snapshot.startTime,
    tags,
    sizeGiB: snapshot.sizeGiB,
  };
}

interface FoundLineage {
  readonly instanceId?: string | undefined;
  readonly name?: string | undefined;
  readonly orphan: boolean;
  /** Whose tags give the retention rule: the live instance, when there is one. */
  readonly policySource?: { instanceId: string; tags: TagMap } | undefined;
  /** Problems of the opt-in tag: a live volume's history is then kept whole. */
  readonly problems: readonly string[];
}

function describeLineage(
  volumeId: string,
  history: readonly SnapshotFacts[],
  input: ScheduleRetentionInput,
): FoundLineage {
  const { keys, catalog } = input;
  // The newest by start time; among equals, the first listed.
  let newest: SnapshotFacts | undefined;
  for (const snapshot of history) {
    if (!newest || snapshot.startTime.getTime() > newest.startTime.getTime()) newest = snapshot;
  }
  const instanceId = newest?.tags[keys.instanceId];
  const name = newest?.tags.Name;
  const instance = instanceId ? input.instances.get(instanceId) : undefined;
  if (!instance || !instanceId) return { instanceId, name, orphan: true, problems: [] };
  const policy = readInstancePolicy(instanceId, instance.tags, keys, catalog);
  const attachment = instance.volumes.find((v) => v.volumeId === volumeId);
  const skipped = parseBooleanTag(
    volumeId,
    keys.skip,
    input.volumeTags.get(volumeId)?.[keys.skip],
    false,
  ).value;
  const bootExcluded = policy.excludeBoot && attachment?.deviceName === instance.rootDeviceName;
  const optedIn =
    policy.schedules.includes(input.schedule.name) &&
    attachment !== undefined &&
    !skipped &&
    !bootExcluded;
  return {
    instanceId,
    name: instance.tags.Name ?? name,
    orphan: !optedIn,
    policySource: { instanceId, tags: instance.tags },
    // A typo in the opt-in tag must not turn a live volume's history into an orphan.
    problems: policy.problems.filter((p) => p.key === keys.backup).map((p) => p.message),
  };
}

/** When the newest completed point was taken (its effective time), in ms. */
function newestCompletedMs(points: readonly RecoveryPoint[]): number | undefined {
  let newest: number | undefined;
  for (const point of points) {
    if (point.state !== 'completed') continue;
    const at = point.createdAt.getTime();
    if (newest === undefined || at > newest) newest = at;
  }
  return newest;
}
