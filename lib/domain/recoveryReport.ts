import type { InstanceFacts } from './backupPlan.ts';
import { type AppConsistentPoint, newestApplicationConsistent } from './consistency.ts';
import type { ImageFacts } from './imagePlan.ts';
import { type ScheduleCatalog, type ScheduleDefinition, scheduleIntervalMs } from './schedules.ts';
import { effectiveCreatedAt, isManagedBy, type SnapshotFacts } from './snapshotFacts.ts';
import type { TagKeys } from './tagKeys.ts';
import { parseOptInTag, parseScheduleList } from './tagPolicy.ts';
import { tagDefinitionOf } from './tagSchedules.ts';

/** Grace on top of a schedule's interval before its RPO counts as missed (DLM acts within the hour). */
export const RPO_GRACE_MS = 3_600_000;

/** One schedule's recovery point objective for one instance. */
export interface ScheduleRpo {
  readonly schedule: string;
  readonly intervalHours: number;
  /** Age of the newest completed snapshot made for this schedule, in hours. */
  readonly newestAgeHours?: number | undefined;
  /** True when the newest completed snapshot is younger than the interval plus an hour. */
  readonly met: boolean;
}

/** The recovery picture of one opted-in instance. */
export interface InstanceRecovery {
  readonly instanceId: string;
  readonly name?: string | undefined;
  readonly schedules: readonly string[];
  readonly newestSnapshot?:
    | { snapshotId: string; createdAt: string; ageHours: number; schedule: string }
    | undefined;
  readonly newestImage?:
    | { imageId: string; createdAt: string; ageHours: number; schedule: string }
    | undefined;
  readonly rpo: readonly ScheduleRpo[];
  /** The instance's `snapkeeper:consistency` tag, when it asks for application-consistent sets. */
  readonly consistency?: string | undefined;
  /** Its newest application-consistent point (a set tagged `snapkeeper:consistency=app`). */
  readonly newestAppConsistent?: AppConsistentPoint | undefined;
  /** Completed snapshot sets (one per run) that can restore the instance. */
  readonly recoveryPoints: number;
  /** Of those, the sets in the archive tier (a restore takes up to 72 hours); absent when none. */
  readonly archivedPoints?: number | undefined;
  readonly images: number;
  readonly neverBackedUp: boolean;
}

/** Managed snapshots of an instance that no longer exists. */
export interface OrphanedHistory {
  readonly instanceId: string;
  readonly name?: string | undefined;
  readonly snapshots: number;
  readonly sizeGiB: number;
  readonly newestCreatedAt: string;
}

/** The recovery-point report. */
export interface RecoveryReport {
  readonly generatedAt: string;
  readonly schedule?: string | undefined;
  readonly instances: readonly InstanceRecovery[];
  readonly neverBackedUp: readonly { instanceId: string; name?: string | undefined }[];
  readonly rpoMissed: readonly {
    instanceId: string;
    name?: string | undefined;
    schedule: string;
  }[];
  readonly orphaned: readonly OrphanedHistory[];
  readonly totals: {
    readonly instances: number;
    readonly rpoMet: number;
    readonly rpoMissed: number;
    readonly neverBackedUp: number;
    readonly managedSnapshots: number;
    readonly managedImages: number;
  };
}

/** What the report is computed from. */
export interface RecoveryReportInput {
  /** Instances carrying the backup or AMI opt-in tag (not terminated). */
  readonly instances: readonly InstanceFacts[];
  /** This deployment's managed snapshots (any state). */
  readonly snapshots: readonly SnapshotFacts[];
  /** This deployment's managed AMIs. */
  readonly images: readonly ImageFacts[];
  readonly catalog: ScheduleCatalog;
  readonly keys: TagKeys;
  readonly deployment: string;
  readonly now: Date;
  /** Only this schedule, when given. */
  readonly schedule?: string | undefined;
  /** Instances that still exist without an opt-in tag: their snapshots are not orphaned. */
  readonly otherLiveInstanceIds?: ReadonlySet<string> | undefined;
  /**
   * Volumes attached to instances that still exist (besides the opted-in instances'
   * own): a snapshot of one is not orphaned, whatever instance its tag names.
   */
  readonly otherLiveVolumeIds?: ReadonlySet<string> | undefined;
}

const HOUR = 3_600_000;
const round = (hours: number) => Math.round(hours * 10) / 10;

/**
 * The recovery-point report: per opted-in instance, its newest completed snapshot and
 * AMI, their age against each schedule's interval (RPO met or missed), how many
 * recovery points exist; the tagged instances never backed up; the managed snapshots
 * whose instance is gone (never those of a volume a live instance has). Pure
 * arithmetic over what was read.
 *
 * @example
 * const report = buildRecoveryReport({ instances, snapshots, images, catalog, keys, deployment, now });
 */
export function buildRecoveryReport(input: RecoveryReportInput): RecoveryReport {
  const { keys, now } = input;
  const managedSnapshots = input.snapshots.filter((s) =>
    isManagedBy(s.tags, keys, input.deployment),
  );
  const managedImages = input.images.filter((i) => isManagedBy(i.tags, keys, input.deployment));
  const facts: RecoveryFacts = {
    input,
    byInstance: groupByInstance(managedSnapshots, keys),
    imagesByInstance: groupByInstance(managedImages, keys),
    snapshotCreated: (s) => effectiveCreatedAt(s.tags, s.startTime, keys, now),
    imageCreated: (i) => effectiveCreatedAt(i.tags, i.creationDate ?? new Date(0), keys, now),
  };
  const instances = input.instances.flatMap((instance) => instanceRecovery(instance, facts) ?? []);
  const rpoMissed = instances.flatMap((i) =>
    i.rpo
      .filter((r) => !r.met)
      .map((r) => ({ instanceId: i.instanceId, name: i.name, schedule: r.schedule })),
  );
  return {
    generatedAt: now.toISOString(),
    ...(input.schedule ? { schedule: input.schedule } : {}),
    instances,
    neverBackedUp: instances
      .filter((i) => i.neverBackedUp)
      .map((i) => ({ instanceId: i.instanceId, name: i.name })),
    rpoMissed,
    orphaned: orphanedHistories(facts),
    totals: {
      instances: instances.length,
      rpoMet: instances.reduce((n, i) => n + i.rpo.filter((r) => r.met).length, 0),
      rpoMissed: rpoMissed.length,
      neverBackedUp: instances.filter((i) => i.neverBackedUp).length,
      managedSnapshots: managedSnapshots.length,
      managedImages: managedImages.length,
    },
  };
}

/** The consistency fields of an instance's line: present only when there is something to say. */
function consistencyOf(
  tag: string | undefined,
  completed: readonly SnapshotFacts[],
  keys: TagKeys,
  created: (s: SnapshotFacts) => Date,
  now: Date,
): { consistency?: string; newestAppConsistent?: AppConsistentPoint } {
  const newest = newestApplicationConsistent(
    completed,
    keys,
    (s) => created(s as SnapshotFacts),
    now,
  );
  return {
    ...(tag !== undefined ? { consistency: tag } : {}),
    ...(newest ? { newestAppConsistent: newest } : {}),
  };
}

/** What the report is built from: the input, this deployment's snapshots and AMIs by instance, and their creation times. */
interface RecoveryFacts {
  readonly input: RecoveryReportInput;
  readonly byInstance: ReadonlyMap<string, SnapshotFacts[]>;
  readonly imagesByInstance: ReadonlyMap<string, ImageFacts[]>;
  readonly snapshotCreated: (snapshot: SnapshotFacts) => Date;
  readonly imageCreated: (image: ImageFacts) => Date;
}

/** Resources by the instance their `instance-id` tag names (those without one are left out), in order. */
function groupByInstance<T extends { readonly tags: Readonly<Record<string, string>> }>(
  items: readonly T[],
  keys: TagKeys,
): Map<string, T[]> {
  const grouped = new Map<string, T[]>();
  for (const item of items) {
    const owner = item.tags[keys.instanceId];
    if (owner) grouped.set(owner, [...(grouped.get(owner) ?? []), item]);
  }
  return grouped;
}

/** The newest of some resources by their creation time. */
function newestOf<T>(items: readonly T[], created: (item: T) => Date): T | undefined {
  return [...items].sort((a, b) => created(b).getTime() - created(a).getTime())[0];
}

/** A recovery point as the report shows it: its id, creation, age and schedule. */
function pointOf<Id extends string>(
  idKey: Id,
  id: string,
  createdAt: Date,
  tags: Readonly<Record<string, string>>,
  facts: RecoveryFacts,
): Record<Id, string> & { createdAt: string; ageHours: number; schedule: string } {
  const { keys, now } = facts.input;
  return {
    [idKey]: id,
    createdAt: createdAt.toISOString(),
    ageHours: round((now.getTime() - createdAt.getTime()) / HOUR),
    schedule: tags[keys.schedule] ?? '',
  } as Record<Id, string> & { createdAt: string; ageHours: number; schedule: string };
}

/** One opted-in instance's recovery points and RPO per schedule; undefined when no schedule of the report concerns it. */
function instanceRecovery(
  instance: InstanceFacts,
  facts: RecoveryFacts,
): InstanceRecovery | undefined {
  const { input, snapshotCreated: created, imageCreated } = facts;
  const { keys } = input;
  const optedIn = (key: string) =>
    parseScheduleList(instance.instanceId, key, instance.tags[key], input.catalog).schedules;
  // Named schedules and the instance's own expressions (`rate(6 hours)`), each with its RPO.
  const own = parseOptInTag(
    instance.instanceId,
    keys.backup,
    instance.tags[keys.backup],
    input.catalog,
  );
  const backup = [...own.schedules, ...own.expressions];
  const ami = optedIn(keys.ami);
  const schedules = [...new Set([...backup, ...ami])].filter(
    (s) => !input.schedule || s === input.schedule,
  );
  if (schedules.length === 0) return undefined;
  const completed = (facts.byInstance.get(instance.instanceId) ?? []).filter(
    (s) => s.state === 'completed',
  );
  const newest = newestOf(completed, created);
  const images = (facts.imagesByInstance.get(instance.instanceId) ?? []).filter(
    (i) => i.state === 'available',
  );
  const newestImage = newestOf(images, imageCreated);
  const rpo = schedules.map((name) =>
    scheduleRpo(
      name,
      [
        ...completed.filter((s) => s.tags[keys.schedule] === name).map((s) => created(s).getTime()),
        ...(ami.includes(name) && !backup.includes(name)
          ? images
              .filter((i) => i.tags[keys.schedule] === name)
              .map((i) => imageCreated(i).getTime())
          : []),
      ],
      input,
    ),
  );
  const runs = new Set(completed.map((s) => s.tags[keys.runId] ?? s.snapshotId));
  const archived = new Set(
    completed
      .filter((s) => s.storageTier === 'archive')
      .map((s) => s.tags[keys.runId] ?? s.snapshotId),
  );
  return {
    instanceId: instance.instanceId,
    name: instance.tags.Name,
    schedules,
    newestSnapshot: newest
      ? pointOf('snapshotId', newest.snapshotId, created(newest), newest.tags, facts)
      : undefined,
    newestImage: newestImage
      ? pointOf('imageId', newestImage.imageId, imageCreated(newestImage), newestImage.tags, facts)
      : undefined,
    rpo,
    ...consistencyOf(instance.tags[keys.consistency], completed, keys, created, input.now),
    recoveryPoints: runs.size,
    ...(archived.size > 0 ? { archivedPoints: archived.size } : {}),
    images: images.length,
    neverBackedUp: completed.length === 0 && images.length === 0,
  };
}

/** One schedule's RPO from the creation times (ms) of the recovery points that count for it. */
function scheduleRpo(
  name: string,
  pointsMs: readonly number[],
  input: RecoveryReportInput,
): ScheduleRpo {
  const schedule = (input.catalog.schedules.get(name) ??
    tagDefinitionOf(name, input.catalog)) as ScheduleDefinition;
  const intervalMs = scheduleIntervalMs(schedule, input.now);
  const newestMs = pointsMs.length > 0 ? Math.max(...pointsMs) : undefined;
  const ageMs = newestMs === undefined ? undefined : input.now.getTime() - newestMs;
  return {
    schedule: name,
    intervalHours: round(intervalMs / HOUR),
    newestAgeHours: ageMs === undefined ? undefined : round(ageMs / HOUR),
    met: ageMs !== undefined && ageMs <= intervalMs + RPO_GRACE_MS,
  };
}

/**
 * The managed snapshots whose instance is gone, by instance: never those of a volume a
 * live instance has now; with a schedule, only histories that hold one of its snapshots.
 */
function orphanedHistories(facts: RecoveryFacts): OrphanedHistory[] {
  const { input } = facts;
  const { keys } = input;
  const live = new Set(input.instances.map((i) => i.instanceId));
  const liveVolumes = new Set([
    ...input.instances.flatMap((i) => i.volumes.map((v) => v.volumeId)),
    ...(input.otherLiveVolumeIds ?? []),
  ]);
  const orphaned: OrphanedHistory[] = [];
  for (const [instanceId, ofInstance] of facts.byInstance) {
    if (live.has(instanceId) || input.otherLiveInstanceIds?.has(instanceId)) continue;
    // A volume now attached to a live instance is that instance's, not an orphan's.
    const snapshots = ofInstance.filter((s) => !liveVolumes.has(s.volumeId));
    if (snapshots.length === 0) continue;
    if (input.schedule && !snapshots.some((s) => s.tags[keys.schedule] === input.schedule))
      continue;
    orphaned.push({
      instanceId,
      name: snapshots[0]?.tags.Name,
      snapshots: snapshots.length,
      sizeGiB: snapshots.reduce((n, s) => n + (s.sizeGiB ?? 0), 0),
      newestCreatedAt: new Date(
        Math.max(...snapshots.map((s) => facts.snapshotCreated(s).getTime())),
      ).toISOString(),
    });
  }
  return orphaned.sort((a, b) => a.instanceId.localeCompare(b.instanceId));
}

/**
 * An age in hours as a report prints it: "none" when there is nothing to be old (no
 * snapshot or AMI yet), never "- h".
 *
 * @example
 * formatAge(12.5); // '12.5 h'
 * formatAge(undefined); // 'none'
 */
export function formatAge(hours: number | undefined): string {
  return hours === undefined || !Number.isFinite(hours) ? 'none' : `${hours} h`;
}

/**
 * One instance of the report as a line of text: its recovery points, the age of its
 * newest snapshot and AMI ("none" when there is none) and each schedule's RPO.
 *
 * @example
 * recoveryLine(instance); // 'web-1  3 recovery points, newest snapshot 2.1 h, newest AMI none; RPO daily met (2.1 h)'
 */
export function recoveryLine(
  instance: Pick<
    InstanceRecovery,
    'instanceId' | 'name' | 'recoveryPoints' | 'newestSnapshot' | 'newestImage' | 'rpo'
  > &
    Partial<Pick<InstanceRecovery, 'newestAppConsistent' | 'archivedPoints'>>,
): string {
  const rpo = instance.rpo
    .map(
      (r) =>
        `${r.schedule} ${r.met ? 'met' : 'MISSED'}${r.newestAgeHours !== undefined ? ` (${formatAge(r.newestAgeHours)})` : ''}`,
    )
    .join(', ');
  const archived = instance.archivedPoints ? ` (${instance.archivedPoints} archived)` : '';
  return `${(instance.name ?? instance.instanceId).padEnd(9)} ${String(instance.recoveryPoints).padStart(2)} recovery points${archived}, newest snapshot ${formatAge(instance.newestSnapshot?.ageHours)}, newest AMI ${formatAge(instance.newestImage?.ageHours)}${instance.newestAppConsistent ? `, newest app-consistent ${formatAge(instance.newestAppConsistent.ageHours)}` : ''}; RPO ${rpo}`;
}
