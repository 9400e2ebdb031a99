import type { InstanceDetails } from '../aws/Ec2RestoreGateway.ts';
import { toAwsCallError } from '../aws/errors.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import { readTierRestore } from '../domain/archiveTier.ts';
import { buildResourceTags, type Tag } from '../domain/backupPlan.ts';
import { InvalidEventError } from '../domain/errors.ts';
import { type ImagePlatform, platformFrom } from '../domain/imagePlatform.ts';
import { effectiveCreatedAt, type SnapshotFacts } from '../domain/snapshotFacts.ts';
import { restoreTagKeys } from '../domain/tagKeys.ts';
import {
  type ArchiveRestoreAnswer,
  type ArchiveRestoreDependencies,
  backFromArchive,
} from './archiveRestore.ts';
import { checkIops, IOPS_RANGES } from './opsPayload.ts';
import type {
  ActionJournal,
  ActionRecord,
  HistoryQueriesPort,
  ImagesPort,
  LoggerPort,
  RestorePort,
  SnapshotsPort,
} from './ports.ts';
import { recordAfter } from './runReport.ts';

/** What the restore actions read and act through. */
export interface RestoreDependencies {
  readonly ec2: Pick<SnapshotsPort, 'listSnapshotsTagged' | 'describeSnapshotsByIds'>;
  readonly images: Pick<ImagesPort, 'listImagesTagged' | 'listOwnImages'>;
  readonly restore: RestorePort;
  readonly history: Pick<HistoryQueriesPort, 'runActions'>;
  readonly config: Pick<
    SnapkeeperConfig,
    'deployment' | 'keys' | 'copyTags' | 'restoreWaitMs' | 'localTagAfterCreate'
  >;
  readonly clock: () => Date;
  readonly runId: string;
  readonly logger: LoggerPort;
  readonly journal: ActionJournal;
  /** Restores from the archive tier; absent, an archived snapshot is restored as any other. */
  readonly tiers?: ArchiveRestoreDependencies['tiers'] | undefined;
}

/** The source a restore starts from, resolved to one completed snapshot. */
export interface ResolvedSnapshot {
  readonly snapshot: SnapshotFacts;
  readonly sourceVolumeId: string;
  readonly availabilityZone?: string | undefined;
  readonly how: string;
}

/**
 * The snapshot a restore uses: the given one, or the newest completed snapshot of a
 * volume (or of an instance's device), this deployment's managed ones first.
 *
 * @throws {InvalidEventError} naming the field when there is nothing to restore from.
 */
export async function resolveSnapshot(
  source: {
    snapshotId?: string | undefined;
    volumeId?: string | undefined;
    instanceId?: string | undefined;
    device?: string | undefined;
  },
  deps: RestoreDependencies,
): Promise<ResolvedSnapshot> {
  const { keys } = deps.config;
  if (source.snapshotId) {
    const [snapshot] = await deps.ec2.describeSnapshotsByIds([source.snapshotId]);
    if (!snapshot)
      throw new InvalidEventError(
        `field "snapshotId": ${source.snapshotId} does not exist in this account and region`,
      );
    if (snapshot.state !== 'completed') {
      throw new InvalidEventError(
        `field "snapshotId": ${source.snapshotId} is ${snapshot.state}, not completed`,
      );
    }
    const volume = await deps.restore.describeVolume(snapshot.volumeId);
    return {
      snapshot,
      sourceVolumeId: snapshot.volumeId,
      availabilityZone: volume?.availabilityZone,
      how: `snapshot ${snapshot.snapshotId}`,
    };
  }
  let volumeId = source.volumeId;
  let availabilityZone: string | undefined;
  let how = `newest completed snapshot of ${volumeId}`;
  if (source.instanceId) {
    const instance = await describeOrReject(deps, source.instanceId, 'instanceId');
    const device = normaliseDevice(source.device ?? '');
    const mapping = instance.volumes.find((v) => normaliseDevice(v.deviceName) === device);
    if (!mapping) {
      throw new InvalidEventError(
        `field "device": ${source.instanceId} has no volume at ${source.device}; its devices: ${instance.volumes.map((v) => v.deviceName).join(', ')}`,
      );
    }
    volumeId = mapping.volumeId;
    availabilityZone = instance.availabilityZone;
    how = `newest completed snapshot of ${source.instanceId} ${mapping.deviceName} (${volumeId})`;
  }
  if (!volumeId)
    throw new InvalidEventError(
      'a source is required: "snapshotId", "volumeId", or "instanceId" with "device"',
    );
  const candidates: SnapshotFacts[] = [];
  for await (const snapshot of deps.ec2.listSnapshotsTagged({
    [keys.managed]: 'true',
    [keys.deployment]: deps.config.deployment,
  })) {
    if (snapshot.volumeId === volumeId && snapshot.state === 'completed') candidates.push(snapshot);
  }
  const newest = newestFirst(candidates, (s) => s.startTime, deps)[0];
  if (!newest) {
    throw new InvalidEventError(
      `field "${source.instanceId ? 'device' : 'volumeId'}": no completed snapshot of ${volumeId} made by this deployment`,
    );
  }
  const volume = await deps.restore.describeVolume(volumeId);
  return {
    snapshot: newest,
    sourceVolumeId: volumeId,
    availabilityZone: availabilityZone ?? volume?.availabilityZone,
    how,
  };
}

/** The outcome of `restore-volume` and `restore-drill`. */
export interface RestoreVolumeResult {
  /** waiting-for-archive: the snapshot is being restored from archive (`archive` says when). */
  readonly status: 'succeeded' | 'planned' | 'failed' | 'waiting-for-archive';
  readonly archive?: ArchiveRestoreAnswer | undefined;
  readonly source: {
    snapshotId: string;
    volumeId: string;
    how: string;
    createdAt: string;
    sizeGiB?: number | undefined;
  };
  readonly volumeId?: string | undefined;
  readonly availabilityZone: string;
  readonly volumeType: string;
  readonly sizeGiB: number;
  readonly attachedTo?: { instanceId: string; device: string } | undefined;
  readonly waitedMs?: number | undefined;
  readonly drill?: { deleted: boolean; secondsToAvailable?: number | undefined } | undefined;
  readonly error?: { code: string; message: string } | undefined;
}

/**
 * `restore-volume`: a new volume from a snapshot, in the source's zone unless told,
 * never smaller than the snapshot, tagged with where it came from; optionally attached
 * to an instance in the same zone at a free device.
 *
 * @example
 * await restoreVolume({ action: 'restore-volume', snapshotId: 'snap-1' }, deps);
 */
export async function restoreVolume(
  request: RestoreVolumeRequest,
  deps: RestoreDependencies,
  drill = false,
): Promise<RestoreVolumeResult> {
  const resolved = await resolveSnapshot(request, deps);
  const base = await planRestoredVolume(request, resolved, deps);
  // An archived snapshot is first brought back to the standard tier (up to 72 hours).
  const archive = await archivedSource(request, resolved, deps);
  if (archive)
    return {
      status: archive.status === 'failed' ? 'failed' : 'waiting-for-archive',
      ...base,
      archive,
      ...(archive.error ? { error: archive.error } : {}),
    };
  if (request.dryRun) return { status: 'planned', ...base, attachedTo: request.attachTo };

  const started = deps.clock().getTime();
  const volumeId = await createRestoredVolume(request, resolved, base, deps, drill);
  // A failed step answers what was made so far, and EC2's error.
  const failed = (
    action: string,
    error: unknown,
    made: { volumeId: string; waitedMs?: number },
  ) => {
    const failure = toAwsCallError(action, error);
    const answer: RestoreVolumeResult = {
      status: 'failed',
      ...base,
      ...made,
      error: { code: failure.code, message: failure.message },
    };
    return answer;
  };
  let waitedMs: number;
  try {
    await deps.restore.waitForVolume(volumeId, deps.config.restoreWaitMs, () =>
      deps.clock().getTime(),
    );
    waitedMs = deps.clock().getTime() - started;
  } catch (error) {
    return failed('DescribeVolumes', error, { volumeId });
  }
  if (drill) return endDrill(resolved, base, volumeId, waitedMs, deps);
  if (request.attachTo) {
    const { instanceId, device } = request.attachTo;
    try {
      await deps.restore.attachVolume(volumeId, instanceId, device);
    } catch (error) {
      return failed('AttachVolume', error, { volumeId, waitedMs });
    }
  }
  return { status: 'succeeded', ...base, volumeId, waitedMs, attachedTo: request.attachTo };
}

/** What `restore-volume` and `restore-drill` are asked. */
/**
 * The answer while the source is archived and not yet back (undefined when it can be
 * used now). A bad `archiveRestore` is refused whatever the snapshot's tier.
 */
async function archivedSource(
  request: RestoreVolumeRequest,
  resolved: ResolvedSnapshot,
  deps: RestoreDependencies,
): Promise<ArchiveRestoreAnswer | undefined> {
  readTierRestore(request.archiveRestore);
  if (!deps.tiers || resolved.snapshot.storageTier !== 'archive') return undefined;
  const back = await backFromArchive(
    resolved.snapshot.snapshotId,
    request.archiveRestore,
    request.dryRun === true,
    { ...deps, tiers: deps.tiers },
  );
  return back.ready ? undefined : back.answer;
}

export interface RestoreVolumeRequest {
  snapshotId?: string | undefined;
  volumeId?: string | undefined;
  instanceId?: string | undefined;
  device?: string | undefined;
  availabilityZone?: string | undefined;
  volumeType?: string | undefined;
  sizeGiB?: number | undefined;
  /** From the archive tier: `{ days: N }` or `'permanent'` (see archiveRestore.ts). */
  archiveRestore?: unknown;
  iops?: number | undefined;
  throughput?: number | undefined;
  kmsKeyId?: string | undefined;
  attachTo?: { instanceId: string; device: string } | undefined;
  dryRun?: boolean | undefined;
}

/** The volume a restore makes, as planned: its source, zone, type and size. */
type PlannedVolume = Pick<
  RestoreVolumeResult,
  'source' | 'availabilityZone' | 'volumeType' | 'sizeGiB'
> & { readonly attachTo?: { instanceId: string; device: string } };

/**
 * Plans the restored volume and refuses what cannot work, naming the field: a size
 * below the snapshot, a device in use, no zone to take, a zone other than the target
 * instance's, IOPS the type does not allow at that size.
 *
 * @throws {InvalidEventError}
 */
async function planRestoredVolume(
  request: RestoreVolumeRequest,
  resolved: ResolvedSnapshot,
  deps: RestoreDependencies,
): Promise<PlannedVolume> {
  const { snapshot } = resolved;
  const snapshotSize = snapshot.sizeGiB ?? 1;
  if (request.sizeGiB !== undefined && request.sizeGiB < snapshotSize) {
    throw new InvalidEventError(
      `field "sizeGiB": ${request.sizeGiB} is smaller than the snapshot (${snapshotSize} GiB)`,
    );
  }
  const target = await attachTarget(request, deps);
  const availabilityZone =
    request.availabilityZone ?? resolved.availabilityZone ?? target?.availabilityZone;
  if (!availabilityZone) {
    throw new InvalidEventError(
      `field "availabilityZone" is required: the source volume ${resolved.sourceVolumeId} no longer exists to take its zone from`,
    );
  }
  if (target?.availabilityZone && target.availabilityZone !== availabilityZone) {
    throw new InvalidEventError(
      `field "attachTo.instanceId": ${target.instanceId} is in ${target.availabilityZone}, the volume would be in ${availabilityZone}; set "availabilityZone" to ${target.availabilityZone}`,
    );
  }
  const volumeType = request.volumeType ?? 'gp3';
  const sizeGiB = request.sizeGiB ?? snapshotSize;
  checkIopsForSize(volumeType, sizeGiB, request.iops);
  return {
    source: {
      snapshotId: snapshot.snapshotId,
      volumeId: resolved.sourceVolumeId,
      how: resolved.how,
      createdAt: effectiveCreatedAt(
        snapshot.tags,
        snapshot.startTime,
        deps.config.keys,
        deps.clock(),
      ).toISOString(),
      sizeGiB: snapshot.sizeGiB,
    },
    availabilityZone,
    volumeType,
    sizeGiB,
    ...(request.attachTo ? { attachTo: request.attachTo } : {}),
  };
}

/** The instance a restored volume is to be attached to, with the device checked free. */
async function attachTarget(
  request: RestoreVolumeRequest,
  deps: RestoreDependencies,
): Promise<InstanceDetails | undefined> {
  if (!request.attachTo) return undefined;
  const target = await describeOrReject(deps, request.attachTo.instanceId, 'attachTo.instanceId');
  const device = normaliseDevice(request.attachTo.device);
  if (target.volumes.some((v) => normaliseDevice(v.deviceName) === device)) {
    throw new InvalidEventError(
      `field "attachTo.device": ${request.attachTo.device} is already in use on ${target.instanceId}`,
    );
  }
  return target;
}

/** The type's IOPS range, and, above gp3's 3,000 baseline and for io1/io2, IOPS per GiB capped. */
function checkIopsForSize(volumeType: string, sizeGiB: number, iops: number | undefined): void {
  checkIops(volumeType, iops);
  // gp3's 3,000 baseline is allowed at any size; above it, and for io1/io2, IOPS per GiB are capped.
  const iopsRange = IOPS_RANGES[volumeType];
  const iopsCap = iopsRange
    ? Math.max(iopsRange.perGiB * sizeGiB, iopsRange.required ? 0 : iopsRange.min)
    : 0;
  if (iopsRange && iops !== undefined && iops > iopsCap) {
    throw new InvalidEventError(
      `field "iops": ${iops} is more than ${volumeType} allows for ${sizeGiB} GiB (${iopsRange.perGiB} per GiB: at most ${iopsCap}); lower "iops" or raise "sizeGiB"`,
    );
  }
}

/** Creates the volume, tagged with where it came from, and records it (best effort). */
async function createRestoredVolume(
  request: RestoreVolumeRequest,
  resolved: ResolvedSnapshot,
  planned: PlannedVolume,
  deps: RestoreDependencies,
  drill: boolean,
): Promise<string> {
  const { snapshot } = resolved;
  const { keys } = deps.config;
  const written = restoreTagKeys(keys);
  const tags: Tag[] = [
    {
      Key: 'Name',
      Value:
        `${drill ? 'restore drill' : 'restore'} of ${resolved.sourceVolumeId} from ${snapshot.snapshotId}`.slice(
          0,
          255,
        ),
    },
    { Key: written.restoredFromSnapshot, Value: snapshot.snapshotId },
    { Key: written.restoredFromVolume, Value: resolved.sourceVolumeId },
    { Key: written.restoredByRun, Value: deps.runId },
    { Key: keys.deployment, Value: deps.config.deployment },
    ...(drill ? [{ Key: written.restoreDrill, Value: 'true' }] : []),
  ];
  const { availabilityZone, volumeType, sizeGiB } = planned;
  const volumeId = await deps.restore.createVolume({
    snapshotId: snapshot.snapshotId,
    availabilityZone,
    volumeType,
    sizeGiB,
    iops: request.iops,
    throughput: request.throughput,
    kmsKeyId: request.kmsKeyId,
    tags,
  });
  await recordDone(deps, {
    job: drill ? 'restore-drill' : 'restore-volume',
    action: 'create-volume',
    resourceId: volumeId,
    reason: `restored from ${snapshot.snapshotId}`,
    details: {
      snapshotId: snapshot.snapshotId,
      volumeId: resolved.sourceVolumeId,
      availabilityZone,
      sizeGiB,
    },
  });
  return volumeId;
}

/** A drill's end: its volume deleted (or said to be deleted by hand) and the drill recorded. */
async function endDrill(
  resolved: ResolvedSnapshot,
  planned: PlannedVolume,
  volumeId: string,
  waitedMs: number,
  deps: RestoreDependencies,
): Promise<RestoreVolumeResult> {
  let deleted = true;
  try {
    await deps.restore.deleteVolume(volumeId);
  } catch (error) {
    deleted = false;
    deps.logger.error('could not delete the drill volume', {
      volumeId,
      error: toAwsCallError('DeleteVolume', error).message,
    });
  }
  await recordAfter(deps.journal, deps.logger, {
    runId: deps.runId,
    job: 'restore-drill',
    action: 'restore-drill',
    resourceId: resolved.snapshot.snapshotId,
    outcome: deleted ? 'done' : 'failed',
    reason: `restored to ${volumeId} in ${Math.round(waitedMs / 100) / 10} s; drill volume ${deleted ? 'deleted' : 'NOT deleted'}`,
    details: {
      volumeId: resolved.sourceVolumeId,
      drillVolumeId: volumeId,
      secondsToAvailable: waitedMs / 1000,
    },
  });
  return {
    status: deleted ? 'succeeded' : 'failed',
    ...planned,
    volumeId,
    waitedMs,
    drill: { deleted, secondsToAvailable: Math.round(waitedMs / 100) / 10 },
    ...(deleted
      ? {}
      : { error: { code: 'DrillVolumeNotDeleted', message: `delete ${volumeId} by hand` } }),
  };
}

/** The outcome of `duplicate-instance` and `restore-instance`. */
export interface LaunchResult {
  readonly status: 'succeeded' | 'planned' | 'failed';
  readonly imageId: string;
  readonly registeredImage?: boolean;
  readonly sourceInstanceId?: string | undefined;
  readonly instanceId?: string | undefined;
  readonly instanceType: string;
  readonly name: string;
  readonly subnetId?: string | undefined;
  readonly securityGroupIds: readonly string[];
  readonly keyName?: string | undefined;
  readonly mappings?: readonly { deviceName: string; snapshotId: string }[];
  /** `restore-instance`: the platform the AMI was registered for, and where it was read. */
  readonly platform?: ImagePlatform | undefined;
  readonly error?: { code: string; message: string } | undefined;
}

/**
 * `duplicate-instance`: launches a new instance from an AMI, or from the newest managed
 * AMI of an instance, with the source's type (or the given one), subnet, security
 * groups, key pair and tags, under a new Name. snapkeeper's own opt-in tags are not
 * copied, so the duplicate is not backed up until someone tags it.
 */
export async function duplicateInstance(
  request: {
    imageId?: string | undefined;
    instanceId?: string | undefined;
    instanceType?: string | undefined;
    name?: string | undefined;
    dryRun?: boolean | undefined;
  },
  deps: RestoreDependencies,
): Promise<LaunchResult> {
  const { keys } = deps.config;
  let imageId = request.imageId;
  let sourceId = request.instanceId;
  if (!imageId && sourceId) {
    const images = (
      await deps.images.listImagesTagged({
        [keys.managed]: 'true',
        [keys.deployment]: deps.config.deployment,
        [keys.instanceId]: sourceId,
      })
    ).filter((i) => i.state === 'available');
    const newest = newestFirst(images, (i) => i.creationDate ?? new Date(0), deps)[0];
    if (!newest)
      throw new InvalidEventError(
        `field "instanceId": ${sourceId} has no available AMI made by this deployment`,
      );
    imageId = newest.imageId;
  }
  if (!imageId) throw new InvalidEventError('one of "imageId" or "instanceId" is required');
  if (!sourceId) {
    const image = (await deps.images.listOwnImages()).find((i) => i.imageId === imageId);
    if (!image)
      throw new InvalidEventError(
        `field "imageId": ${imageId} is not an AMI this account owns in this region`,
      );
    sourceId = image.tags[keys.instanceId];
  }
  const source = sourceId
    ? await describeOrReject(deps, sourceId, 'instanceId').catch(() => undefined)
    : undefined;
  return launch(imageId, source, sourceId, request, deps, false);
}

/**
 * `restore-instance`: brings a whole instance back from one crash-consistent snapshot
 * set (the snapshots of one run and instance): registers an AMI from the root snapshot
 * with the data snapshots as further mappings (devices as the run history recorded
 * them), tagged managed so retention cleans it up, then launches it like
 * `duplicate-instance`.
 */
export async function restoreInstance(
  request: {
    runId: string;
    instanceId: string;
    instanceType?: string | undefined;
    name?: string | undefined;
    dryRun?: boolean | undefined;
  },
  deps: RestoreDependencies,
): Promise<LaunchResult> {
  const set = await readCompleteSet(request.runId, request.instanceId, deps);
  const recorded = await recordedDevices(request.runId, deps);
  const source = await describeOrReject(deps, request.instanceId, 'instanceId').catch(
    () => undefined,
  );
  const platform = await sourcePlatform(request.instanceId, source, deps);
  const mappings = setMappings(set, recorded, source);
  const recordedRoot = source?.rootDeviceName ?? platform.rootDeviceName;
  const rootDeviceName =
    recordedRoot && mappings.some((m) => m.deviceName === recordedRoot)
      ? recordedRoot
      : mappings.find((m) => ['/dev/sda1', '/dev/xvda'].includes(m.deviceName))?.deviceName;
  if (!rootDeviceName) {
    throw new InvalidEventError(
      `the set of run ${request.runId} has no root volume snapshot (it was made with snapkeeper:exclude-boot?); restore its volumes with "restore-volume" instead`,
    );
  }
  const name = `restore-${request.instanceId}-${request.runId}`
    .replace(/[^A-Za-z0-9()[\]. /\-'@_]/g, '_')
    .slice(0, 128);
  if (request.dryRun) {
    return {
      ...launchPlan('(to be registered)', source, request.instanceId, request),
      status: 'planned',
      registeredImage: true,
      mappings,
      platform,
    };
  }
  const tags = buildResourceTags(request.instanceId, source?.tags ?? {}, {
    keys: deps.config.keys,
    schedule: 'manual',
    slot: `${deps.clock().toISOString().slice(0, 19)}Z`,
    deployment: deps.config.deployment,
    runId: deps.runId,
    createdAt: deps.clock().toISOString(),
    copyTags: deps.config.copyTags,
  });
  const imageId = await deps.restore.registerImage(
    {
      name,
      description: `snapkeeper restore of ${request.instanceId} from run ${request.runId}`,
      rootDeviceName,
      platform,
      mappings,
      tags,
    },
    deps.config.localTagAfterCreate,
  );
  await recordDone(deps, {
    job: 'restore-instance',
    action: 'register-image',
    resourceId: imageId,
    reason: `registered from the set of run ${request.runId}`,
    details: {
      instanceId: request.instanceId,
      snapshotIds: mappings.map((m) => m.snapshotId),
      architecture: platform.architecture,
      bootMode: platform.bootMode ?? 'default',
      platformFrom: platform.from,
    },
  });
  const result = await launch(imageId, source, request.instanceId, request, deps, true);
  return { ...result, registeredImage: true, mappings, platform };
}

/**
 * The snapshots of one run and instance, every one completed.
 *
 * @throws {InvalidEventError} when there is no such set, or part of it is pending.
 */
async function readCompleteSet(
  runId: string,
  instanceId: string,
  deps: RestoreDependencies,
): Promise<SnapshotFacts[]> {
  const { keys } = deps.config;
  const set: SnapshotFacts[] = [];
  for await (const snapshot of deps.ec2.listSnapshotsTagged({
    [keys.managed]: 'true',
    [keys.deployment]: deps.config.deployment,
    [keys.runId]: runId,
    [keys.instanceId]: instanceId,
  })) {
    set.push(snapshot);
  }
  if (set.length === 0) {
    throw new InvalidEventError(
      `fields "runId" and "instanceId": no snapshot set of ${instanceId} from run ${runId}`,
    );
  }
  const pending = set.filter((s) => s.state !== 'completed');
  if (pending.length > 0) {
    throw new InvalidEventError(
      `the set is not complete yet: ${pending.map((s) => `${s.snapshotId} is ${s.state}`).join(', ')}`,
    );
  }
  return set;
}

/** Each snapshot's device as the run's history recorded it (none when the history cannot be read). */
async function recordedDevices(
  runId: string,
  deps: RestoreDependencies,
): Promise<Map<string, string>> {
  const devices = new Map<string, string>();
  try {
    for (const action of await deps.history.runActions(runId)) {
      const device = action.details?.deviceName;
      if (action.action === 'create-snapshot' && typeof device === 'string')
        devices.set(action.resourceId, device);
    }
  } catch (error) {
    deps.logger.warn('run history unavailable: taking devices from the instance', {
      error: toAwsCallError('Query', error).message,
    });
  }
  return devices;
}

/**
 * Each snapshot's device: as the run history recorded it, else as the instance has the
 * volume now.
 *
 * @throws {InvalidEventError} when neither knows a snapshot's device.
 */
function setMappings(
  set: readonly SnapshotFacts[],
  recorded: ReadonlyMap<string, string>,
  source: InstanceDetails | undefined,
): { deviceName: string; snapshotId: string }[] {
  const devices = new Map(recorded);
  for (const snapshot of set) {
    if (devices.has(snapshot.snapshotId)) continue;
    const mapping = source?.volumes.find((v) => v.volumeId === snapshot.volumeId);
    if (mapping) devices.set(snapshot.snapshotId, mapping.deviceName);
  }
  const missing = set.filter((s) => !devices.has(s.snapshotId));
  if (missing.length > 0) {
    throw new InvalidEventError(
      `the devices of ${missing.map((s) => s.snapshotId).join(', ')} are unknown: neither the run history nor the instance records them`,
    );
  }
  return set.map((s) => ({
    deviceName: devices.get(s.snapshotId) ?? '',
    snapshotId: s.snapshotId,
  }));
}

/**
 * The platform a restored AMI is registered for, read (in this order) from the source
 * instance (DescribeInstances keeps a terminated one for a while), the AMI it was
 * launched from, or the newest AMI this deployment made of it. When none says, the
 * restore is refused: an AMI registered as x86_64 would not boot an arm64 source, nor
 * one registered for legacy BIOS a UEFI-only one.
 *
 * @throws {InvalidEventError} when no source tells the architecture.
 */
async function sourcePlatform(
  instanceId: string,
  source: InstanceDetails | undefined,
  deps: RestoreDependencies,
): Promise<ImagePlatform> {
  const fromInstance = source && platformFrom(source.platform, `instance ${instanceId}`);
  if (fromInstance) return fromInstance;
  const tried = [source ? `instance ${instanceId} does not say` : `instance ${instanceId} is gone`];
  const candidates: string[] = source?.imageId ? [source.imageId] : [];
  const { keys } = deps.config;
  try {
    const made = await deps.images.listImagesTagged({
      [keys.managed]: 'true',
      [keys.deployment]: deps.config.deployment,
      [keys.instanceId]: instanceId,
    });
    newestFirst(made, (i) => i.creationDate ?? new Date(0), deps);
    candidates.push(...made.filter((i) => i.state === 'available').map((i) => i.imageId));
  } catch (error) {
    tried.push(`its AMIs cannot be listed (${toAwsCallError('DescribeImages', error).message})`);
  }
  for (const imageId of candidates) {
    const platform = await deps.restore.describeImagePlatform(imageId).catch((error: unknown) => {
      tried.push(`${imageId} cannot be read (${toAwsCallError('DescribeImages', error).message})`);
      return undefined;
    });
    if (platform) return platform;
    tried.push(`${imageId} does not say`);
  }
  if (candidates.length === 0) tried.push('no AMI of it is known');
  throw new InvalidEventError(
    `field "instanceId": the architecture and boot mode of ${instanceId} are unknown (${tried.join('; ')}); an AMI registered for the wrong architecture or boot mode would not boot. Restore its volumes with "restore-volume" instead`,
  );
}

function launchPlan(
  imageId: string,
  source: InstanceDetails | undefined,
  sourceId: string | undefined,
  request: { instanceType?: string | undefined; name?: string | undefined },
): LaunchResult {
  const sourceName = source?.tags.Name ?? sourceId ?? imageId;
  return {
    status: 'planned',
    imageId,
    sourceInstanceId: sourceId,
    instanceType: request.instanceType ?? source?.instanceType ?? 't3.micro',
    name: request.name ?? `${sourceName}-copy`,
    subnetId: source?.subnetId,
    securityGroupIds: source?.securityGroupIds ?? [],
    keyName: source?.keyName,
  };
}

async function launch(
  imageId: string,
  source: InstanceDetails | undefined,
  sourceId: string | undefined,
  request: {
    instanceType?: string | undefined;
    name?: string | undefined;
    dryRun?: boolean | undefined;
  },
  deps: RestoreDependencies,
  restored: boolean,
): Promise<LaunchResult> {
  const plan = launchPlan(imageId, source, sourceId, request);
  if (request.dryRun) return plan;
  const { keys } = deps.config;
  const written = restoreTagKeys(keys);
  const copied = Object.entries(source?.tags ?? {}).filter(
    ([key]) =>
      key !== 'Name' && !key.toLowerCase().startsWith('aws:') && !key.startsWith(keys.prefix),
  );
  const tags: Tag[] = [
    ...copied.map(([Key, Value]) => ({ Key, Value })),
    { Key: 'Name', Value: plan.name },
    {
      Key: restored ? written.restoredFrom : written.duplicatedFrom,
      Value: sourceId ?? imageId,
    },
    { Key: written.sourceImage, Value: imageId },
  ].slice(0, 50);
  try {
    const instanceId = await deps.restore.runInstance({
      imageId,
      instanceType: plan.instanceType,
      subnetId: plan.subnetId,
      securityGroupIds: plan.securityGroupIds,
      keyName: plan.keyName,
      tags,
    });
    await recordDone(deps, {
      job: restored ? 'restore-instance' : 'duplicate-instance',
      action: 'run-instance',
      resourceId: instanceId,
      reason: `launched from ${imageId}`,
      details: { instanceId: sourceId, imageId },
    });
    return { ...plan, status: 'succeeded', instanceId };
  } catch (error) {
    const failure = toAwsCallError('RunInstances', error);
    return { ...plan, status: 'failed', error: { code: failure.code, message: failure.message } };
  }
}

/** Records what a restore made, done (best effort: a failed write is logged, never undoes it). */
function recordDone(
  deps: RestoreDependencies,
  made: Pick<ActionRecord, 'job' | 'action' | 'resourceId' | 'reason'> & {
    readonly details: Readonly<Record<string, unknown>>;
  },
): Promise<void> {
  const { job, action, resourceId, reason, details } = made;
  return recordAfter(deps.journal, deps.logger, {
    runId: deps.runId,
    job,
    action,
    resourceId,
    outcome: 'done',
    reason,
    details,
  });
}

async function describeOrReject(
  deps: RestoreDependencies,
  instanceId: string,
  field: string,
): Promise<InstanceDetails> {
  try {
    return await deps.restore.describeInstance(instanceId);
  } catch (error) {
    if ((error as Error).name === 'UnknownResourceError') {
      throw new InvalidEventError(`field "${field}": ${(error as Error).message}`, {
        cause: error,
      });
    }
    throw error;
  }
}

/**
 * Sorts in place, newest first, by the creation time a resource's tags record (else the
 * time EC2 gives), as retention reads it; returns the same array.
 */
function newestFirst<T extends { readonly tags: Readonly<Record<string, string>> }>(
  items: T[],
  madeAt: (item: T) => Date,
  deps: RestoreDependencies,
): T[] {
  const { keys } = deps.config;
  const now = deps.clock();
  const createdAt = (item: T) => effectiveCreatedAt(item.tags, madeAt(item), keys, now).getTime();
  return items.sort((a, b) => createdAt(b) - createdAt(a));
}

function normaliseDevice(device: string): string {
  return device.replace(/^\/dev\//, '').replace(/^xvd/, 'sd');
}
