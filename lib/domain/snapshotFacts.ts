import type { PointState, RecoveryPoint } from './retentionPlan.ts';
import type { TagKeys } from './tagKeys.ts';
import type { TagMap } from './tagPolicy.ts';

/** What snapkeeper needs to know of an EBS snapshot, in domain terms. */
export interface SnapshotFacts {
  readonly snapshotId: string;
  readonly volumeId: string;
  /** EC2's state: pending, completed, error, recoverable, recovering. */
  readonly state: string;
  readonly startTime: Date;
  readonly tags: TagMap;
  readonly sizeGiB?: number | undefined;
  readonly description?: string | undefined;
  readonly ownerId?: string | undefined;
  readonly encrypted?: boolean | undefined;
  readonly kmsKeyId?: string | undefined;
  /** EC2's `FullSnapshotSizeInBytes` (all the data it holds), when DescribeSnapshots gives it. */
  readonly fullSizeBytes?: number | undefined;
  /** EC2's `StorageTier`: `standard` or `archive` (billed for the full size). */
  readonly storageTier?: string | undefined;
}

/**
 * True only for resources tagged `managed=true` by this very deployment. Everything
 * else (made by hand, by AWS Backup or DLM, by another stage) is never touched.
 *
 * @example
 * isManagedBy({ 'snapkeeper:managed': 'true', 'snapkeeper:deployment': 'prod' }, keys, 'prod'); // true
 */
export function isManagedBy(tags: TagMap, keys: TagKeys, deployment: string): boolean {
  return tags[keys.managed] === 'true' && tags[keys.deployment] === deployment;
}

/**
 * When a resource was taken: its `created-at` tag when present and valid (an ISO 8601
 * UTC time not in the future), else EC2's own start time.
 *
 * @example
 * effectiveCreatedAt({ 'snapkeeper:created-at': '2026-11-01T03:00:00Z' }, start, keys, now);
 */
export function effectiveCreatedAt(tags: TagMap, startTime: Date, keys: TagKeys, now: Date): Date {
  const tagged = tags[keys.createdAt];
  if (tagged && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?Z$/.test(tagged)) {
    const parsed = Date.parse(tagged);
    if (!Number.isNaN(parsed) && parsed <= now.getTime() + 5 * 60_000) return new Date(parsed);
  }
  return startTime;
}

/**
 * Maps EC2's snapshot state to retention's: anything but `completed` and `error` is
 * treated as pending (never deleted, never counted).
 */
export function pointState(state: string): PointState {
  if (state === 'completed') return 'completed';
  if (state === 'error') return 'error';
  return 'pending';
}

/**
 * The snapshot in the retention planner's compact form.
 *
 * @example
 * toRecoveryPoint(snapshot, keys, 'prod', holders, now);
 */
export function toRecoveryPoint(
  snapshot: SnapshotFacts,
  keys: TagKeys,
  deployment: string,
  holders: ReadonlyMap<string, readonly string[]>,
  now: Date,
): RecoveryPoint {
  return {
    id: snapshot.snapshotId,
    state: pointState(snapshot.state),
    createdAt: effectiveCreatedAt(snapshot.tags, snapshot.startTime, keys, now),
    managed: isManagedBy(snapshot.tags, keys, deployment),
    heldBy: holders.get(snapshot.snapshotId),
    sizeGiB: snapshot.sizeGiB,
  };
}
