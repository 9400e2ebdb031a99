import type { ImageFacts } from './imagePlan.ts';
import { imageIdFromSnapshotDescription } from './imagePlan.ts';
import { type Ownership, ownershipOf } from './provenance.ts';
import type { PointState, RecoveryPoint } from './retentionPlan.ts';
import {
  effectiveCreatedAt,
  isManagedBy,
  pointState,
  type SnapshotFacts,
} from './snapshotFacts.ts';
import type { TagKeys } from './tagKeys.ts';

/**
 * Maps an image state to retention's: `available` and `disabled` images are recovery
 * points, `failed`/`error`/`invalid` ones hold nothing, anything else is pending.
 */
export function imagePointState(state: string): PointState {
  if (state === 'available' || state === 'disabled') return 'completed';
  if (state === 'failed' || state === 'error' || state === 'invalid') return 'error';
  return 'pending';
}

/**
 * The image in the retention planner's compact form. What holds it (instances, launch
 * templates, Auto Scaling, deregistration protection, being disabled) makes it
 * `heldBy`, so the shared planner never plans to deregister it.
 *
 * @example
 * toImagePoint(image, keys, 'prod', usage, now).heldBy; // ['instance i-1']
 */
export function toImagePoint(
  image: ImageFacts,
  keys: TagKeys,
  deployment: string,
  usage: ReadonlyMap<string, readonly string[]>,
  now: Date,
): RecoveryPoint {
  const heldBy = [...(usage.get(image.imageId) ?? [])];
  if (image.deregistrationProtected) heldBy.push('deregistration protection');
  if (image.state === 'disabled') heldBy.push('disabled image');
  return {
    id: image.imageId,
    state: imagePointState(image.state),
    createdAt: effectiveCreatedAt(image.tags, image.creationDate ?? new Date(0), keys, now),
    managed: isManagedBy(image.tags, keys, deployment),
    heldBy: heldBy.length > 0 ? heldBy : undefined,
    sizeGiB: image.sizeGiB,
  };
}

/**
 * The AMI retention policy recorded at creation on an instance's AMIs (`ami-retain`,
 * `retain-days`, `retain-tiers`): the tags of the newest AMI that carries any, or
 * undefined when none does (made before policies were recorded). Retention of an orphan
 * (instance terminated, untagged or opted out) applies it, never a smaller default.
 *
 * @example
 * recordedImagePolicy(images, keys)?.['snapkeeper:ami-retain']; // '5'
 */
export function recordedImagePolicy(
  images: readonly ImageFacts[],
  keys: TagKeys,
): Record<string, string> | undefined {
  const policyKeys = [keys.amiRetain, keys.retainDays, keys.retainTiers];
  let best: ImageFacts | undefined;
  for (const image of images) {
    if (!policyKeys.some((key) => Object.hasOwn(image.tags, key))) continue;
    const at = image.creationDate?.getTime() ?? 0;
    const bestAt = best?.creationDate?.getTime() ?? 0;
    // Ties go to the greater id, so that the order the images were listed in never matters.
    if (!best || at > bestAt || (at === bestAt && image.imageId > best.imageId)) best = image;
  }
  if (!best) return undefined;
  const tags: Record<string, string> = {};
  for (const key of policyKeys) {
    const value = best.tags[key];
    if (value !== undefined && Object.hasOwn(best.tags, key)) tags[key] = value;
  }
  return tags;
}

/** One snapshot the orphan sweep looked at. */
export interface SweepItem {
  readonly snapshotId: string;
  readonly imageId?: string | undefined;
  readonly sizeGiB?: number | undefined;
  readonly reason: string;
  readonly heldBy?: readonly string[];
}

/** What the orphan sweep does: delete ours, report the rest, and what blocks what. */
export interface SweepPlan {
  readonly delete: readonly SweepItem[];
  readonly reportOnly: readonly SweepItem[];
  readonly blocked: readonly SweepItem[];
}

/** The facts the orphan sweep decides on. */
export interface SweepInput {
  /** Snapshots made by CreateImage (by description) and our managed AMI snapshots. */
  readonly snapshots: readonly SnapshotFacts[];
  /** Images that exist now (any state). */
  readonly existingImageIds: ReadonlySet<string>;
  /** Images in the Recycle Bin, restorable: their snapshots stay. */
  readonly imagesInRecycleBin: ReadonlySet<string>;
  /** Snapshot → images using it. */
  readonly holders: ReadonlyMap<string, readonly string[]>;
  readonly keys: TagKeys;
  readonly deployment: string;
  /**
   * What the run history recorded as created: a snapshot tagged as ours is deleted only
   * when its AMI was recorded (or predates the records); absent, the tags alone decide.
   */
  readonly ownership?: Ownership | undefined;
}

/**
 * Plans the orphan sweep: snapshots made by `CreateImage` for an AMI that no longer
 * exists. Ours (managed by this deployment) are deleted unless something holds them
 * or they are pending; anyone else's are only reported, with their size. Pure.
 *
 * @example
 * const plan = planOrphanSweep({ snapshots, existingImageIds, imagesInRecycleBin, holders, keys, deployment });
 */
export function planOrphanSweep(input: SweepInput): SweepPlan {
  const remove: SweepItem[] = [];
  const reportOnly: SweepItem[] = [];
  const blocked: SweepItem[] = [];
  for (const snapshot of input.snapshots) {
    const imageId = imageIdFromSnapshotDescription(snapshot.description);
    if (!imageId || input.existingImageIds.has(imageId)) continue;
    const base = { snapshotId: snapshot.snapshotId, imageId, sizeGiB: snapshot.sizeGiB };
    const gone = `made by CreateImage for ${imageId}, which no longer exists`;
    if (!isManagedBy(snapshot.tags, input.keys, input.deployment)) {
      reportOnly.push({
        ...base,
        reason: `${gone}; not created by this deployment, so only reported`,
      });
      continue;
    }
    const verdict = ownershipOf(
      imageId,
      'image',
      snapshot.startTime,
      input.ownership ?? { kind: 'tags' },
    );
    const heldBy = input.holders.get(snapshot.snapshotId) ?? [];
    if (!verdict.owned && input.ownership?.kind === 'unreadable') {
      blocked.push({ ...base, reason: `${gone}; ${verdict.reason}`, heldBy: ['run history'] });
    } else if (!verdict.owned) {
      reportOnly.push({
        ...base,
        reason: `${gone}; tagged as this deployment's but the run history has no record of creating ${imageId}, so only reported`,
      });
    } else if (heldBy.length > 0) {
      blocked.push({ ...base, reason: `${gone}, but used by ${heldBy.join(', ')}`, heldBy });
    } else if (input.imagesInRecycleBin.has(imageId)) {
      blocked.push({
        ...base,
        reason: `${imageId} is in the Recycle Bin and can still be restored`,
        heldBy: [`recycle bin (${imageId})`],
      });
    } else if (pointState(snapshot.state) === 'pending') {
      blocked.push({
        ...base,
        reason: `${gone}, but the snapshot is still pending`,
        heldBy: ['pending'],
      });
    } else {
      remove.push({ ...base, reason: gone });
    }
  }
  return { delete: remove, reportOnly, blocked };
}
