/**
 * The backup use case's contract: what a run is asked to do ({@link BackupJobInput}),
 * what it reads and acts through ({@link BackupJobDependencies}), and what it answers
 * ({@link BackupReport}, one {@link InstanceBackupResult} per instance). The run is in
 * `backupJob.ts`; its exactly-once (a slot's sets, a lost answer's set) in
 * `backupIdempotency.ts`.
 */
import type { SnapkeeperConfig } from '../config/environment.ts';
import type { ConsistencyRecord } from './consistentSnapshotSet.ts';
import type { Ec2Port, ReportedError, RunCommandPort, SnapshotTiersPort } from './ports.ts';
import type { RunEssentials, RunInput, RunReportHeader } from './runOpening.ts';
import type { LockOutcome } from './snapshotLocks.ts';

/** What a backup run is asked to do. */
export interface BackupJobInput extends RunInput {
  readonly schedule: string;
  readonly scheduledTime?: Date | undefined;
  /**
   * True when taking over a slot from a failed, incomplete or abandoned run: the slot's
   * snapshots are listed once, covered instances skipped, and duplicate sets removed.
   */
  readonly resuming?: boolean | undefined;
  /** Set when the run history could not be written: reported, and the run is partial. */
  readonly historyUnavailable?: boolean | undefined;
  /**
   * Console backup of these instances, whatever their tags (schedule `manual`, or a
   * schedule's name to count toward its retention). Unknown ids are reported per id.
   */
  readonly instanceIds?: readonly string[] | undefined;
  /**
   * A fan-out batch: the scheduled run restricted to these instances (their tags still
   * decide), with the skip-tagged volumes the planner read once. When resuming, only
   * these instances' snapshots of the slot are read.
   */
  readonly batch?:
    | {
        readonly instanceIds: readonly string[];
        readonly volumeTags?: Readonly<Record<string, Readonly<Record<string, string>>>>;
      }
    | undefined;
}

/** A snapshot made (or, in a dry run, to be made) for one volume. */
export interface SnapshotResult {
  readonly volumeId: string;
  readonly deviceName?: string | undefined;
  readonly snapshotId?: string | undefined;
  readonly sizeGiB?: number | undefined;
  readonly state: string;
  /**
   * Set when EC2 made a snapshot of a volume the request excluded. AWS never does;
   * the local AWS (moto) ignores `ExcludeDataVolumeIds`, and the report says so.
   */
  readonly unexpected?: true;
}

/** The outcome for one instance. */
export interface InstanceBackupResult {
  readonly instanceId: string;
  readonly name?: string | undefined;
  /** covered: a resumed slot found it already backed up; deferred: left for the next invocation. */
  readonly outcome: 'created' | 'planned' | 'covered' | 'deferred' | 'skipped' | 'failed';
  readonly snapshots?: readonly SnapshotResult[];
  readonly excludedVolumes?: readonly { volumeId: string; deviceName: string; reason: string }[];
  readonly reason?: string;
  readonly error?: ReportedError;
  /** Tag problems found on the instance or its volumes, one message each. */
  readonly problems?: readonly string[];
  /**
   * Extra snapshots of this run for the instance, made by an attempt whose answer was
   * lost (the SDK retried CreateSnapshots), and what became of them. `kept` (pending:
   * never deleted) and `failed` ones are recorded in the run history and make the run
   * `partial`.
   */
  readonly duplicates?: readonly {
    snapshotId: string;
    volumeId: string;
    outcome: 'deleted' | 'kept' | 'failed';
  }[];
  /** What the set got when its instance or schedule asks for consistency (issue 21): `app`, `crash`, `crash-fallback` with the reason. */
  readonly consistency?: ConsistencyRecord | undefined;
}

/** The JSON report of a backup run: returned, logged, and later recorded. */
export interface BackupReport extends RunReportHeader<'backup'> {
  readonly schedule: string;
  readonly slot: string;
  readonly counts: {
    readonly due: number;
    /** Instances whose snapshot set was made (0 in a dry run). */
    readonly backedUp: number;
    /** Dry runs only: instances whose snapshot set a real run would make. */
    readonly wouldBackUp?: number;
    readonly skipped: number;
    readonly failed: number;
    readonly snapshots: number;
    readonly covered: number;
    readonly deferred: number;
    readonly duplicatesRemoved: number;
    /** Present when a set asked for consistency (issue 21): sets made app-consistent, fallen back, skipped (`!`). */
    readonly appConsistent?: number;
    readonly crashFallback?: number;
    readonly consistencySkipped?: number;
  };
  readonly instances: readonly InstanceBackupResult[];
  /** Extra snapshot sets found for the slot (a create whose response was lost) and removed. */
  readonly duplicates?: readonly DuplicateSet[];
  /** Instances left for the next invocation of an `incomplete` run. */
  readonly remaining?: readonly string[];
  readonly warnings?: readonly string[];
  /** The new snapshots locked (or that failed to be) right after the run's sets were made. */
  readonly locks?: readonly LockOutcome[];
  /** `snapkeeper:lock` tags that cannot be read, by key and value (the run is `partial`). */
  readonly lockProblems?: readonly string[];
  readonly error?: ReportedError;
}

/** An extra copy from a retried CreateSnapshots, and what became of it. */
export interface RetriedDuplicate {
  readonly snapshotId: string;
  readonly volumeId: string;
  readonly outcome: 'deleted' | 'kept' | 'failed';
}

/**
 * A second snapshot set of one instance for one slot, and what became of it: `planned`
 * in a dry run; `kept` when a snapshot of it is still pending (never deleted); `failed`
 * when a deletion failed. `kept` and `failed` make the run `partial`.
 */
export interface DuplicateSet {
  readonly instanceId: string;
  readonly runId: string;
  readonly kept: string;
  readonly snapshotIds: readonly string[];
  readonly outcome: 'deleted' | 'planned' | 'kept' | 'failed';
}

/** What the backup job reads and acts through. */
export interface BackupJobDependencies extends RunEssentials {
  readonly ec2: Pick<
    Ec2Port,
    | 'listInstancesWithTagKey'
    | 'volumeTagsWithKey'
    | 'createSnapshotSet'
    | 'listSnapshotsTagged'
    | 'deleteSnapshot'
    | 'listInstancesByIds'
  >;
  readonly config: Pick<
    SnapkeeperConfig,
    'deployment' | 'keys' | 'catalog' | 'copyTags' | 'backupConcurrency' | 'manualRetainDays'
  > &
    Partial<
      Pick<
        SnapkeeperConfig,
        | 'maxInFlight'
        | 'consistencyTimeoutSeconds'
        | 'consistencyVssTimeoutSeconds'
        | 'consistencyFsfreezeDocument'
        | 'consistencyDocuments'
        | 'allowComplianceLocks'
      >
    >;
  /** Run Command, for the pre/post scripts of application-consistent sets; without it they fall back, reported. */
  readonly runCommand?: RunCommandPort | undefined;
  /** Snapshot locks; absent, nothing is locked. */
  readonly tiers?: Pick<SnapshotTiersPort, 'lockSnapshot' | 'lockedSnapshots'> | undefined;
  /**
   * How long to look for a set whose CreateSnapshots answer was lost: the waits before
   * each re-read of the run's snapshots (EC2's describes are eventually consistent).
   * Defaults to {@link RECONCILE_WAITS_MS}; `sleep` is injectable for tests.
   */
  readonly reconcile?: {
    readonly waitsMs?: readonly number[];
    readonly sleep?: (ms: number) => Promise<void>;
  };
}

/**
 * The waits before each re-read while looking for a set whose CreateSnapshots answer
 * was lost: the first read is at once, the last 15 s later. EC2 documents that a
 * describe after a create may not list the new resource for a while, and advises
 * describing again with exponential back-off. A wait never takes more than half the
 * invocation's time left before the safety margin.
 */
export const RECONCILE_WAITS_MS: readonly number[] = [1_000, 2_000, 4_000, 8_000];
