import { buildResourceTags, type InstanceFacts, type Tag } from './backupPlan.ts';
import {
  BACKED_UP_INSTANCE_STATES,
  type InstanceDecision,
  type RunFacts,
  skipInstance,
} from './instanceDecision.ts';
import { nearMissProblems } from './tagKeyTypos.ts';
import { parseBooleanTag, parseScheduleList, type TagMap } from './tagPolicy.ts';

/** A machine image the account owns, in domain terms. */
export interface ImageFacts {
  readonly imageId: string;
  readonly name?: string | undefined;
  /** pending, available, failed, disabled, ... */
  readonly state: string;
  readonly creationDate?: Date | undefined;
  readonly tags: TagMap;
  readonly snapshotIds: readonly string[];
  /** Sum of the volume sizes behind the image. */
  readonly sizeGiB: number;
  readonly deregistrationProtected: boolean;
  readonly isPublic: boolean;
  readonly ownerId?: string | undefined;
}

/** One `CreateImage` call, tagged at creation (image and snapshots). */
export interface ImageRequest {
  readonly instanceId: string;
  readonly name: string;
  readonly description: string;
  readonly noReboot: boolean;
  readonly tags: readonly Tag[];
}

/** What to do with one instance in one AMI run: create an image, skip, or nothing. */
export type InstanceImageDecision = InstanceDecision<'create', ImageRequest>;

/** The run facts an AMI decision depends on. */
export type ImageContext = RunFacts;

/** Characters an AMI name may hold besides letters and digits. */
const AMI_NAME_DISALLOWED = /[^A-Za-z0-9()[\]. /\-'@_]/g;

/**
 * A readable AMI name: `<instance Name>-<stage>-<schedule>-20261123T0300Z` (the instance
 * id without a Name), reduced to what AMI names allow (3-128 letters, digits and
 * `()[] ./-'@_`). AMI names are unique per account and region, so the name holds the
 * stage (two stages of one account and region never ask for the same name), the
 * schedule and the slot (a retried slot asks for its own name again, and EC2's
 * `InvalidAMIName.Duplicate` then means the image is made); {@link withUniqueNames}
 * keeps instances that share a Name apart. Stage, schedule and slot are never cut.
 *
 * @example
 * amiName('web 1', 'i-0abc', 'prod', 'daily', '2026-11-23T03:00:00Z'); // 'web 1-prod-daily-20261123T0300Z'
 */
export function amiName(
  instanceName: string | undefined,
  instanceId: string,
  deployment: string,
  schedule: string,
  slot: string,
  disambiguate = false,
): string {
  const stamp = `${slot.slice(0, 4)}${slot.slice(5, 7)}${slot.slice(8, 10)}T${slot.slice(11, 13)}${slot.slice(14, 16)}Z`;
  const id = disambiguate ? `-${instanceId}` : '';
  const suffix = `-${deployment}-${schedule}-${stamp}${id}`.replace(AMI_NAME_DISALLOWED, '_');
  const base = (instanceName ?? '').replace(AMI_NAME_DISALLOWED, '_').trim() || instanceId;
  if (!instanceName?.trim() && disambiguate)
    return `${instanceId}-${deployment}-${schedule}-${stamp}`
      .replace(AMI_NAME_DISALLOWED, '_')
      .slice(0, 128);
  const room = 128 - suffix.length;
  return `${base.slice(0, Math.max(3, room))}${suffix}`.slice(0, 128).padEnd(3, '_');
}

/**
 * AMI names must be unique in an account and region: where two due instances share a
 * Name (an Auto Scaling group's, say), each of their names gets the instance id.
 *
 * @example
 * withUniqueNames(decisions, context); // 'web-prod-daily-20261123T0300Z-i-0aaa', 'web-prod-daily-20261123T0300Z-i-0bbb'
 */
export function withUniqueNames<D extends InstanceImageDecision>(
  decisions: readonly D[],
  context: Pick<ImageContext, 'deployment' | 'schedule' | 'slot'>,
): D[] {
  const counts = new Map<string, number>();
  for (const d of decisions) {
    if (d.kind === 'create') counts.set(d.request.name, (counts.get(d.request.name) ?? 0) + 1);
  }
  return decisions.map((d) =>
    d.kind === 'create' && (counts.get(d.request.name) ?? 0) > 1
      ? {
          ...d,
          request: {
            ...d.request,
            name: amiName(
              d.name,
              d.instanceId,
              context.deployment,
              context.schedule,
              context.slot,
              true,
            ),
          },
        }
      : d,
  );
}

/**
 * Decides whether an instance gets an AMI in this run. Pure.
 *
 * @example
 * const decision = planInstanceImage(instance, context);
 */
export function planInstanceImage(
  instance: InstanceFacts,
  context: ImageContext,
): InstanceImageDecision {
  const { keys } = context;
  const name = instance.tags.Name;
  const optIn = parseScheduleList(
    instance.instanceId,
    keys.ami,
    instance.tags[keys.ami],
    context.catalog,
  );
  const reboot = parseBooleanTag(
    instance.instanceId,
    keys.amiReboot,
    instance.tags[keys.amiReboot],
    false,
  );
  // A key that misses an AMI key (`Snapkeeper:ami`, `snapkeeper:ami-reboots`) is not read.
  const misses = nearMissProblems(instance.instanceId, instance.tags, keys, [
    keys.ami,
    keys.amiReboot,
    keys.amiRetain,
  ]);
  const problems = [...optIn.problems, ...reboot.problems, ...misses];
  if (!optIn.schedules.includes(context.schedule)) {
    // Only an unreadable opt-in tag, or a key that misses it, concerns every schedule's run.
    const optInProblems = [...optIn.problems, ...misses.filter((p) => p.intendedKey === keys.ami)];
    if (optInProblems.length === 0) return { kind: 'not-due', instanceId: instance.instanceId };
    return skipInstance(
      instance,
      `no AMI for schedule ${context.schedule}: ${optInProblems.map((p) => p.message).join('; ')}`,
      true,
      optInProblems,
    );
  }
  if (!BACKED_UP_INSTANCE_STATES.includes(instance.state)) {
    return skipInstance(instance, `instance is ${instance.state}`, false, problems);
  }
  return {
    kind: 'create',
    instanceId: instance.instanceId,
    name,
    problems,
    request: {
      instanceId: instance.instanceId,
      name: amiName(name, instance.instanceId, context.deployment, context.schedule, context.slot),
      description:
        `snapkeeper ${context.schedule} AMI of ${instance.instanceId}${name ? ` (${name})` : ''} for ${context.slot}`.slice(
          0,
          255,
        ),
      noReboot: !reboot.value,
      tags: buildResourceTags(instance.instanceId, instance.tags, context),
    },
  };
}

/**
 * The AMI id in the description EC2 gives the snapshots of `CreateImage`:
 * `Created by CreateImage(i-0abc) for ami-0def`.
 *
 * @example
 * imageIdFromSnapshotDescription('Created by CreateImage(i-1) for ami-2 from vol-3'); // 'ami-2'
 */
export function imageIdFromSnapshotDescription(
  description: string | undefined,
): string | undefined {
  const match = /^Created by CreateImage\([^)]*\) for (ami-[0-9a-f]+)/.exec(description ?? '');
  return match?.[1];
}
