/** The default prefix shared by every tag key snapkeeper reads or writes. */
export const DEFAULT_TAG_PREFIX = 'snapkeeper:';

/**
 * Every tag key of the public contract, built from one prefix.
 *
 * Keys read from instances and volumes (the operator's side) and keys written on
 * the snapshots and images snapkeeper creates (our side) share the prefix, so a
 * deployment that changes it changes both.
 *
 * @example
 * const keys = tagKeys('snapkeeper:');
 * keys.backup; // 'snapkeeper:backup'
 */
export interface TagKeys {
  readonly prefix: string;
  /** Instance: opt-in, `true` or a comma list of schedule names. */
  readonly backup: string;
  /** Instance: snapshots to keep per volume, `7` or `daily=7,weekly=4`. */
  readonly retain: string;
  /** Instance: minimum age in days before a snapshot beyond the count may go. */
  readonly retainDays: string;
  /** Instance: grandfather-father-son tiers, `daily=7,weekly=4,monthly=12,yearly=3`. */
  readonly retainTiers: string;
  /** Instance: `true` leaves the root volume out. */
  readonly excludeBoot: string;
  /** Volume: `true` leaves this volume out. */
  readonly skip: string;
  /** Instance: AMI opt-in, `true` or a comma list of schedule names. */
  readonly ami: string;
  /** Instance: `true` lets CreateImage reboot the instance for filesystem consistency. */
  readonly amiReboot: string;
  /** Instance: AMIs to keep per schedule, `4` or `daily=7,weekly=4`. */
  readonly amiRetain: string;
  /** Instance: up to 3 regions to copy backups to, `eu-west-1,us-west-2`. */
  readonly copyTo: string;
  /** Instance: copies kept per source volume (or instance, for AMIs) in each destination. */
  readonly copyRetain: string;
  /** Instance: KMS key for copies, one for all or `eu-west-1=alias/x,us-west-2=arn:...`. */
  readonly copyKmsKey: string;
  /** Instance: accounts its snapshots and AMIs are shared with, `111122223333,444455556666`. */
  readonly shareWith: string;
  /** Instance: `crash` (default), `fsfreeze`, `vss` or `ssm:<document>[:<version>]`, `!` for no fallback. Written on snapshots: `app`, `crash` or `crash-fallback`. */
  readonly consistency: string;
  /** Written on snapshots: the consistency mode asked for, and why a set fell back. */
  readonly consistencyReason: string;
  /** Instance: snapshot locks per schedule, `monthly=365d,yearly=7y` (see snapshotLock.ts). */
  readonly lock: string;
  /** Written on copies: the volume the source snapshot was taken of. */
  readonly sourceVolumeId: string;
  /** Written on copies: the source snapshot. */
  readonly sourceSnapshotId: string;
  /** Written on copies: the source AMI. */
  readonly sourceImageId: string;
  /** Written on copies: the source region. */
  readonly sourceRegion: string;
  /** Written: `true` on everything snapkeeper created. */
  readonly managed: string;
  /** Written: the deployment (stage) that created the resource. */
  readonly deployment: string;
  /** Written: the schedule the resource was made for. */
  readonly schedule: string;
  /** Written: the scheduled time (slot) the resource serves, ISO 8601 UTC. */
  readonly slot: string;
  /** Written: the source instance id. */
  readonly instanceId: string;
  /** Written: the run that created the resource. */
  readonly runId: string;
  /** Written: actual creation time, ISO 8601 UTC. */
  readonly createdAt: string;
}

/**
 * Builds the tag keys for a prefix.
 *
 * @example
 * tagKeys('acme-backup:').managed; // 'acme-backup:managed'
 */
export function tagKeys(prefix: string = DEFAULT_TAG_PREFIX): TagKeys {
  return {
    prefix,
    backup: `${prefix}backup`,
    retain: `${prefix}retain`,
    retainDays: `${prefix}retain-days`,
    retainTiers: `${prefix}retain-tiers`,
    excludeBoot: `${prefix}exclude-boot`,
    skip: `${prefix}skip`,
    ami: `${prefix}ami`,
    amiReboot: `${prefix}ami-reboot`,
    amiRetain: `${prefix}ami-retain`,
    copyTo: `${prefix}copy-to`,
    copyRetain: `${prefix}copy-retain`,
    copyKmsKey: `${prefix}copy-kms-key`,
    shareWith: `${prefix}share-with`,
    consistency: `${prefix}consistency`,
    consistencyReason: `${prefix}consistency-reason`,
    lock: `${prefix}lock`,
    sourceVolumeId: `${prefix}source-volume-id`,
    sourceSnapshotId: `${prefix}source-snapshot-id`,
    sourceImageId: `${prefix}source-image-id`,
    sourceRegion: `${prefix}source-region`,
    managed: `${prefix}managed`,
    deployment: `${prefix}deployment`,
    schedule: `${prefix}schedule`,
    slot: `${prefix}slot`,
    instanceId: `${prefix}instance-id`,
    runId: `${prefix}run-id`,
    createdAt: `${prefix}created-at`,
  };
}

/** The keys the console writes on what it restores or duplicates (never read back). */
export interface RestoreTagKeys {
  /** Volume: the snapshot it was restored from. */
  readonly restoredFromSnapshot: string;
  /** Volume: the volume that snapshot was taken of. */
  readonly restoredFromVolume: string;
  /** Volume: the console run that restored it. */
  readonly restoredByRun: string;
  /** Volume: `true` on a restore drill's volume (deleted by the drill). */
  readonly restoreDrill: string;
  /** Volume: `true` on a restore test's volume (deleted by the test, or by the next one). */
  readonly restoreTest: string;
  /** Instance: the instance (or AMI) `restore-instance` restored it from. */
  readonly restoredFrom: string;
  /** Instance: the instance (or AMI) `duplicate-instance` duplicated. */
  readonly duplicatedFrom: string;
  /** Instance: the AMI it was launched from. */
  readonly sourceImage: string;
}

/**
 * The keys the console writes on restored volumes and on restored or duplicated
 * instances. They carry the prefix but are no typo of a key snapkeeper reads: an
 * instance the console restored, then opted in, must not be reported for them.
 *
 * @example
 * restoreTagKeys(tagKeys()).restoredFrom; // 'snapkeeper:restored-from'
 */
export function restoreTagKeys(keys: Pick<TagKeys, 'prefix'>): RestoreTagKeys {
  const { prefix } = keys;
  return {
    restoredFromSnapshot: `${prefix}restored-from-snapshot`,
    restoredFromVolume: `${prefix}restored-from-volume`,
    restoredByRun: `${prefix}restored-by-run`,
    restoreDrill: `${prefix}restore-drill`,
    restoreTest: `${prefix}restore-test`,
    restoredFrom: `${prefix}restored-from`,
    duplicatedFrom: `${prefix}duplicated-from`,
    sourceImage: `${prefix}source-image`,
  };
}
