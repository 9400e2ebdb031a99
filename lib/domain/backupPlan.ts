import { type ConsistencyChoice, planConsistency } from './consistency.ts';
import {
  BACKED_UP_INSTANCE_STATES,
  type InstanceDecision,
  type RunFacts,
  skipInstance,
} from './instanceDecision.ts';
import { parseBooleanTag, readInstancePolicy, type TagMap, type TagProblem } from './tagPolicy.ts';

export { BACKED_UP_INSTANCE_STATES } from './instanceDecision.ts';

/** An EBS volume attached to an instance, as its block device mapping shows it. */
export interface VolumeAttachment {
  readonly volumeId: string;
  readonly deviceName: string;
}

/** What snapkeeper needs to know of an instance, in domain terms. */
export interface InstanceFacts {
  readonly instanceId: string;
  readonly state: string;
  readonly rootDeviceName?: string | undefined;
  readonly tags: TagMap;
  readonly volumes: readonly VolumeAttachment[];
}

/** A volume left out of a snapshot set, and why. */
export interface ExcludedVolume {
  readonly volume: VolumeAttachment;
  readonly reason: string;
}

/** A resource tag as EC2 takes it. */
export interface Tag {
  readonly Key: string;
  readonly Value: string;
}

/**
 * One `CreateSnapshots` call: a crash-consistent set of the instance's included
 * volumes, tagged at creation.
 */
export interface SnapshotSetRequest {
  readonly instanceId: string;
  readonly excludeBootVolume: boolean;
  readonly excludeDataVolumeIds: readonly string[];
  readonly included: readonly VolumeAttachment[];
  readonly excluded: readonly ExcludedVolume[];
  readonly description: string;
  readonly tags: readonly Tag[];
  /** How the set is made consistent (issue 21); absent: crash-consistent, nothing asked. */
  readonly consistency?: ConsistencyChoice | undefined;
}

/** What to do with one instance in one backup run: a snapshot set, a skip, or nothing. */
export type InstanceBackupDecision = InstanceDecision<'backup', SnapshotSetRequest>;

/** Everything about the run that a backup decision depends on. */
export interface BackupContext extends RunFacts {
  /** Tags of volumes that carry the skip tag, by volume id. */
  readonly volumeTags: ReadonlyMap<string, TagMap>;
  /** When true, instances are backed up whether or not they list `schedule` (console backup of named instances). */
  readonly ignoreOptIn?: boolean;
}

/** EC2 allows 50 tags per resource. */
export const MAX_TAGS_PER_RESOURCE = 50;

/**
 * Decides what one instance gets in this run: a snapshot set, a skip with its reason,
 * or nothing because it is not due. Pure: every fact comes in as an argument.
 *
 * An instance whose tags have problems is still backed up for the schedules it
 * names correctly, and its problems travel with the decision to be reported.
 *
 * @example
 * const decision = planInstanceBackup(instance, context);
 * if (decision.kind === 'backup') ec2.createSnapshots(decision.request);
 */
export function planInstanceBackup(
  instance: InstanceFacts,
  context: BackupContext,
): InstanceBackupDecision {
  const { keys } = context;
  const name = instance.tags.Name;
  const policy = readInstancePolicy(instance.instanceId, instance.tags, keys, context.catalog);
  const problems: TagProblem[] = [...policy.problems];
  const due =
    context.ignoreOptIn === true ||
    policy.schedules.includes(context.schedule) ||
    policy.expressions?.includes(context.schedule);

  if (!due) {
    // Only an unreadable opt-in tag, or a key that misses it (`Snapkeeper:backup`),
    // concerns every schedule's run; other tag problems are reported in the runs the
    // instance is due in. An instance carrying neither opt-in key of ours was reached
    // only for a key that misses one (a fan-out batch of near misses): a typo of the AMI
    // opt-in key (`Snapkeeper:ami`) is reported too, as a single backup run reports it.
    const reachedByNearMiss =
      instance.tags[keys.backup] === undefined && instance.tags[keys.ami] === undefined;
    const optInProblems = problems.filter(
      (p) =>
        p.key === keys.backup ||
        p.intendedKey === keys.backup ||
        (reachedByNearMiss && p.intendedKey === keys.ami),
    );
    if (optInProblems.length > 0) {
      return skipInstance(
        instance,
        `not backed up for schedule ${context.schedule}: ${optInProblems.map((p) => p.message).join('; ')}`,
        true,
        optInProblems,
      );
    }
    return { kind: 'not-due', instanceId: instance.instanceId };
  }

  if (!BACKED_UP_INSTANCE_STATES.includes(instance.state)) {
    return skipInstance(instance, `instance is ${instance.state}`, false, problems);
  }

  const included: VolumeAttachment[] = [];
  const excluded: ExcludedVolume[] = [];
  const excludeDataVolumeIds: string[] = [];
  let rootSkipped = false;
  for (const volume of instance.volumes) {
    const isRoot = volume.deviceName === instance.rootDeviceName;
    const volumeTags = context.volumeTags.get(volume.volumeId) ?? {};
    const skip = parseBooleanTag(volume.volumeId, keys.skip, volumeTags[keys.skip], false);
    problems.push(...skip.problems);
    if (isRoot && policy.excludeBoot) {
      excluded.push({ volume, reason: `boot volume excluded by ${keys.excludeBoot}=true` });
    } else if (skip.value) {
      excluded.push({ volume, reason: `volume tagged ${keys.skip}=true` });
      if (isRoot) rootSkipped = true;
      else excludeDataVolumeIds.push(volume.volumeId);
    } else {
      included.push(volume);
    }
  }

  if (included.length === 0) {
    const reason =
      instance.volumes.length === 0
        ? 'instance has no EBS volumes attached'
        : 'no volumes left after exclusions';
    return skipInstance(instance, reason, false, problems);
  }

  return {
    kind: 'backup',
    instanceId: instance.instanceId,
    name,
    problems,
    request: {
      instanceId: instance.instanceId,
      excludeBootVolume: policy.excludeBoot || rootSkipped,
      excludeDataVolumeIds,
      included,
      excluded,
      description: snapshotDescription(context, instance.instanceId, name),
      tags: buildResourceTags(instance.instanceId, instance.tags, context),
      ...consistencyOf(instance.tags, context),
    },
  };
}

function consistencyOf(tags: TagMap, context: BackupContext): { consistency?: ConsistencyChoice } {
  const option = context.catalog.schedules.get(context.schedule)?.consistency;
  const consistency = planConsistency(tags, context.keys, option);
  return consistency ? { consistency } : {};
}

/**
 * The tags every resource snapkeeper creates carries, set at creation: ours first
 * (with the instance's retention tags, `retain`, `retain-days`, `retain-tiers` and
 * `ami-retain`, as the policy in force for this set: at most 11 of ours), then the
 * instance's `Name`, then the configured copied tags (never `aws:` keys, never keys
 * under our own prefix), up to EC2's 50 tags.
 *
 * @example
 * buildResourceTags('i-1', { Name: 'web-1', CostCenter: '42' }, context);
 * // [{ Key: 'snapkeeper:managed', Value: 'true' }, ..., { Key: 'CostCenter', Value: '42' }]
 */
export function buildResourceTags(
  instanceId: string,
  instanceTags: TagMap,
  context: Pick<
    BackupContext,
    'keys' | 'schedule' | 'slot' | 'deployment' | 'runId' | 'createdAt' | 'copyTags'
  >,
): Tag[] {
  const { keys } = context;
  const tags: Tag[] = [
    { Key: keys.managed, Value: 'true' },
    { Key: keys.deployment, Value: context.deployment },
    { Key: keys.schedule, Value: context.schedule },
    { Key: keys.slot, Value: context.slot },
    { Key: keys.instanceId, Value: instanceId },
    { Key: keys.runId, Value: context.runId },
    { Key: keys.createdAt, Value: context.createdAt },
  ];
  // The policy in force when the set is made travels with it: retention of an orphan
  // (instance terminated, untagged or opted out) applies it, never a smaller default.
  for (const key of [keys.retain, keys.retainDays, keys.retainTiers, keys.amiRetain]) {
    const value = instanceTags[key];
    if (value !== undefined && Object.hasOwn(instanceTags, key))
      tags.push({ Key: key, Value: value });
  }
  const seen = new Set(tags.map((t) => t.Key));
  const copy = ['Name', ...context.copyTags];
  for (const key of copy) {
    if (!Object.hasOwn(instanceTags, key) || seen.has(key)) continue;
    const value = instanceTags[key];
    if (value === undefined) continue;
    if (key.toLowerCase().startsWith('aws:') || key.startsWith(keys.prefix)) continue;
    if (tags.length >= MAX_TAGS_PER_RESOURCE) break;
    tags.push({ Key: key, Value: value });
    seen.add(key);
  }
  return tags;
}

/**
 * Formats a scheduled time as the slot tag value: ISO 8601 UTC to the second.
 *
 * @example
 * formatSlot(new Date('2026-11-23T03:00:00.000Z')); // '2026-11-23T03:00:00Z'
 */
export function formatSlot(time: Date): string {
  return `${time.toISOString().slice(0, 19)}Z`;
}

function snapshotDescription(
  context: Pick<BackupContext, 'schedule' | 'slot'>,
  instanceId: string,
  name: string | undefined,
): string {
  const who = name ? `${instanceId} (${name})` : instanceId;
  return `snapkeeper ${context.schedule} ${context.slot} ${who}`.slice(0, 255);
}
