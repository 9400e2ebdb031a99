/**
 * The ports: what a use case needs from the world, as interfaces only. Each adapter in
 * `lib/aws` satisfies its port structurally (checked by `test/unit/ports.test.ts`, which
 * fails to compile when one drifts); tests pass fakes. The data shapes that adapters
 * and jobs both use live in `lib/domain` (`runRecords.ts`, `backupPlan.ts`,
 * `imagePlan.ts`, ...) and are re-exported here for the jobs.
 *
 * A few data shapes still live beside their adapter (`CreatedSnapshot`, `Grants`,
 * `ImageBlockPublicAccess`, `InstanceDetails`, `VolumeDetails`, the Auto Scaling
 * templates, `RunRecord`, `ActionItem`, `SlotClaim`, `QueryOptions`): they are imported
 * here as types only, which the import-direction check allows until they move to the
 * domain.
 */
import type { FollowedTemplate, PinnedTemplateVersion } from '../aws/AutoScalingGateway.ts';
import type {
  GrantChange,
  Grants,
  ImageCopyRequest,
  PublicImage,
  PublicSnapshot,
  SnapshotCopyRequest,
} from '../aws/Ec2CopyGateway.ts';
import type { CreatedSnapshot } from '../aws/Ec2Gateway.ts';
import type { ImageBlockPublicAccess } from '../aws/Ec2ImageGateway.ts';
import type {
  ImageRegistration,
  InstanceDetails,
  InstanceLaunch,
  VolumeDetails,
  VolumeRequest,
} from '../aws/Ec2RestoreGateway.ts';
import type { ActionItem, QueryOptions, RunRecord, SlotClaim } from '../aws/RunHistoryGateway.ts';
import type { TierRestore, TierRestoreResult, TierStatus } from '../domain/archiveTier.ts';
import type { InstanceFacts, SnapshotSetRequest } from '../domain/backupPlan.ts';
import type { SnapshotSize } from '../domain/costLedger.ts';
import type { BatchCheckpoint, BatchMessage, BatchStatus } from '../domain/fanOut.ts';
import type { ImageFacts, ImageRequest } from '../domain/imagePlan.ts';
import type { ImagePlatform } from '../domain/imagePlatform.ts';
import type { RecycleBinRule } from '../domain/recycleBin.ts';
import type { TestVolume, TestVolumeRequest } from '../domain/restoreTestPlan.ts';
import type { CommandInvocationState, RunCommandRequest } from '../domain/runCommand.ts';
import type { RunRecordStatus, SlotKey } from '../domain/runHistory.ts';
import type { ActionRecord, CreationLedger, RunSummary } from '../domain/runRecords.ts';
import type { SnapshotFacts } from '../domain/snapshotFacts.ts';
import type { LockRequest, LockResult, SnapshotLockStatus } from '../domain/snapshotLock.ts';
import type { TagMap } from '../domain/tagPolicy.ts';

export type {
  ActionRecord,
  CreationLedger,
  ReportedError,
  RunStatus,
  RunSummary,
  RunTrigger,
} from '../domain/runRecords.ts';

// ---------------------------------------------------------------------------------------
// What a job needs besides AWS
// ---------------------------------------------------------------------------------------

/**
 * A logger. Powertools' Logger satisfies it; tests pass silent or recording ones.
 */
export interface LoggerPort {
  debug(message: string, ...extra: unknown[]): void;
  info(message: string, ...extra: unknown[]): void;
  warn(message: string, ...extra: unknown[]): void;
  error(message: string, ...extra: unknown[]): void;
}

/** Counts per run; the handler flushes them as CloudWatch metrics. */
export interface MetricsPort {
  count(name: string, value: number): void;
  /** A duration or age, published at once with its own dimensions (e.g. the schedule). */
  seconds?(name: string, value: number, dimensions?: Readonly<Record<string, string>>): void;
}

/**
 * Where destructive actions are recorded, before and after each call. The run-history
 * table implements it; a job refuses to act when the "before" record cannot be written.
 */
export interface ActionJournal {
  /** Resolves when the entry is written. */
  record(entry: ActionRecord): Promise<void>;
  /** Resolves when every entry recorded so far is written or has failed (a batching journal). */
  flush?(): Promise<void>;
}

/** Where finished runs are announced (EventBridge). `RunEventsGateway` implements it. */
export interface RunEventsPort {
  publishRunFinished(summary: RunSummary): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// EC2: instances, volumes and snapshots (`Ec2Gateway`)
// ---------------------------------------------------------------------------------------

/** Instances and volumes by tag, read page by page. */
export interface InstancesPort {
  listInstancesWithTagKey(tagKey: string, states?: readonly string[]): AsyncIterable<InstanceFacts>;
  listInstancesByIds(
    instanceIds: readonly string[],
    states?: readonly string[],
  ): AsyncIterable<InstanceFacts>;
  /** Volume id → its tags, for the volumes carrying `tagKey`. */
  volumeTagsWithKey(tagKey: string): Promise<Map<string, TagMap>>;
}

/** EBS snapshots: create a crash-consistent set, list, describe, delete. */
export interface SnapshotsPort {
  createSnapshotSet(request: SnapshotSetRequest): Promise<CreatedSnapshot[]>;
  listSnapshotsTagged(
    tags: Readonly<Record<string, string | readonly string[]>>,
    ownerId?: string,
  ): AsyncIterable<SnapshotFacts>;
  describeSnapshotsByIds(snapshotIds: readonly string[]): Promise<SnapshotFacts[]>;
  /** Snapshot id → the registered images that use it (a held snapshot is never deleted). */
  snapshotHolders(): Promise<Map<string, string[]>>;
  deleteSnapshot(snapshotId: string): Promise<void>;
}

/** Snapshot locks and storage tiers (`Ec2SnapshotTierGateway`). */
export interface SnapshotTiersPort {
  lockSnapshot(request: LockRequest): Promise<LockResult>;
  /** Snapshot id → its lock; snapshots without a lock are absent. */
  lockedSnapshots(snapshotIds: readonly string[]): Promise<Map<string, SnapshotLockStatus>>;
  archiveSnapshot(snapshotId: string): Promise<{ startedAt?: Date | undefined }>;
  /** Snapshot id → its tier and last tiering operation. */
  tierStatuses(snapshotIds: readonly string[]): Promise<Map<string, TierStatus>>;
  restoreSnapshotTier(snapshotId: string, restore: TierRestore): Promise<TierRestoreResult>;
}

/** The EBS direct APIs' block counts of snapshots, in bytes (`EbsDirectGateway`). */
export interface EbsDirectPort {
  snapshotBytes(snapshotId: string): Promise<{ readonly bytes: number }>;
  changedBytes(
    firstSnapshotId: string,
    secondSnapshotId: string,
  ): Promise<{ readonly bytes: number }>;
}

/** Snapshot sizes measured once and kept in the run history (`SnapshotSizeRecords`). */
export interface SnapshotSizesPort {
  recordedSizes(snapshotIds: readonly string[]): Promise<Map<string, SnapshotSize>>;
  recordSizes(sizes: readonly SnapshotSize[], runId: string): Promise<void>;
}

/**
 * The share of a target's EC2 rate a fan-out batch's calls take, changed while it runs
 * (the rate limiter of the target's EC2 client).
 */
export interface RateShareControl {
  /** Sets the share of the target's rate, from 0.01 to 1. */
  setShare(share: number): void;
}

/** The EC2 port of the snapshot jobs: instances, volumes and snapshots. */
export interface Ec2Port extends InstancesPort, SnapshotsPort {}

// ---------------------------------------------------------------------------------------
// EC2: machine images (`Ec2ImageGateway`)
// ---------------------------------------------------------------------------------------

/** The account's image-level block public access, read and turned on. */
export interface ImagePublicAccessPort {
  imageBlockPublicAccess(): Promise<ImageBlockPublicAccess>;
  enableImageBlockPublicAccess(): Promise<void>;
}

/** AMIs: create, find, list, deregister, and who still uses them. */
export interface ImagesPort extends ImagePublicAccessPort {
  listImagesTagged(tags: Readonly<Record<string, string>>): Promise<ImageFacts[]>;
  listOwnImages(): Promise<ImageFacts[]>;
  createImage(request: ImageRequest): Promise<{ imageId: string }>;
  findImageByName(name: string): Promise<ImageFacts | undefined>;
  deregisterImage(imageId: string): Promise<void>;
  /** Image id → the instances running it. */
  instancesUsingImages(imageIds: readonly string[]): Promise<Map<string, string[]>>;
  /** Image id → the launch template versions that name it. */
  imagesInLaunchTemplates(
    pinned?: readonly {
      launchTemplateId?: string | undefined;
      launchTemplateName?: string | undefined;
      version: string;
      group?: string | undefined;
    }[],
    followed?: readonly {
      launchTemplateId?: string | undefined;
      launchTemplateName?: string | undefined;
      version: '$Default' | '$Latest';
      group: string;
    }[],
  ): Promise<Map<string, string[]>>;
  imagesInRecycleBin(): Promise<Set<string>>;
  listImageSnapshots(): Promise<SnapshotFacts[]>;
}

// ---------------------------------------------------------------------------------------
// EC2: copies to other regions, sharing and exposure (`Ec2CopyGateway`)
// ---------------------------------------------------------------------------------------

/** A grant change: accounts to add and remove, and whether to drop public access. */
export type { GrantChange };

/** Copies into this port's (destination) region, shares and public exposure. */
export interface CopiesPort {
  copySnapshot(request: SnapshotCopyRequest): Promise<string>;
  copyImage(request: ImageCopyRequest, tagAfterCreate?: boolean): Promise<string>;
  snapshotGrants(snapshotId: string): Promise<Grants>;
  imageGrants(imageId: string): Promise<Grants>;
  changeSnapshotGrants(snapshotId: string, change: GrantChange): Promise<void>;
  changeImageGrants(imageId: string, change: GrantChange): Promise<void>;
  publicSnapshots(): Promise<PublicSnapshot[]>;
  publicImages(): Promise<PublicImage[]>;
}

// ---------------------------------------------------------------------------------------
// EC2: restores (`Ec2RestoreGateway`)
// ---------------------------------------------------------------------------------------

/** Volumes, images and instances made from backups by the console's restore actions. */
export interface RestorePort {
  describeInstance(instanceId: string): Promise<InstanceDetails>;
  describeVolume(volumeId: string): Promise<VolumeDetails | undefined>;
  createVolume(request: VolumeRequest): Promise<string>;
  /** Resolves with the milliseconds waited once the volume is available. */
  waitForVolume(volumeId: string, timeoutMs: number, clock?: () => number): Promise<number>;
  attachVolume(volumeId: string, instanceId: string, device: string): Promise<void>;
  deleteVolume(volumeId: string): Promise<void>;
  describeImagePlatform(imageId: string): Promise<ImagePlatform | undefined>;
  registerImage(request: ImageRegistration, tagAfterCreate?: boolean): Promise<string>;
  runInstance(request: InstanceLaunch): Promise<string>;
}

/** The volumes restore tests make, check and delete (`Ec2RestoreTestGateway`). */
export interface RestoreTestPort {
  createTestVolume(request: TestVolumeRequest): Promise<string>;
  describeTestVolume(volumeId: string): Promise<TestVolume | undefined>;
  deleteTestVolume(volumeId: string): Promise<'deleted' | 'gone'>;
  listTestVolumes(tags: Readonly<Record<string, string>>): Promise<TestVolume[]>;
}

// ---------------------------------------------------------------------------------------
// What else holds an image: Auto Scaling and the Recycle Bin; the fan-out queue
// ---------------------------------------------------------------------------------------

/** The launch templates and configurations Auto Scaling groups hold (`AutoScalingGateway`). */
export interface ImageHoldersPort {
  imageHolders(): Promise<{
    pinned: PinnedTemplateVersion[];
    followed?: FollowedTemplate[];
    launchConfigurationImages: Map<string, string[]>;
  }>;
}

/** The Recycle Bin's retention rules for images (`RecycleBinGateway`). */
export interface RecycleBinPort {
  imageRules(): Promise<RecycleBinRule[]>;
}

/** The fan-out queue: batch messages sent in groups (`FanOutQueueGateway`). */
export interface FanOutQueuePort {
  /** Resolves with the message ids. */
  send(messages: readonly BatchMessage[], delaySeconds?: number): Promise<string[]>;
}

// ---------------------------------------------------------------------------------------
// The run history, by access pattern (`RunHistoryGateway` and its parts)
// ---------------------------------------------------------------------------------------

/** Slot claims: one run per schedule slot, taken over when its holder died. */
export interface SlotClaimsPort {
  claimSlot(
    slot: SlotKey,
    runId: string,
    now: Date,
    options?: { readonly lapsedBefore?: Date | undefined },
  ): Promise<{ claimed: true } | { claimed: false; holder: SlotClaim }>;
  takeOverSlot(slot: SlotKey, fromRunId: string, toRunId: string, now: Date): Promise<boolean>;
  getSlotClaim(slot: SlotKey): Promise<SlotClaim | undefined>;
}

/** Runs: started, kept alive, finished once. */
export interface RunsPort {
  startRun(run: RunRecord): Promise<void>;
  renewLease(runId: string, now: Date): Promise<void>;
  finishRun(
    runId: string,
    result: {
      status: RunRecordStatus;
      endedAt: string;
      counts?: Readonly<Record<string, number>> | undefined;
      errorSummary?: string | undefined;
      remaining?: readonly string[] | undefined;
      report?: unknown;
    },
  ): Promise<void>;
  markAbandoned(
    runId: string,
    leaseRenewedAt: string,
    now: Date,
    byRunId: string,
  ): Promise<boolean>;
  getRun(runId: string): Promise<RunRecord | undefined>;
  recordDispatch(
    runId: string,
    result: { counts: Readonly<Record<string, number>>; report: unknown; now: Date },
  ): Promise<void>;
  completeRun(
    runId: string,
    result: {
      status: RunRecordStatus;
      endedAt: string;
      counts: Readonly<Record<string, number>>;
      errorSummary?: string | undefined;
    },
  ): Promise<boolean>;
}

/** An action record as the history stores it: where and when, when known. */
export type JournalEntry = ActionRecord & { at?: string; instanceId?: string; volumeId?: string };

/** The action journal in the history table: one record, or many in batches. */
export interface HistoryJournalPort extends ActionJournal {
  record(entry: JournalEntry): Promise<void>;
  recordBatch(
    entries: readonly JournalEntry[],
    options?: { readonly sleep?: (ms: number) => Promise<void>; readonly rounds?: number },
  ): Promise<void>;
}

/** The fan-out's batch checkpoints: written at dispatch, claimed and finished by workers. */
export interface BatchCheckpointsPort {
  putBatches(
    runId: string,
    batches: readonly { batchId: string; target: unknown; instances?: number | undefined }[],
    now: Date,
  ): Promise<void>;
  claimBatch(
    runId: string,
    batchId: string,
    now: Date,
    staleBefore: Date,
  ): Promise<
    | { kind: 'claimed'; checkpoint: BatchCheckpoint }
    | { kind: 'final'; checkpoint: BatchCheckpoint }
    | { kind: 'busy'; checkpoint: BatchCheckpoint }
  >;
  finishBatch(
    runId: string,
    batchId: string,
    result: {
      status: BatchStatus;
      endedAt: string;
      counts?: Readonly<Record<string, number>> | undefined;
      errorSummary?: string | undefined;
    },
  ): Promise<void>;
  runBatches(runId: string): Promise<BatchCheckpoint[]>;
}

/** The read side: runs by deployment, job or schedule; actions by resource or run. */
export interface HistoryQueriesPort {
  latestRuns(deployment: string, options?: QueryOptions): Promise<RunRecord[]>;
  runsOfJob(deployment: string, job: string, options?: QueryOptions): Promise<RunRecord[]>;
  runsOfSchedule(
    deployment: string,
    schedule: string,
    options?: QueryOptions,
  ): Promise<RunRecord[]>;
  resourceHistory(resourceId: string, options?: QueryOptions): Promise<ActionItem[]>;
  runActions(runId: string): Promise<ActionItem[]>;
}

/** The creation ledger: which resources this deployment recorded creating. */
export type CreationLedgerPort = CreationLedger;

/** The whole run history, every access pattern (what the composition root builds). */
export interface RunHistoryPort
  extends SlotClaimsPort,
    RunsPort,
    HistoryJournalPort,
    BatchCheckpointsPort,
    HistoryQueriesPort,
    CreationLedgerPort {}

// ---------------------------------------------------------------------------------------
// Systems Manager Run Command (`SsmGateway`): consistency pre/post scripts (issue 21)
// ---------------------------------------------------------------------------------------

export type { CommandInvocationState, RunCommandRequest } from '../domain/runCommand.ts';

/** Run Command: send a document to one instance, read its invocation. */
export interface RunCommandPort {
  /** The command id; throws an `AwsCallError` (`InvalidInstanceId` when the instance is not managed). */
  sendCommand(request: RunCommandRequest): Promise<string>;
  commandInvocation(commandId: string, instanceId: string): Promise<CommandInvocationState>;
}
