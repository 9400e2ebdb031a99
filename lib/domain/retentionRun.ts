import type { InstanceFacts } from './backupPlan.ts';
import {
  type CreationRecord,
  imageOfSnapshot,
  isDisasterRecoveryCopy,
  lineageVolumeId,
  type Ownership,
  ownershipOf,
  UNKNOWN_VOLUME_ID,
} from './provenance.ts';
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
import { isManagedBy, type SnapshotFacts, toRecoveryPoint } from './snapshotFacts.ts';
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
  /**
   * What the run history recorded as created by this deployment; absent means the tags
   * alone decide (as before creation records existed).
   */
  readonly ownership?: Ownership | undefined;
}

/** Why a snapshot listed with this schedule's tags is not part of any volume's lineage. */
export type ExclusionKind = 'copy' | 'image-snapshot' | 'unknown-volume' | 'unrecorded';

/** A snapshot left out of the stage's snapshot retention, never deleted by it, with the reason. */
export interface ExcludedSnapshot {
  readonly snapshotId: string;
  readonly kind: ExclusionKind;
  readonly reason: string;
  readonly sizeGiB?: number | undefined;
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
  /** Where the rule came from: the live instance, the policy recorded at creation, or the schedule. */
  readonly policyFrom?: 'instance' | 'recorded' | 'schedule' | undefined;
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
   * Snapshots this retention does not own, kept and reported: disaster-recovery copies
   * (the copy job's), AMI snapshots (AMI retention's), snapshots of an unknown volume,
   * and snapshots tagged as ours that the run history never recorded creating.
   */
  readonly excluded: readonly ExcludedSnapshot[];
  /**
   * The dead-man's switch: the age in whole seconds of the oldest "newest completed
   * snapshot" across the volumes that still opt in; absent when none has one.
   */
  readonly oldestRecoveryPointAgeSeconds?: number;
}

/**
 * Plans one schedule's retention run. First it sets aside, kept and reported in
 * `excluded`, what this retention does not own: disaster-recovery copies (the copy
 * job's), snapshots made by CreateImage (AMI retention's), snapshots of an unknown
 * volume (`vol-ffffffff` with no recorded volume), and snapshots tagged as ours that
 * the run history never recorded creating. It groups the rest by source volume (the
 * recorded one first), finds each volume's lineage (the live instance that opts it in,
 * or an orphan), chooses the rule (the opted-in instance's retention tags; for an
 * orphan, the policy recorded on its snapshots at creation; else the schedule's
 * defaults; manual backups always keep MANUAL_RETAIN_DAYS) and plans each volume with
 * {@link planRetention}, or keeps everything when the opt-in or retention tags, or the
 * history, cannot be read. Pure: every fact comes in as an argument. Linear in the
 * number of snapshots (plus a sort per volume).
 *
 * @example
 * const plan = planScheduleRetention({ schedule, snapshots, holders, instances, volumeTags, keys, catalog, deployment: 'prod', now });
 * plan.volumes.flatMap((v) => v.plan.decisions.filter((d) => d.action === 'delete'));
 */
export function planScheduleRetention(input: ScheduleRetentionInput): ScheduleRetentionPlan {
  const { schedule, now } = input;
  const intervalMs = scheduleIntervalMs(schedule, now);
  const ownership: Ownership = input.ownership ?? { kind: 'tags' };
  const { byVolume, excluded } = sortIntoLineages(input, ownership);
  const volumes: PlannedVolumeRetention[] = [];
  let plannedDeletes = 0;
  let oldestAgeMs: number | undefined;
  for (const [volumeId, history] of byVolume) {
    const { planned, points } = planVolume(volumeId, history, input, ownership, intervalMs);
    for (const decision of planned.plan.decisions)
      if (decision.action === 'delete') plannedDeletes += 1;
    if (!planned.lineage.orphan) {
      const newest = newestCompletedMs(points);
      if (newest !== undefined) {
        const ageMs = now.getTime() - newest;
        if (oldestAgeMs === undefined || ageMs > oldestAgeMs) oldestAgeMs = ageMs;
      }
    }
    volumes.push(planned);
  }
  return {
    volumes,
    plannedDeletes,
    excluded,
    ...(oldestAgeMs !== undefined
      ? { oldestRecoveryPointAgeSeconds: Math.round(oldestAgeMs / 1000) }
      : {}),
  };
}

/**
 * Sets aside what this retention does not own (kept, with the reason) and groups the
 * rest by source volume (the recorded one first), in the order the volumes first appear.
 */
function sortIntoLineages(
  input: ScheduleRetentionInput,
  ownership: Ownership,
): { byVolume: Map<string, SnapshotFacts[]>; excluded: ExcludedSnapshot[] } {
  const { keys } = input;
  const recorded: ReadonlyMap<string, CreationRecord> =
    ownership.kind === 'history' ? ownership.recorded : new Map();
  const byVolume = new Map<string, SnapshotFacts[]>();
  const excluded: ExcludedSnapshot[] = [];
  const exclude = (snapshot: SnapshotFacts, kind: ExclusionKind, reason: string) =>
    excluded.push({ snapshotId: snapshot.snapshotId, kind, reason, sizeGiB: snapshot.sizeGiB });
  for (const snapshot of input.snapshots) {
    const record = recorded.get(snapshot.snapshotId);
    if (isDisasterRecoveryCopy(snapshot.tags, keys) || record?.kind === 'copy') {
      exclude(
        snapshot,
        'copy',
        "kept: a disaster-recovery copy; only the copy job's retention (copy-retain) removes copies",
      );
      continue;
    }
    const imageId = imageOfSnapshot(snapshot.description);
    if (imageId !== undefined || record?.kind === 'image') {
      exclude(
        snapshot,
        'image-snapshot',
        `kept: made by CreateImage${imageId ? ` for ${imageId}` : ''}; it belongs to AMI retention and never counts toward a volume's snapshots`,
      );
      continue;
    }
    const volumeId = lineageVolumeId(snapshot.volumeId, record);
    if (volumeId === undefined) {
      exclude(
        snapshot,
        'unknown-volume',
        `kept: EC2 reports its volume as ${UNKNOWN_VOLUME_ID} and the run history records no source volume, so it belongs to no lineage`,
      );
      continue;
    }
    if (isManagedBy(snapshot.tags, keys, input.deployment)) {
      const verdict = ownershipOf(snapshot.snapshotId, 'snapshot', snapshot.startTime, ownership);
      if (!verdict.owned && ownership.kind !== 'unreadable') {
        exclude(snapshot, 'unrecorded', verdict.reason);
        continue;
      }
    }
    const history = byVolume.get(volumeId);
    if (history) history.push(snapshot);
    else byVolume.set(volumeId, [snapshot]);
  }
  return { byVolume, excluded };
}

/**
 * One volume's lineage, rule and plan: {@link planRetention} with the rule, or keep
 * everything when the opt-in or retention tags, or the history, cannot be read.
 */
function planVolume(
  volumeId: string,
  history: readonly SnapshotFacts[],
  input: ScheduleRetentionInput,
  ownership: Ownership,
  intervalMs: number,
): { planned: PlannedVolumeRetention; points: RecoveryPoint[] } {
  const { schedule, keys, catalog, now } = input;
  const found = describeLineage(volumeId, history, input);
  const points = history.map((s) => toRecoveryPoint(s, keys, input.deployment, input.holders, now));
  // Manual backups keep MANUAL_RETAIN_DAYS whatever the instance's own retention tags say.
  const manual = schedule.name === MANUAL_SCHEDULE;
  const rule =
    found.policySource && !manual
      ? retentionRuleFor(
          schedule,
          found.policySource.tags,
          found.policySource.resourceId,
          keys,
          catalog,
        )
      : retentionRuleFor(schedule, undefined, volumeId, keys, catalog);
  const optInUnreadable = found.problems.length > 0;
  const historyUnreadable =
    ownership.kind === 'unreadable'
      ? `the run history cannot be read (${ownership.reason}), so what this deployment created is unknown`
      : undefined;
  const problems = [
    ...found.problems,
    ...rule.problems.map((p) => p.message),
    ...(historyUnreadable ? [historyUnreadable] : []),
  ];
  const plan = historyUnreadable
    ? keepAll(points, `kept: ${historyUnreadable}`)
    : rule.rule && !optInUnreadable
      ? planRetention(points, rule.rule, {
          now,
          timezone: schedule.timezone,
          orphan: found.orphan,
          sourceLive: found.sourceLive,
          expireOrphansAfterDays: schedule.expireOrphansAfterDays,
          intervalMs,
        })
      : keepAll(
          points,
          `kept: ${optInUnreadable ? "the instance's opt-in tag" : 'retention tags'} cannot be read (${problems.join('; ')})`,
        );
  const lineage: VolumeLineage = {
    volumeId,
    instanceId: found.instanceId,
    name: found.name,
    orphan: found.orphan,
    rule: rule.rule,
    problems,
    policyFrom: manual || !found.policySource ? 'schedule' : found.policySource.from,
  };
  return { planned: { lineage, plan }, points };
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
  for (const key of [
    keys.managed,
    keys.deployment,
    keys.createdAt,
    keys.instanceId,
    'Name',
    ...recordedPolicyKeys(keys),
    keys.sourceRegion,
    keys.sourceSnapshotId,
    keys.sourceImageId,
  ]) {
    const value = snapshot.tags[key];
    if (value !== undefined && Object.hasOwn(snapshot.tags, key)) tags[key] = value;
  }
  const imageId = imageOfSnapshot(snapshot.description);
  return {
    snapshotId: snapshot.snapshotId,
    volumeId: snapshot.volumeId,
    state: snapshot.state,
    startTime: snapshot.startTime,
    tags,
    sizeGiB: snapshot.sizeGiB,
    // What the cost ledger reads (lib/jobs/snapshotSizes.ts).
    ...(snapshot.fullSizeBytes !== undefined ? { fullSizeBytes: snapshot.fullSizeBytes } : {}),
    ...(snapshot.storageTier !== undefined ? { storageTier: snapshot.storageTier } : {}),
    // Only what planning reads of the description: whether CreateImage made it, for which AMI.
    ...(imageId ? { description: `Created by CreateImage() for ${imageId}` } : {}),
  };
}

/** The retention tags recorded on a snapshot at creation (see `buildResourceTags`). */
function recordedPolicyKeys(keys: TagKeys): readonly string[] {
  return [keys.retain, keys.retainDays, keys.retainTiers];
}

/**
 * The retention policy recorded at creation on a lineage's snapshots: the tags of the
 * newest snapshot that carries any of them, or undefined when none does (made before
 * policies were recorded).
 *
 * @example
 * recordedPolicy(history, keys)?.tags['snapkeeper:retain']; // '10'
 */
export function recordedPolicy(
  history: readonly SnapshotFacts[],
  keys: TagKeys,
): { snapshotId: string; tags: TagMap } | undefined {
  let best: SnapshotFacts | undefined;
  for (const snapshot of history) {
    const has = recordedPolicyKeys(keys).some((key) => Object.hasOwn(snapshot.tags, key));
    if (!has) continue;
    if (!best || snapshot.startTime.getTime() > best.startTime.getTime()) best = snapshot;
  }
  if (!best) return undefined;
  const tags: Record<string, string> = {};
  for (const key of recordedPolicyKeys(keys)) {
    const value = best.tags[key];
    if (value !== undefined && Object.hasOwn(best.tags, key)) tags[key] = value;
  }
  return { snapshotId: best.snapshotId, tags };
}

interface FoundLineage {
  readonly instanceId?: string | undefined;
  readonly name?: string | undefined;
  readonly orphan: boolean;
  /** The instance the snapshots name still exists (an orphan only because it opts out). */
  readonly sourceLive: boolean;
  /**
   * Whose tags give the retention rule: the live instance that opts the volume in (the
   * operator's intent now), else the policy recorded on the snapshots at creation, else
   * (nothing recorded) the instance that still exists.
   */
  readonly policySource?:
    | { resourceId: string; tags: TagMap; from: 'instance' | 'recorded' }
    | undefined;
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
  const recorded = recordedPolicy(history, keys);
  const recordedSource = recorded
    ? { resourceId: recorded.snapshotId, tags: recorded.tags, from: 'recorded' as const }
    : undefined;
  if (!instance || !instanceId) {
    return {
      instanceId,
      name,
      orphan: true,
      sourceLive: false,
      policySource: recordedSource,
      problems: [],
    };
  }
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
    (policy.schedules.includes(input.schedule.name) ||
      policy.expressions?.includes(input.schedule.name)) &&
    attachment !== undefined &&
    !skipped &&
    !bootExcluded;
  return {
    instanceId,
    name: instance.tags.Name ?? name,
    orphan: !optedIn,
    sourceLive: true,
    // An orphan keeps the policy its snapshots were made under, never a smaller default.
    policySource:
      optedIn || !recordedSource
        ? { resourceId: instanceId, tags: instance.tags, from: 'instance' as const }
        : recordedSource,
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
