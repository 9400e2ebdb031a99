import { toAwsCallError } from '../aws/errors.ts';
import type { InstanceFacts } from '../domain/backupPlan.ts';
import { type CopyPolicy, readCopyPolicy } from '../domain/copyPolicy.ts';
import type { ImageFacts } from '../domain/imagePlan.ts';
import { retentionRuleFor } from '../domain/retentionPolicy.ts';
import { resolveJobSchedule } from '../domain/schedules.ts';
import { isManagedBy, type SnapshotFacts } from '../domain/snapshotFacts.ts';
import { parseScheduleList, type TagMap } from '../domain/tagPolicy.ts';
import type { CopyJobDependencies, CopyJobInput } from './copyContract.ts';

/** What a copy run copies and shares, and the fleet's policies, read once. */
export interface CopySources {
  /** The opted-in fleet (backup or AMI tag), by instance id. */
  readonly instances: ReadonlyMap<string, InstanceFacts>;
  /** Each instance's copy policy (regions, keys, shares, count). */
  readonly policies: ReadonlyMap<string, CopyPolicy>;
  /** Completed or pending managed snapshots that are neither copies nor behind an AMI. */
  readonly snapshots: readonly SnapshotFacts[];
  /** This deployment's own AMIs (none on an EBS event's run). */
  readonly images: readonly ImageFacts[];
  /** The destination regions any policy names. */
  readonly regions: ReadonlySet<string>;
  /** Unreadable policies and listings, one message each. */
  readonly problems: readonly string[];
}

/**
 * The tags every resource of this deployment carries: what the copy job lists by.
 *
 * @example
 * ownTags(config); // { 'snapkeeper:managed': 'true', 'snapkeeper:deployment': 'prod' }
 */
export function ownTags(config: CopyJobDependencies['config']): Record<string, string> {
  return { [config.keys.managed]: 'true', [config.keys.deployment]: config.deployment };
}

/**
 * Reads what a copy run works from: the fleet's copy policies, the managed snapshots to
 * copy (the EBS event's, or all of them), and this deployment's own AMIs. A snapshot
 * behind one of our AMIs (or made by CreateImage) is copied with its AMI by CopyImage,
 * never a second time on its own; a copy is never a source.
 *
 * @example
 * const sources = await readCopySources({ trigger: 'schedule', dryRun: false }, deps);
 */
export async function readCopySources(
  input: CopyJobInput,
  deps: CopyJobDependencies,
): Promise<CopySources> {
  const { config } = deps;
  const { keys } = config;
  const problems: string[] = [];
  const instances = new Map<string, InstanceFacts>();
  for (const tagKey of [keys.backup, keys.ami]) {
    for await (const instance of deps.ec2.listInstancesWithTagKey(tagKey))
      instances.set(instance.instanceId, instance);
  }
  const policies = new Map<string, CopyPolicy>();
  for (const [id, instance] of instances) {
    const policy = copyPolicyOf(instance, config);
    policies.set(id, policy);
    problems.push(...policy.problems.map((p) => p.message));
  }
  const snapshots: SnapshotFacts[] = [];
  if (input.snapshotIds) {
    snapshots.push(...(await deps.ec2.describeSnapshotsByIds(input.snapshotIds)));
  } else {
    for await (const s of deps.ec2.listSnapshotsTagged(ownTags(config))) snapshots.push(s);
  }
  let ownImages: ImageFacts[] = [];
  try {
    ownImages = (await deps.images.listImagesTagged(ownTags(config))).filter(
      (i) => !isCopy(i.tags, keys),
    );
  } catch (error) {
    // The scheduled run cannot go on without its AMIs; an EBS event copies its snapshots,
    // leaving those EC2 describes as made by CreateImage to their AMI, and says so.
    if (!input.snapshotIds) throw error;
    problems.push(
      `AMIs could not be listed (${toAwsCallError('DescribeImages', error).message}); snapshots are told from AMI snapshots by their description only`,
    );
  }
  const behindImages = new Set(ownImages.flatMap((i) => i.snapshotIds));
  return {
    instances,
    policies,
    snapshots: snapshots.filter(
      (s) =>
        isManagedBy(s.tags, keys, config.deployment) &&
        !isCopy(s.tags, keys) &&
        !behindImages.has(s.snapshotId) &&
        !(s.description ?? '').startsWith('Created by CreateImage('),
    ),
    images: input.snapshotIds ? [] : ownImages,
    regions: new Set([...policies.values()].flatMap((p) => p.regions)),
    problems,
  };
}

/** The copy policy of one instance: its own tags, and the regions its schedules copy to. */
function copyPolicyOf(instance: InstanceFacts, config: CopyJobDependencies['config']): CopyPolicy {
  const { keys, catalog } = config;
  const id = instance.instanceId;
  const listed = [
    ...parseScheduleList(id, keys.backup, instance.tags[keys.backup], catalog).schedules,
    ...parseScheduleList(id, keys.ami, instance.tags[keys.ami], catalog).schedules,
  ];
  const scheduleRegions = [
    ...new Set(listed.flatMap((name) => catalog.schedules.get(name)?.copyTo ?? [])),
  ];
  return readCopyPolicy(
    id,
    instance.tags,
    keys,
    config.region,
    config.copyKmsKeys,
    scheduleRegions,
  );
}

function isCopy(tags: TagMap, keys: CopyJobDependencies['config']['keys']): boolean {
  return tags[keys.sourceRegion] !== undefined;
}

/** The count a copy carries, read from its source's tags; undefined when none can be read. */
export type CarriedCount = (
  tags: TagMap,
  policy: CopyPolicy | undefined,
  image: boolean,
) => number | undefined;

/**
 * The count a copy carries: `copy-retain`, else the source's own retention rule (the
 * schedule's, with the instance's retention tags). When that rule cannot be read the copy
 * carries none and its lineage is kept whole, never trimmed to a guessed count; the
 * problem is reported once per message into `problems`.
 *
 * @example
 * const countFor = carriedCount(sources, deps.config, problems);
 * countFor(snapshot.tags, policy, false); // 7
 */
export function carriedCount(
  sources: Pick<CopySources, 'instances'>,
  config: CopyJobDependencies['config'],
  problems: string[],
): CarriedCount {
  const { keys } = config;
  const reported = new Set<string>();
  const unreadable = (instanceId: string, why: string): undefined => {
    const message = `${instanceId}: the retention rule cannot be read (${why}); its copies carry no ${keys.copyRetain} and are all kept (set ${keys.copyRetain} or fix the tag)`;
    if (!reported.has(message)) {
      reported.add(message);
      problems.push(message);
    }
    return undefined;
  };
  return (tags, policy, image) => {
    if (policy?.retain) return policy.retain;
    const instanceId = tags[keys.instanceId] ?? '';
    let schedule: ReturnType<typeof resolveJobSchedule>;
    try {
      schedule = resolveJobSchedule(
        config.catalog,
        tags[keys.schedule] ?? 'manual',
        config.manualRetainDays,
      );
    } catch (error) {
      return unreadable(instanceId, error instanceof Error ? error.message : String(error));
    }
    const instance = sources.instances.get(instanceId);
    const rule = retentionRuleFor(
      image ? { ...schedule, retain: schedule.amiRetain ?? schedule.retain } : schedule,
      instance?.tags,
      instance?.instanceId ?? '',
      keys,
      config.catalog,
      image ? keys.amiRetain : keys.retain,
    );
    if (!rule.rule) return unreadable(instanceId, rule.problems.map((p) => p.message).join('; '));
    return rule.rule.count;
  };
}
