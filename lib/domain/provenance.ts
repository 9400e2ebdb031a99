import { imageIdFromSnapshotDescription } from './imagePlan.ts';
import type { TagKeys } from './tagKeys.ts';
import type { TagMap } from './tagPolicy.ts';

/**
 * The volume id EC2 reports for a snapshot whose source volume it does not know: every
 * cross-region copy, and snapshots of deleted or unknown volumes. Never a lineage key.
 */
export const UNKNOWN_VOLUME_ID = 'vol-ffffffff';

/** What the run history says was made: a snapshot, an AMI, or a disaster-recovery copy. */
export type CreationKind = 'snapshot' | 'image' | 'copy';

/** The history's actions that create a resource, and what each creates. */
export const CREATION_ACTIONS: Readonly<Record<string, CreationKind>> = {
  'create-snapshot': 'snapshot',
  'create-image': 'image',
  'copy-snapshot': 'copy',
  'copy-image': 'copy',
};

/** The run history's record that this deployment created a resource. */
export interface CreationRecord {
  readonly resourceId: string;
  readonly kind: CreationKind;
  /** The recording run and job. */
  readonly runId: string;
  readonly job: string;
  /** When it was recorded, ISO 8601. */
  readonly at: string;
  readonly instanceId?: string | undefined;
  /** The source volume as the creating run knew it (never `vol-ffffffff`). */
  readonly volumeId?: string | undefined;
}

/**
 * Who owns what, as a deleting run sees it:
 * - `history`: the run history's creation records, and the ledger's start (resources
 *   EC2 says were made before it predate the records and are owned by their tags);
 * - `unreadable`: the history could not be read; nothing is deleted;
 * - `tags`: the tags alone (no history wired; the behaviour before creation records).
 */
export type Ownership =
  | {
      readonly kind: 'history';
      readonly recorded: ReadonlyMap<string, CreationRecord>;
      readonly ledgerStart: Date;
    }
  | { readonly kind: 'unreadable'; readonly reason: string }
  | { readonly kind: 'tags' };

/** Whether a deleting run may treat a resource tagged as ours as its own, and why not. */
export type OwnershipVerdict =
  | { readonly owned: true; readonly basis: 'recorded' | 'legacy' | 'tags' }
  | { readonly owned: false; readonly reason: string };

/**
 * Decides whether a resource already tagged managed by this deployment is this
 * deployment's to delete: it must be recorded in the run history as created (of the
 * `kind` expected), or predate the history's creation records (EC2's own creation
 * time, which no tag can change, before the ledger's start). Anything else is only
 * reported. Pure.
 *
 * @example
 * ownershipOf('snap-1', 'snapshot', startTime, ownership).owned; // true when recorded
 */
export function ownershipOf(
  resourceId: string,
  kind: CreationKind,
  createdByEc2At: Date,
  ownership: Ownership,
): OwnershipVerdict {
  if (ownership.kind === 'tags') return { owned: true, basis: 'tags' };
  if (ownership.kind === 'unreadable') {
    return {
      owned: false,
      reason: `kept: the run history cannot be read (${ownership.reason}), so ownership is unknown`,
    };
  }
  const record = ownership.recorded.get(resourceId);
  if (record && record.kind === kind) return { owned: true, basis: 'recorded' };
  if (record) {
    return {
      owned: false,
      reason: `kept: the run history records it as a ${record.kind} (run ${record.runId}), not a ${kind} this job owns`,
    };
  }
  if (createdByEc2At.getTime() < ownership.ledgerStart.getTime()) {
    return { owned: true, basis: 'legacy' };
  }
  return {
    owned: false,
    reason: `kept: tagged as this deployment's, but the run history has no record of creating it (made by hand, copied with its tags, or by another tool); never deleted`,
  };
}

/**
 * True for a disaster-recovery copy (it carries a source marker written by the copy
 * job: source region, snapshot or image). Copies are owned by the copy job's retention
 * only, whatever their managed, deployment and schedule tags say.
 *
 * @example
 * isDisasterRecoveryCopy({ 'snapkeeper:source-region': 'us-east-1' }, keys); // true
 */
export function isDisasterRecoveryCopy(tags: TagMap, keys: TagKeys): boolean {
  return [keys.sourceRegion, keys.sourceSnapshotId, keys.sourceImageId].some(
    (key) => Object.hasOwn(tags, key) && tags[key] !== undefined,
  );
}

/**
 * The AMI a snapshot was made for by `CreateImage` (EC2's description says so), if
 * any: such a snapshot belongs to AMI retention, never to a volume's snapshot retention.
 *
 * @example
 * imageOfSnapshot('Created by CreateImage(i-1) for ami-0abc'); // 'ami-0abc'
 */
export function imageOfSnapshot(description: string | undefined): string | undefined {
  return imageIdFromSnapshotDescription(description);
}

/**
 * The volume whose lineage a snapshot belongs to: the one the history recorded at
 * creation when there is one, else EC2's volume id, and none for `vol-ffffffff` (EC2
 * reports it for copies and unknown volumes; pooling those would mix lineages).
 *
 * @example
 * lineageVolumeId('vol-ffffffff', { volumeId: 'vol-1', ... }); // 'vol-1'
 * lineageVolumeId('vol-ffffffff', undefined); // undefined
 */
export function lineageVolumeId(
  reportedVolumeId: string,
  record: CreationRecord | undefined,
): string | undefined {
  const recorded = record?.volumeId;
  if (recorded && recorded !== UNKNOWN_VOLUME_ID) return recorded;
  if (!reportedVolumeId || reportedVolumeId === UNKNOWN_VOLUME_ID) return undefined;
  return reportedVolumeId;
}
