import type { InstanceFacts } from './backupPlan.ts';
import type { ImageFacts } from './imagePlan.ts';
import { recordedImagePolicy, toImagePoint } from './imageRetirement.ts';
import { isDisasterRecoveryCopy, type Ownership, ownershipOf } from './provenance.ts';
import { keepAll, planRetention, type RetentionPlan } from './retentionPlan.ts';
import { retentionRuleFor } from './retentionPolicy.ts';
import { type ScheduleCatalog, type ScheduleDefinition, scheduleIntervalMs } from './schedules.ts';
import { isManagedBy } from './snapshotFacts.ts';
import type { TagKeys } from './tagKeys.ts';
import { parseScheduleList } from './tagPolicy.ts';

/** The facts AMI retention of one schedule decides on. */
export interface ImageRetentionInput {
  /** The schedule's AMIs (tagged managed, deployment and schedule), any state. */
  readonly images: readonly ImageFacts[];
  /** The live instances carrying the AMI opt-in tag. */
  readonly instances: readonly InstanceFacts[];
  /** Image → what holds it (instances, launch templates, Auto Scaling). */
  readonly usage: ReadonlyMap<string, readonly string[]>;
  /** What the run history recorded as created; `{ kind: 'tags' }` lets the tags decide. */
  readonly ownership: Ownership;
  readonly schedule: ScheduleDefinition;
  readonly catalog: ScheduleCatalog;
  readonly keys: TagKeys;
  readonly deployment: string;
  readonly now: Date;
}

/** One AMI planned for deregistration, under its instance. */
export interface ImageToRetire {
  readonly instanceId: string;
  readonly imageId: string;
  readonly reason: string;
}

/** One AMI kept, with the reason an operator reads. */
export interface ImageKept {
  readonly imageId: string;
  readonly instanceId?: string | undefined;
  readonly reason: string;
}

/** One AMI retention would deregister but something holds. */
export interface ImageBlocked extends ImageKept {
  readonly heldBy: readonly string[];
  readonly sizeGiB?: number | undefined;
}

/** What AMI retention does with a schedule's AMIs. */
export interface ImageRetentionPlan {
  /** Per instance (the `instance-id` tag; `unknown` without it), its lineage's plan. */
  readonly lineages: readonly { readonly instanceId: string; readonly plan: RetentionPlan }[];
  readonly retire: readonly ImageToRetire[];
  readonly kept: readonly ImageKept[];
  readonly blocked: readonly ImageBlocked[];
  /** Lineages left whole, and why (a tag that cannot be read, failing backups). */
  readonly warnings: readonly string[];
}

/**
 * Plans AMI retention for one schedule, as {@link planRetention} plans snapshots: the
 * AMIs of each instance form a lineage, kept per the instance's `ami-retain` (or the
 * schedule's `amiRetain`, then `retain`), or for an orphan per the policy recorded on
 * its AMIs at creation. Pure and total; its invariants, each property-tested:
 * 1. only AMIs managed by this deployment, recorded as created by it (per `ownership`)
 *    and not disaster-recovery copies are ever retired;
 * 2. at least the retention count of available AMIs stays, the newest always;
 * 3. a pending AMI is never retired and never counted;
 * 4. an AMI something holds (an instance, a launch template, an Auto Scaling group,
 *    deregistration protection, the disabled state) is `blocked`, never retired;
 * 5. the decisions do not depend on the order of the input.
 * A lineage whose opt-in or retention tags cannot be read is kept whole, with a warning.
 *
 * @example
 * const plan = planImageRetention({ images, instances, usage, ownership: { kind: 'tags' },
 *   schedule, catalog, keys, deployment: 'prod', now });
 * plan.retire; // [{ instanceId: 'i-1', imageId: 'ami-old', reason: 'beyond count 7' }]
 */
export function planImageRetention(input: ImageRetentionInput): ImageRetentionPlan {
  const { keys, deployment } = input;
  const notOwned = imagesNotOwned(input);
  const byInstance = new Map<string, ImageFacts[]>();
  for (const image of input.images) {
    if (!isManagedBy(image.tags, keys, deployment)) continue;
    const owner = image.tags[keys.instanceId] ?? 'unknown';
    byInstance.set(owner, [...(byInstance.get(owner) ?? []), image]);
  }
  const live = new Map(input.instances.map((i) => [i.instanceId, i]));
  const warnings: string[] = [];
  const lineages = [...byInstance].map(([instanceId, history]) => {
    const points = history.map((image) => {
      const point = toImagePoint(image, keys, deployment, input.usage, input.now);
      return notOwned.has(image.imageId) ? { ...point, managed: false } : point;
    });
    const lineage = planLineage(instanceId, history, points, live.get(instanceId), input);
    if (lineage.warning) warnings.push(lineage.warning);
    return { instanceId, plan: lineage.plan };
  });
  const sizes = new Map(input.images.map((i) => [i.imageId, i.sizeGiB]));
  const decisions = lineages.flatMap(({ instanceId, plan }) =>
    plan.decisions.map((decision) => ({ instanceId, decision })),
  );
  return {
    lineages,
    retire: decisions.flatMap(({ instanceId, decision: d }) =>
      d.action === 'delete' ? [{ instanceId, imageId: d.id, reason: d.reason }] : [],
    ),
    kept: decisions.flatMap(({ instanceId, decision: d }) =>
      d.action === 'keep'
        ? [{ imageId: d.id, instanceId, reason: notOwned.get(d.id) ?? d.reason }]
        : [],
    ),
    blocked: decisions.flatMap(({ instanceId, decision: d }) =>
      d.action === 'blocked'
        ? [
            {
              imageId: d.id,
              instanceId,
              reason: d.reason,
              heldBy: d.heldBy,
              sizeGiB: sizes.get(d.id),
            },
          ]
        : [],
    ),
    warnings,
  };
}

/** AMIs tagged as ours that this job may not deregister, by id with the reason. */
function imagesNotOwned(input: ImageRetentionInput): Map<string, string> {
  const { keys, deployment, now } = input;
  const notOwned = new Map<string, string>();
  for (const image of input.images) {
    if (!isManagedBy(image.tags, keys, deployment)) continue;
    // A disaster-recovery copy carries its source's managed, stage and schedule tags: it
    // belongs to the copy job's retention only, never to this region's AMI retirement.
    if (isDisasterRecoveryCopy(image.tags, keys)) {
      notOwned.set(
        image.imageId,
        "kept: a disaster-recovery copy (the copy job's retention owns it)",
      );
      continue;
    }
    const verdict = ownershipOf(image.imageId, 'image', image.creationDate ?? now, input.ownership);
    if (!verdict.owned) notOwned.set(image.imageId, verdict.reason);
  }
  return notOwned;
}

/** The plan of one instance's AMIs, or all kept with a warning when its tags cannot be read. */
function planLineage(
  instanceId: string,
  history: readonly ImageFacts[],
  points: Parameters<typeof planRetention>[0],
  instance: InstanceFacts | undefined,
  input: ImageRetentionInput,
): { plan: RetentionPlan; warning?: string } {
  const { keys, catalog, schedule, now } = input;
  const optIn = instance
    ? parseScheduleList(instanceId, keys.ami, instance.tags[keys.ami], catalog)
    : { schedules: [], problems: [] };
  const optedIn = instance !== undefined && optIn.schedules.includes(schedule.name);
  if (optIn.problems.length > 0) {
    // A typo in the opt-in tag must not turn a live instance's AMIs into orphans.
    const messages = optIn.problems.map((p) => p.message).join('; ');
    return {
      plan: keepAll(points, `kept: the instance's opt-in tag cannot be read (${messages})`),
      warning: `${instanceId}: ${messages}; nothing deregistered`,
    };
  }
  // A live opted-in instance's tags are the operator's intent; an orphan keeps the policy
  // recorded on its AMIs at creation (when there is one), never a smaller default.
  const recordedPolicy = optedIn ? undefined : recordedImagePolicy(history, keys);
  const amiSchedule: ScheduleDefinition = {
    ...schedule,
    retain: schedule.amiRetain ?? schedule.retain,
  };
  const rule = retentionRuleFor(
    amiSchedule,
    recordedPolicy ?? instance?.tags,
    instanceId,
    keys,
    catalog,
    keys.amiRetain,
  );
  if (!rule.rule) {
    const messages = rule.problems.map((p) => p.message).join('; ');
    return {
      plan: keepAll(points, `kept: retention tags cannot be read (${messages})`),
      warning: `${instanceId}: AMI retention tags cannot be read (${messages}); nothing deregistered`,
    };
  }
  const plan = planRetention(points, rule.rule, {
    now,
    timezone: schedule.timezone,
    orphan: !optedIn,
    expireOrphansAfterDays: schedule.expireOrphansAfterDays,
    intervalMs: scheduleIntervalMs(schedule, now),
  });
  return plan.failing
    ? { plan, warning: `${instanceId}: AMIs failing (${plan.failing}); nothing deregistered` }
    : { plan };
}
